//! Links: facility nodes behind a hospital firewall dial out to the gateway's link listener and
//! serve their federation API over that connection, so they open no inbound port.
//!
//! - [`verifier`]: only a node whose certificate names a facility of the registry may link;
//! - [`listener`]: accepts links, and builds an HTTP/2 client channel over each;
//! - [`table`]: the live links by facility, which the fan-out asks for a facility's channel
//!   (see [`crate::client::node_channel`]), and their metrics;
//! - [`list`]: `ListLinks`, who is linked since when, for PSO staff.
//!
//! Once a channel exists, a call goes through the same client stack (deadline, shedding,
//! concurrency limit, breaker, retry) whichever side dialled.

pub mod list;
pub mod listener;
pub mod table;
pub mod verifier;
