//! Field violations: the one way bad input is described, on the wire and to people.
//!
//! Validation collects every problem of a request, not just the first, and turns them into an
//! `INVALID_ARGUMENT` status carrying `google.rpc.BadRequest` so that any gRPC client can show
//! which field was wrong.

use std::fmt;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Violations named in a status message; the rest are counted.
pub const MESSAGE_VIOLATIONS: usize = 3;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field, e.g. `event.categories[1]`.
    pub field: String,
    /// Why it was refused, in plain words.
    pub description: String,
}

/// Every field violation found in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldViolations(Vec<FieldViolation>);

impl FieldViolations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is wrong, and why.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// True when nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &FieldViolation> {
        self.0.iter()
    }

    /// `Ok(value)` when nothing was wrong, else these violations.
    pub fn into_result<T>(self, value: T) -> Result<T, FieldViolations> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// The `INVALID_ARGUMENT` status with a `BadRequest` detail listing every violation. The
    /// message names the first [`MESSAGE_VIOLATIONS`] and counts the rest; every server also
    /// caps the detail (psonet-serve's `bounded_errors`), so a request with thousands of
    /// violations still gets an error a client can read.
    pub fn into_status(self) -> Status {
        let message = match self.0.len() {
            n if n > MESSAGE_VIOLATIONS => {
                let first = FieldViolations(self.0[..MESSAGE_VIOLATIONS].to_vec());
                format!(
                    "invalid request: {first}; and {} more violations",
                    n - MESSAGE_VIOLATIONS
                )
            }
            _ => format!("invalid request: {self}"),
        };
        let details = ErrorDetails::with_bad_request(
            self.0
                .into_iter()
                .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                .collect::<Vec<_>>(),
        );
        Status::with_error_details(Code::InvalidArgument, message, details)
    }

    /// The violations as wire messages, for bulk summaries.
    pub fn to_wire(&self) -> Vec<crate::pb::FieldViolation> {
        self.0
            .iter()
            .map(|v| crate::pb::FieldViolation {
                field: v.field.clone(),
                description: v.description.clone(),
            })
            .collect()
    }
}

impl fmt::Display for FieldViolations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

impl From<FieldViolations> for Status {
    fn from(v: FieldViolations) -> Status {
        v.into_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_every_violation_as_bad_request() {
        let mut v = FieldViolations::new();
        v.add("event.harm", "an incident needs a harm level");
        v.add("event.categories", "at least one category is required");
        let status = v.into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status
                .message()
                .contains("event.harm: an incident needs a harm level")
        );
        let bad = status.get_details_bad_request().expect("BadRequest detail");
        let fields: Vec<_> = bad
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["event.harm", "event.categories"]);
    }

    #[test]
    fn the_message_names_three_and_counts_the_rest() {
        let mut v = FieldViolations::new();
        (0..1000).for_each(|i| v.add(format!("records[{i}].month"), "required"));
        let status = v.into_status();
        assert!(
            status
                .message()
                .ends_with("records[2].month: required; and 997 more violations")
        );
        assert_eq!(
            status
                .get_details_bad_request()
                .unwrap()
                .field_violations
                .len(),
            1000
        );
    }
}
