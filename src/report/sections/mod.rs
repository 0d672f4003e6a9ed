//! The parts of a report. Each is one function over one RPC's response that returns HTML, so a
//! part can be read, tested and reordered alone, and a new RPC brings a new part without
//! touching the others: the learning loop's guidance in force and its adoption, practice
//! effects and a facility's interventions each become a module here with one function over
//! their response (`ListGuidance`, `PracticeEffect`, …), a call in [`super::calls`] and a place
//! in [`super::document`].
//!
//! A part's headings start at `<h3>`: the document gives each metric its `<h2>`.

pub mod cover;
pub mod figures;
pub mod learning;
pub mod methods;
pub mod metric_benchmark;
pub mod scorecard;
pub mod trend;

use super::calls::{Failure, Missing};
use super::html::esc;
use super::redact::Redactor;

/// A figure the network's release rules withheld, and why.
pub fn withheld(what: &str, reason: &str, redactor: &Redactor) -> String {
    format!(
        "<p class=\"withheld\"><strong>{} withheld.</strong> {}</p>",
        esc(what),
        esc(&redactor.clean(reason))
    )
}

/// A part the gateway gave no answer for: withheld, or failed.
pub fn missing(missing: &Missing, redactor: &Redactor) -> String {
    match missing {
        Missing::Withheld { reason, .. } => withheld("This figure is", reason, redactor),
        Missing::Failed(failure) => failed(failure, redactor),
    }
}

/// A part that could not be made because its call failed.
pub fn failed(failure: &Failure, redactor: &Redactor) -> String {
    format!(
        "<p class=\"failed\"><strong>Not available:</strong> the call {} failed: {}</p>",
        esc(&failure.call),
        esc(&redactor.clean(&failure.why))
    )
}

/// Proto enum values in words, e.g. `EVENT_CATEGORY_PRESSURE_INJURY` as "pressure injury";
/// one-letter names (NCC MERP categories) stay capitals. `name` gives a value's proto name.
pub fn enum_words(
    values: &[i32],
    prefix: &str,
    name: fn(i32) -> Option<&'static str>,
) -> Vec<String> {
    values
        .iter()
        .map(|v| {
            let word = name(*v).unwrap_or("?").trim_start_matches(prefix);
            if word.len() == 1 {
                word.to_string()
            } else {
                word.to_lowercase().replace('_', " ")
            }
        })
        .collect()
}
