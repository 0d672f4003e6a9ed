//! The per-node client stack, read top to bottom in [`node_stack`].
//!
//! Every call from the gateway to a facility node goes through the same layers, outermost
//! first. Each layer is there for one failure the federation must survive:
//!
//! 1. **deadline** — the whole call, retries included, ends by the node deadline, so a
//!    benchmark answers on time whatever the node does;
//! 2. **load shedding** + 3. **concurrency limit** — at most `max_in_flight_per_node` calls
//!    to one node, of every kind together ([`NodeLimits`]); one more fails at once instead of queueing behind a slow node (the shed
//!    layer sits directly above the limit so that "full" means "shed", not "wait");
//! 4. **breaker** — after repeated failures the node is not asked until a probe, sent with
//!    exponential backoff, succeeds. It sits above the retry so that one call counts once,
//!    however many attempts the retry made;
//! 5. **retry with a budget** — aggregates are idempotent, and a secure-aggregation round
//!    sent again byte for byte gets the node's stored answer back, so a call the transport
//!    could not deliver is sent again, while retries stay a small share of all calls.
//!
//! Below them the channel connects lazily, with a bounded connect time (see
//! [`crate::client::registry`]), so a dead node costs nothing until it is asked and little when
//! it is.

use crate::client::breaker::{Breaker, BreakerLayer};
use crate::client::node_call::AggregateCall;
use crate::client::node_channel::NodeChannel;
use crate::client::retry::BudgetedRetry;
use crate::config::FanoutConfig;
use psonet_core::pb;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::retry::RetryLayer;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceBuilder};

/// A node's whole client stack, cheap to clone; clones share limits, budget and breaker.
pub type NodeService = BoxCloneSyncService<pb::AggregateRequest, pb::AggregateResponse, BoxError>;

/// What every call to one node shares, whatever it asks (an aggregate, or a round of secure
/// aggregation): its in-flight limit, its breaker and its retry budget, so the node's limits
/// hold over all of them together.
#[derive(Clone)]
pub struct NodeLimits {
    in_flight: Arc<Semaphore>,
    breaker: Breaker,
    retry: BudgetedRetry,
}

impl NodeLimits {
    /// The limits of one node, with `breaker` as its breaker.
    pub fn new(breaker: Breaker, fanout: &FanoutConfig) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(fanout.max_in_flight_per_node)),
            breaker,
            retry: BudgetedRetry::new(fanout.retry_budget_percent),
        }
    }
}

/// Assembles the aggregate stack for one node over `channel`, within the node's `limits`.
pub fn node_stack(channel: NodeChannel, limits: &NodeLimits, fanout: &FanoutConfig) -> NodeService {
    layered(
        AggregateCall::new(channel, fanout.node_deadline()),
        limits,
        fanout,
    )
}

/// The stack, top to bottom, around `call` (the innermost service, one RPC over the node's
/// channel): every kind of call to a node goes through these same layers.
pub fn layered<Req, S>(
    call: S,
    limits: &NodeLimits,
    fanout: &FanoutConfig,
) -> BoxCloneSyncService<Req, S::Response, BoxError>
where
    Req: Clone + Send + 'static,
    S: Service<Req, Error = tonic::Status> + Clone + Send + Sync + 'static,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
{
    let stack = ServiceBuilder::new()
        .timeout(fanout.node_deadline())
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(
            limits.in_flight.clone(),
        ))
        .layer(BreakerLayer::new(limits.breaker.clone()))
        .layer(RetryLayer::new(limits.retry.clone()))
        .service(call);
    BoxCloneSyncService::new(stack)
}
