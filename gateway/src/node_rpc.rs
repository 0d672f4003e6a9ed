//! One call of a small federation RPC (practice outcomes, guidance status) to every node at
//! once, each within the node deadline, with every node's coverage classified as a
//! benchmark's is (`client::fanout::classify`).
//!
//! These calls go over each node's channel directly, not through the aggregate client stack:
//! they are one per node and request, asked rarely, and a node that does not answer is simply
//! listed in the coverage.

use crate::client::fanout::classify;
use crate::client::node_channel::NodeChannel;
use crate::client::registry::{Facility, Registry};
use futures::future::join_all;
use psonet_core::pb::{self, CoverageStatus};
use std::future::Future;
use std::time::{Duration, Instant};

/// One node's answer, or why there is none.
pub struct NodeReply<R> {
    /// Facility id.
    pub facility_id: String,
    /// The answer, when the node gave one.
    pub response: Option<R>,
    /// Its coverage row.
    pub coverage: pb::FacilityCoverage,
}

async fn ask<R, F, Fut>(facility: &Facility, deadline: Duration, call: &F) -> NodeReply<R>
where
    F: Fn(NodeChannel, Duration) -> Fut,
    Fut: Future<Output = Result<R, tonic::Status>>,
{
    let started = Instant::now();
    let outcome = facility
        .within(deadline, call(facility.channel.clone(), deadline))
        .await;
    let (response, status, detail) = match outcome {
        Ok(r) => (Some(r), CoverageStatus::Ok, String::new()),
        Err(e) => {
            let (status, detail) = classify(&e, facility, deadline);
            (None, status, detail)
        }
    };
    NodeReply {
        facility_id: facility.id.clone(),
        response,
        coverage: pb::FacilityCoverage {
            facility_id: facility.id.clone(),
            status: status as i32,
            detail,
            latency_ms: started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32,
        },
    }
}

/// Calls `call` (given the node's channel and deadline) for every facility of `registry` at
/// once; none is waited for past `deadline`.
pub async fn ask_all<R, F, Fut>(
    registry: &Registry,
    deadline: Duration,
    call: F,
) -> Vec<NodeReply<R>>
where
    F: Fn(NodeChannel, Duration) -> Fut,
    Fut: Future<Output = Result<R, tonic::Status>>,
{
    join_all(
        registry
            .facilities()
            .iter()
            .map(|f| ask(f, deadline, &call)),
    )
    .await
}

/// A request carrying `deadline` to the node (`grpc-timeout`) and the trace context.
pub fn request<T>(message: T, deadline: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    psonet_serve::telemetry::inject_trace_context(request.metadata_mut());
    request
}
