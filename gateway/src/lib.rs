//! psonet-gateway: the PSO gateway.
//!
//! Holds the registry of facilities, fans each query out to their nodes concurrently with a
//! per-node deadline, merges the aggregates that come back, and serves network benchmarks with
//! the coverage of every facility. It keeps no raw report and no state a restart would lose.

pub mod admission;
pub mod answer;
pub mod benchmark;
pub mod category_rows;
pub mod client;
pub mod config;
pub mod coverage;
pub mod metric;
pub mod network_sum;
pub mod peer_group;
pub mod pseudonym;
pub mod server;

pub use config::GatewayConfig;
pub use server::{GatewayError, RunningGateway};
