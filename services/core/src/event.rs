//! A patient safety event in the Common Formats, as the domain sees it: validated, typed,
//! and with nothing left to interpret.
//!
//! The enumerations are the generated `psonet.v1` enums (plain Rust enums): duplicating them
//! would only add a mapping to get wrong. The category modules are kept as the validated wire
//! detail messages ([`EventModules`]): they are stored and read back locally, and the one of
//! their fields that is aggregated (NCC MERP) is lifted into the event itself.

use crate::month::Month;
pub use crate::pb::{
    AgeBand, CommonFormatsVersion, ContributingFactor, EventCategory, EventType, HarmDuration,
    HarmLevel, NccMerpCategory, NearMissReason, Preventability, ReporterType, Sex, UnitType,
    YesNoUnknown,
};

/// Longest idempotency key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;
/// Most categories one event may carry (DE21 cardinality 1..10).
pub const MAX_CATEGORIES: usize = 10;
/// Most contributing factors one event may carry (every value of the list once).
pub const MAX_CONTRIBUTING_FACTORS: usize = 12;
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
    /// Patient age band (`Unspecified` when not recorded).
    pub age_band: AgeBand,
    /// Patient sex (`Unspecified` when not recorded).
    pub sex: Sex,
    /// Duration of harm, only with mild, moderate or severe harm.
    pub harm_duration: HarmDuration,
    /// Preventability (incidents only).
    pub preventability: Preventability,
    /// Distinct contributing factors, in ascending enum order.
    pub contributing_factors: Vec<ContributingFactor>,
    /// Who first reported the event.
    pub reporter_type: ReporterType,
    /// Was a hand-off involved?
    pub handoff_involved: YesNoUnknown,
    /// Was a rescue attempted? (incidents only)
    pub rescue_attempted: YesNoUnknown,
    /// Why a near miss did not reach the patient (near misses only).
    pub near_miss_reason: NearMissReason,
    /// NCC MERP category from the medication module (`Unspecified` when absent).
    pub ncc_merp: NccMerpCategory,
    /// Category-specific detail, as validated.
    pub modules: EventModules,
}

/// The category modules of an event; each only present when the event has its category.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventModules {
    /// Fall module.
    pub fall: Option<crate::pb::FallDetail>,
    /// Medication module.
    pub medication: Option<crate::pb::MedicationDetail>,
    /// Pressure injury module.
    pub pressure_injury: Option<crate::pb::PressureInjuryDetail>,
    /// Surgery module.
    pub surgery: Option<crate::pb::SurgeryDetail>,
    /// Anesthesia module.
    pub anesthesia: Option<crate::pb::AnesthesiaDetail>,
    /// Blood module.
    pub blood: Option<crate::pb::BloodDetail>,
    /// Device module.
    pub device: Option<crate::pb::DeviceDetail>,
    /// Perinatal module.
    pub perinatal: Option<crate::pb::PerinatalDetail>,
    /// VTE module.
    pub vte: Option<crate::pb::VteDetail>,
}
