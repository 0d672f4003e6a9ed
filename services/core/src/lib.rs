//! psonet-core: what a facility node and the PSO gateway agree on.
//!
//! Domain types for Common Formats events and their validation from the wire, the counter cube
//! that aggregates are read from, disclosure control, identities taken from certificates, and
//! the TLS setup every listener and client shares. Wire types from `psonet-proto` are converted
//! here, once, so that `INVALID_ARGUMENT` with field violations is born in one place.

pub mod auth;
pub mod config_file;
pub mod cube;
pub mod diagnose;
pub mod disclosure;
pub mod event;
pub mod identity;
pub mod message_count;
pub mod metrics;
pub mod month;
pub mod network_release;
pub mod query;
pub mod secagg;
pub mod serve;
pub mod stats;
pub mod telemetry;
pub mod tls;
pub mod violations;
pub mod wire;

/// Primary suppression under its original name, so existing imports keep working.
pub use disclosure::primary as suppression;
pub use psonet_proto::v1 as pb;
