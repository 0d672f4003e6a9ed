//! psonet-core: what a facility node and the PSO gateway agree on — the domain only.
//!
//! Domain types for Common Formats events and their validation from the wire, months, the
//! counter cube that aggregates are read from and the queries over it, disclosure control and
//! the network release rule, and benchmark statistics. Wire types from `psonet-proto` are
//! converted here, once, so that `INVALID_ARGUMENT` with field violations is born in one place.
//! How servers listen, authenticate, trace and count is `psonet-serve`'s business, so this
//! crate (and the fuzz target built on it) carries none of it.

pub mod cube;
pub mod disclosure;
pub mod event;
pub mod month;
pub mod network_release;
pub mod query;
pub mod secagg;
pub mod stats;
pub mod violations;
pub mod wire;

pub use psonet_proto::v1 as pb;
