//! The per-node client stack, read top to bottom in [`node_stack`].
//!
//! Every call from the gateway to a facility node goes through the same layers, outermost
//! first. Each layer is there for one failure the federation must survive:
//!
//! 1. **deadline** — the whole call, retries included, ends by the node deadline, so a
//!    benchmark answers on time whatever the node does;
//! 2. **load shedding** + 3. **concurrency limit** — at most `max_in_flight_per_node` calls
//!    to one node; one more fails at once instead of queueing behind a slow node (the shed
//!    layer sits directly above the limit so that "full" means "shed", not "wait");
//! 4. **breaker** — after repeated failures the node is not asked until a probe, sent with
//!    exponential backoff, succeeds. It sits above the retry so that one call counts once,
//!    however many attempts the retry made;
//! 5. **retry with a budget** — aggregates are idempotent, so a call the transport could not
//!    deliver is sent again, while retries stay a small share of all calls.
//!
//! Below them the channel connects lazily, with a bounded connect time (see
//! [`crate::client::registry`]), so a dead node costs nothing until it is asked and little when
//! it is.

use crate::client::breaker::{Breaker, BreakerLayer};
use crate::client::node_call::AggregateCall;
use crate::client::retry::BudgetedRetry;
use crate::config::FanoutConfig;
use psonet_core::pb;
use tonic::transport::Channel;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder};

/// A node's whole client stack, cheap to clone; clones share limits, budget and breaker.
pub type NodeService = BoxCloneSyncService<pb::AggregateRequest, pb::AggregateResponse, BoxError>;

/// Assembles the stack for one node over `channel`, with `breaker` as its breaker.
pub fn node_stack(channel: Channel, breaker: Breaker, fanout: &FanoutConfig) -> NodeService {
    let stack = ServiceBuilder::new()
        .timeout(fanout.node_deadline())
        .load_shed()
        .concurrency_limit(fanout.max_in_flight_per_node)
        .layer(BreakerLayer::new(breaker))
        .retry(BudgetedRetry::new(fanout.retry_budget_percent))
        .service(AggregateCall::new(channel, fanout.node_deadline()));
    BoxCloneSyncService::new(stack)
}
