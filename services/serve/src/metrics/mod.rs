//! Metrics, served as Prometheus text on a plain HTTP port of their own.
//!
//! Why Prometheus text and not OTLP metrics: hospitals and PSOs already run Prometheus (or
//! something that scrapes its format), a scrape needs no collector in between, a node that
//! cannot reach its collector loses no metrics, and it keeps the OpenTelemetry metrics SDK out
//! of every build. Traces, which must be joined across processes, go over OTLP (see
//! [`crate::telemetry`]). The exposition is written by `prometheus-client`, the Prometheus
//! project's own Rust client, so its escaping and series naming are the format's owners' to
//! keep right, not ours.
//!
//! [`Metrics`] is the registry of one process: the RPC families every listener records, and
//! whatever families and scrape-time collectors a server adds (the gateway's fan-out and
//! breaker figures). [`RpcMetricsLayer`] counts and times every RPC a listener serves by
//! method and status, and counts the messages clients stream in (ingest); [`serve_metrics`]
//! answers `GET /metrics` over hyper.

mod endpoint;
mod message_count;
mod registry;
mod rpc_layer;

pub use endpoint::serve_metrics;
pub use registry::{LatencyHistograms, Metrics, latency_histogram};
pub use rpc_layer::{RpcMetrics, RpcMetricsLayer};
