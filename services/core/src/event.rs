//! A patient safety event in the Common Formats, as the domain sees it: validated, typed,
//! and with nothing left to interpret.
//!
//! The enumerations are the generated `psonet.v1` enums (plain Rust enums): duplicating them
//! would only add a mapping to get wrong. Structs never cross this line: [`crate::wire`] turns
//! a wire `Event` into an [`Event`] or into field violations.

use crate::month::Month;
pub use crate::pb::{CommonFormatsVersion, EventCategory, EventType, HarmLevel, UnitType};

/// Longest idempotency key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;
/// Most categories one event may carry (DE21 cardinality 1..10).
pub const MAX_CATEGORIES: usize = 10;
/// Longest narrative accepted, in bytes.
pub const MAX_NARRATIVE_LEN: usize = 65_536;

/// A validated event report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Client-chosen key that makes a submit idempotent.
    pub idempotency_key: String,
    /// Common Formats release the report was captured with.
    pub cf_version: CommonFormatsVersion,
    /// Incident, near miss or unsafe condition.
    pub event_type: EventType,
    /// Distinct categories, in ascending enum order.
    pub categories: Vec<EventCategory>,
    /// Residual harm; `Some` exactly when the event is an incident.
    pub harm: Option<HarmLevel>,
    /// Month of discovery.
    pub discovery_month: Month,
    /// Unit type of discovery.
    pub unit_type: UnitType,
    /// Local-only free text.
    pub narrative: String,
}
