//! What a bounded error is: the same code, a message and details cut to a fixed budget.
//!
//! The budget is counted as the bytes the error takes on the wire — `grpc-message` is
//! percent-encoded, `grpc-status-details-bin` is base64 — because that is what a client's
//! header limit sees. Nothing is dropped silently: a cut text ends in `… (N more bytes)` and a
//! capped list ends in an entry saying how many more there were.

use std::collections::{BTreeMap, HashMap};
use tonic::{Code, Status};
use tonic_types::{ErrorDetail, StatusExt};

/// The most bytes `grpc-message` may take on the wire (percent-encoded).
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// The most bytes `grpc-status-details-bin` may take on the wire (base64).
pub const MAX_DETAILS_BYTES: usize = 4096;
/// Entries kept of any list in the details (field violations, quota violations, links,
/// metadata), the last of them saying how many more there were.
pub const MAX_LISTED: usize = 20;
/// The longest text in the details (a field path, a description, a metadata value), in bytes.
pub const MAX_TEXT_BYTES: usize = 200;
/// The most bytes an error's headers may take together on the wire: comfortably under the
/// 16 KB header limit of standard gRPC clients, with room for the transport's own headers.
pub const MAX_ERROR_BYTES: usize = 8 * 1024;

/// `status` with its message and details cut to the budget; the code is kept, and so is a
/// status already within it.
pub fn bound(status: Status) -> Status {
    if status.code() == Code::Ok {
        return status;
    }
    let message = truncate_encoded(status.message(), MAX_MESSAGE_BYTES);
    let within = message.len() == status.message().len()
        && base64_len(status.details().len()) <= MAX_DETAILS_BYTES;
    if within {
        return status;
    }
    let details = bounded_details(&status, &message);
    let mut bounded =
        Status::with_details(status.code(), message, details.unwrap_or_default().into());
    *bounded.metadata_mut() = status.metadata().clone();
    bounded
}

