//! The learning loop at the facility: interventions (practices the facility put in place) and
//! whether its rates changed after them.
//!
//! A PSO sends practices and wants to know which work; a facility wants to know whether the
//! bundle it rolled out on its med-surg units did anything. Both questions start here, with the
//! facility's own record of what it changed and when, kept beside its events in the same store
//! (so it is backed up and restored with them) and never sent anywhere as written.
//!
//! One concept per file: [`definition`] (the domain type), [`record`] (how the store keeps it),
//! [`wire`] (the API edge), [`register`] (record, amend, end and list in the store), [`series`]
//! (a metric's monthly series from the exact counters), [`effect`] (the facility's own
//! before/after) and [`effect_wire`] (its API answer), [`service`] (`InterventionService`,
//! local listener), and [`outcome`] (`PracticeOutcomeService`, what the gateway may learn,
//! federation listener) with [`window_release`] (the small-cell rule across window lengths).

pub mod definition;
pub mod effect;
pub mod effect_wire;
pub mod outcome;
pub mod record;
pub mod register;
pub mod series;
pub mod service;
pub mod window_release;
pub mod wire;

pub use definition::Intervention;
pub use outcome::PracticeOutcomes;
pub use service::Interventions;

/// The store tree that holds interventions, keyed by the facility's id for each.
pub const INTERVENTIONS_TREE: &str = "interventions";
