//! The gateway's side of every call to a facility node: who the nodes are, the client stack each
//! call goes through, and the fan-out that asks them all at once.
//!
//! - [`registry`]: per facility a [`node_channel`] — a lazily connected mTLS channel over
//!   [`connector`], the node's links (see [`crate::link`]), or both;
//! - [`stack`]: the per-node tower stack, read top to bottom — deadline, load shedding,
//!   concurrency limit, [`breaker`], [`retry`], and innermost the [`node_call`] itself;
//! - [`fanout`]: one query to every node in scope, each failure classified into a coverage
//!   status, each call's latency and suppressed cells recorded in [`node_metrics`].
//!
//! Nothing here reads what a node answered; [`crate::answer`] does that, once.

pub mod breaker;
pub mod connector;
pub mod fanout;
pub mod node_call;
pub mod node_channel;
pub mod node_metrics;
pub mod registry;
pub mod retry;
pub mod stack;
