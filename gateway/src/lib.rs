//! psonet-gateway: the PSO gateway.
//!
//! Holds the registry of facilities, fans each query out to their nodes concurrently with a
//! per-node deadline, merges the aggregates that come back, and serves network benchmarks with
//! the coverage of every facility. It keeps no raw report and no state a restart would lose.

pub mod admission;
pub mod benchmark;
pub mod breaker;
pub mod config;
pub mod connector;
pub mod fanout;
pub mod merge;
pub mod metric_answer;
pub mod metric_benchmark;
pub mod metric_catalogue;
pub mod metric_fetch;
pub mod node_call;
pub mod node_metrics;
pub mod peer_group;
pub mod pseudonym;
pub mod registry;
pub mod retry;
pub mod scorecard;
pub mod server;
pub mod stack;
pub mod trend;

pub use config::GatewayConfig;
pub use server::{GatewayError, RunningGateway};
