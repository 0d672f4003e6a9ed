//! Conversions between wire messages and domain types: where `INVALID_ARGUMENT` is born.
//!
//! Every rule is checked and every violation is reported with its field path, so a partner
//! developer fixes a rejected event in one round trip. The cross-field rules are written down
//! in `proto/psonet/v1/event.proto`; this module is their one implementation, a file per
//! concept: `event` assembles an event from its parts (and writes one back), `generic` checks
//! the generic elements beyond type, category, harm, month and unit, `modules` the category
//! modules and the NCC MERP category, and `fields` holds the field parsers that the API's other
//! requests share (months, month ranges, category lists, enumerations), and
//! `secure_aggregation` the signed masking keys and query ids of secure aggregation.

mod event;
mod fields;
mod generic;
mod modules;
mod secure_aggregation;

pub use event::{event_from_wire, event_to_wire};
pub use fields::{category_list_from_wire, month_from_wire, month_range_from_wire};
pub use secure_aggregation::{masking_key_from_wire, masking_key_to_wire, query_id_from_wire};

#[cfg(test)]
mod cross_field_tests;
#[cfg(test)]
mod tests;
