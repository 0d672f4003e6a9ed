//! psonet-gateway: the PSO gateway.
//!
//! Holds the registry of facilities, asks their nodes concurrently with a per-node deadline —
//! for network figures by secure aggregation, opening only the cohort's exact sum; for
//! per-facility figures by plain aggregates, checked and summed here — and serves network
//! benchmarks with the coverage of every facility. It keeps no raw report and no state a restart
//! would lose (the masking keys it caches are fetched again).
//!
//! The files, by role, in the order a benchmark runs through them:
//!
//! - serving: [`server`] (listener, TLS, operations), [`admission`] (at most so many benchmarks
//!   at once), [`config`], and [`benchmark`], the `BenchmarkService` itself;
//! - asking the nodes: [`client`] (registry, the per-node tower stack, fan-out), [`link`] (nodes
//!   that dial out to the gateway instead of being dialled) and [`coverage`], which asks one
//!   question and accounts for every facility asked;
//! - reading the answers: [`answer`], each node's answer checked once, and [`network_sum`], a
//!   sum of node-released counts taken in the clear and released by the plain path's rule;
//! - secure aggregation: [`secure`], the exact sum over a cohort opened from masked vectors,
//!   which network figures are read from and released by `network_cell`'s rule;
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
pub mod link;
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
