//! psonet-gateway: the PSO gateway.
//!
//! Holds the registry of facilities, fans each query out to their nodes concurrently with a
//! per-node deadline, checks and sums the aggregates that come back, and serves network
//! benchmarks with the coverage of every facility. It keeps no raw report and no state a restart
//! would lose.
//!
//! The files, by role, in the order a benchmark runs through them:
//!
//! - serving: [`server`] (listener, TLS, operations), [`admission`] (at most so many benchmarks
//!   at once), [`config`], and [`benchmark`], the `BenchmarkService` itself;
//! - asking the nodes: [`client`] (registry, the per-node tower stack, fan-out) and
//!   [`coverage`], which asks one question and accounts for every facility asked;
//! - reading the answers: [`answer`], each node's answer checked once, and [`network_sum`], the
//!   sum every network figure is computed from and released by;
//! - secure aggregation: [`secure`], the exact sum over a cohort opened from masked vectors;
//! - the figures: [`category_rows`] (events per month and category) and [`metric`] (a metric's
//!   benchmark, trend and a facility's scorecard), with [`peer_group`] and [`pseudonym`];
//! - the learning loop: [`guidance`] (the PSO's alerts and practices, and their adoption) and
//!   [`practice_effect`] (which practices work, pooled over adopters), asking the nodes through
//!   [`node_rpc`].

pub mod admission;
pub mod answer;
pub mod benchmark;
pub mod category_rows;
pub mod client;
pub mod config;
pub mod coverage;
pub mod guidance;
pub mod metric;
pub mod network_sum;
pub mod node_rpc;
pub mod peer_group;
pub mod practice_effect;
pub mod pseudonym;
pub mod secure;
pub mod server;

pub use config::GatewayConfig;
pub use server::{GatewayError, RunningGateway};
