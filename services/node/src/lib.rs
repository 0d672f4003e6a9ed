//! psonet-node: the facility node.
//!
//! Runs on premises, keeps the facility's reports in an embedded sled store, and serves over
//! mutual TLS: the *local* listener (`ReportingService`) for the facility's own systems, and the
//! *federation* API (`AggregateService` and `SecureAggregationService`) for the PSO gateway,
//! which only ever sees counts that passed disclosure control, or a facility's exact counts
//! masked so that only a cohort's sum opens. The federation API is served on a listener the
//! gateway dials, or over a [`gateway_link`] the node dials out (no inbound port), or both.

pub mod aggregate;
pub mod audit;
pub mod backup;
pub mod backup_service;
pub mod config;
pub mod gateway_link;
pub mod group_commit;
pub mod guidance;
pub mod heap;
pub mod intervention;
pub mod ledger;
pub mod policy;
pub mod record;
pub mod reporting;
pub mod secure_aggregation;
pub mod server;
pub mod store;
pub mod utc;
pub mod writer;

pub use config::NodeConfig;
pub use server::{NodeError, RunningNode};