/// The bytes `status` takes as headers on the wire: every name and value, as tonic writes them.
#[cfg(test)]
pub(crate) fn wire_size(status: &Status) -> usize {
    let mut headers = tonic::codegen::http::HeaderMap::new();
    if status.add_header(&mut headers).is_err() {
        return usize::MAX;
    }
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

/// The details re-encoded within [`MAX_DETAILS_BYTES`], listing fewer entries until they fit;
/// `None` when they do not decode or nothing fits.
fn bounded_details(status: &Status, message: &str) -> Option<Vec<u8>> {
    if status.details().is_empty() {
        return None;
    }
    let details = status.check_error_details_vec().ok()?;
    [MAX_LISTED, 10, 5, 2, 1, 0].into_iter().find_map(|listed| {
        let kept = details.iter().filter_map(|d| bound_detail(d, listed));
        let encoded = Status::with_error_details_vec(status.code(), message, kept);
        (base64_len(encoded.details().len()) <= MAX_DETAILS_BYTES)
            .then(|| encoded.details().to_vec())
    })
}

/// One detail with its lists cut to `listed` entries and its texts truncated; `None` for a
/// kind this release does not know, which it cannot bound.
fn bound_detail(detail: &ErrorDetail, listed: usize) -> Option<ErrorDetail> {
    let mut detail = detail.clone();
    match &mut detail {
        ErrorDetail::BadRequest(bad) => {
            for v in &mut bad.field_violations {
                text(&mut v.field);
                text(&mut v.description);
                text(&mut v.reason);
                if let Some(m) = &mut v.localized_message {
                    text(&mut m.message);
                }
            }
            cap(&mut bad.field_violations, listed, |more| {
                tonic_types::FieldViolation::new("…", format!("and {more} more violations"))
            });
        }
        ErrorDetail::QuotaFailure(quota) => {
            for v in &mut quota.violations {
                for t in [
                    &mut v.subject,
                    &mut v.description,
                    &mut v.api_service,
                    &mut v.quota_metric,
                    &mut v.quota_id,
                ] {
                    text(t);
                }
                map(&mut v.quota_dimensions, listed);
            }
            cap(&mut quota.violations, listed, |more| {
                tonic_types::QuotaViolation::new("…", format!("and {more} more violations"))
            });
        }
        ErrorDetail::PreconditionFailure(failure) => {
            for v in &mut failure.violations {
                text(&mut v.r#type);
                text(&mut v.subject);
                text(&mut v.description);
            }
            cap(&mut failure.violations, listed, |more| {
                tonic_types::PreconditionViolation::new(
                    "…",
                    "…",
                    format!("and {more} more violations"),
                )
            });
        }
        ErrorDetail::ErrorInfo(info) => {
            text(&mut info.reason);
            text(&mut info.domain);
            map(&mut info.metadata, listed);
        }
        ErrorDetail::Help(help) => {
            for link in &mut help.links {
                text(&mut link.description);
                text(&mut link.url);
            }
            cap(&mut help.links, listed, |more| {
                tonic_types::HelpLink::new(format!("and {more} more links"), "")
            });
        }
        ErrorDetail::DebugInfo(debug) => {
            text(&mut debug.detail);
            debug.stack_entries.iter_mut().for_each(text);
            cap(&mut debug.stack_entries, listed, |more| {
                format!("and {more} more entries")
            });
        }
        ErrorDetail::LocalizedMessage(m) => text(&mut m.message),
        ErrorDetail::RequestInfo(info) => {
            text(&mut info.request_id);
            text(&mut info.serving_data);
        }
        ErrorDetail::ResourceInfo(info) => {
            for t in [
                &mut info.resource_type,
                &mut info.resource_name,
                &mut info.owner,
                &mut info.description,
            ] {
                text(t);
            }
        }
        ErrorDetail::RetryInfo(_) => {}
        _ => return None,
    }
    Some(detail)
}

/// Keeps at most `listed` entries, the last of them `more(n)` for the `n` cut off (none when
/// `listed` is 0).
fn cap<T>(list: &mut Vec<T>, listed: usize, more: impl FnOnce(usize) -> T) {
    if list.len() <= listed {
        return;
    }
    if listed == 0 {
        list.clear();
        return;
    }
    let cut = list.len() - (listed - 1);
    list.truncate(listed - 1);
    list.push(more(cut));
}

/// A string map cut to `listed` entries (the first by key), keys and values truncated.
fn map(entries: &mut HashMap<String, String>, listed: usize) {
    let sorted: BTreeMap<String, String> = entries.drain().collect();
    let total = sorted.len();
    let keep = if total > listed {
        listed.saturating_sub(1)
    } else {
        total
    };
    for (mut key, mut value) in sorted.into_iter().take(keep) {
        text(&mut key);
        text(&mut value);
        entries.insert(key, value);
    }
    if keep < total && listed > 0 {
        entries.insert("…".into(), format!("and {} more entries", total - keep));
    }
}

/// Truncates a detail's text to [`MAX_TEXT_BYTES`].
fn text(t: &mut String) {
    if t.len() > MAX_TEXT_BYTES {
        *t = truncate(t, MAX_TEXT_BYTES, |c| c.len_utf8());
    }
}

/// `message` cut so that its percent-encoded form fits in `budget` bytes.
fn truncate_encoded(message: &str, budget: usize) -> String {
    if encoded_len(message) <= budget {
        return message.to_string();
    }
    truncate(message, budget, |c| {
        let mut buf = [0; 4];
        encoded_len(c.encode_utf8(&mut buf))
    })
}

/// The longest prefix of `text` whose `cost` leaves room for `… (N more bytes)` within
/// `budget`, followed by that note.
fn truncate(text: &str, budget: usize, cost: impl Fn(char) -> usize) -> String {
    // The note is ASCII apart from the ellipsis; percent-encoded it takes at most 36 bytes.
    let room = budget.saturating_sub(48);
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let c_cost = cost(c);
        if used + c_cost > room {
            break;
        }
        used += c_cost;
        end = i + c.len_utf8();
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

/// The length of `text` percent-encoded as tonic writes `grpc-message`: controls, non-ASCII
/// bytes and ` "#%<>`?{}` take three bytes each.
fn encoded_len(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            0x00..=0x1f | 0x7f..=0xff => 3,
            b' ' | b'"' | b'#' | b'%' | b'<' | b'>' | b'`' | b'?' | b'{' | b'}' => 3,
            _ => 1,
        })
        .sum()
}

/// Bytes of `n` bytes in unpadded base64.
fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation};

    fn violations(n: usize, description: &str) -> Status {
        let list: Vec<_> = (0..n)
            .map(|i| FieldViolation::new(format!("event.categories[{i}]"), description))
            .collect();
        let message = format!("invalid request: {}", description.repeat(n.min(50)));
        Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request(list),
        )
    }

    #[test]
    fn a_thousand_violations_become_twenty_and_a_count() {
        let status = bound(violations(1000, "FALL is listed twice"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            wire_size(&status) < MAX_ERROR_BYTES,
            "{}",
            wire_size(&status)
        );
        let bad = status.get_details_bad_request().expect("BadRequest kept");
        assert_eq!(bad.field_violations.len(), MAX_LISTED);
        assert_eq!(bad.field_violations[0].field, "event.categories[0]");
        let last = bad.field_violations.last().unwrap();
        assert_eq!(
            last.description,
            format!("and {} more violations", 1000 - 19)
        );
    }

    #[test]
    fn an_echoed_three_megabytes_is_cut_with_a_note() {
        let huge = "x".repeat(3 << 20);
        let status = bound(Status::invalid_argument(format!("unknown metric {huge:?}")));
        assert!(status.message().starts_with("unknown metric \"xxx"));
        assert!(
            status.message().ends_with(" more bytes)"),
            "{}",
            status.message()
        );
        assert!(encoded_len(status.message()) <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn long_descriptions_and_non_ascii_messages_fit() {
        let long = "é%".repeat(5000);
        let status = bound(violations(3, &long));
        assert!(
            wire_size(&status) < MAX_ERROR_BYTES,
            "{}",
            wire_size(&status)
        );
        assert!(encoded_len(status.message()) <= MAX_MESSAGE_BYTES);
        let bad = status.get_details_bad_request().expect("BadRequest kept");
        assert!(bad.field_violations.len() <= 3);
        assert!(bad.field_violations[0].description.len() <= MAX_TEXT_BYTES + 32);
    }

    #[test]
    fn a_small_error_is_left_as_it_is() {
        let status = violations(2, "required");
        let before = (status.message().to_string(), status.details().to_vec());
        let after = bound(status);
        assert_eq!(
            (after.message().to_string(), after.details().to_vec()),
            before
        );
    }

    #[test]
    fn error_info_metadata_is_capped() {
        let metadata: HashMap<String, String> = (0..500)
            .map(|i| (format!("key{i:03}"), "v".repeat(1000)))
            .collect();
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            "budget spent",
            ErrorDetails::with_error_info("BUDGET", "psonet", metadata),
        );
        let status = bound(status);
        assert!(
            wire_size(&status) < MAX_ERROR_BYTES,
            "{}",
            wire_size(&status)
        );
        let info = status.get_details_error_info().expect("ErrorInfo kept");
        assert!(info.metadata.len() <= MAX_LISTED);
        assert!(info.metadata.contains_key("key000"));
        assert_eq!(info.reason, "BUDGET");
    }
}
