//! The innermost service of a node's client stack: one `Aggregate` call over the node's channel.
//!
//! It carries the node deadline to the node (`grpc-timeout`) and the caller's trace context
//! (W3C `traceparent`), so the node stops work nobody waits for and its span joins the trace.

use crate::client::node_channel::NodeChannel;
use psonet_core::pb::{self, aggregate_service_client::AggregateServiceClient};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::Service;

/// Sends one aggregate query to one node.
#[derive(Clone)]
pub struct AggregateCall {
    client: AggregateServiceClient<NodeChannel>,
    deadline: Duration,
}

impl AggregateCall {
    /// Calls over `channel`; the node is told it has `deadline` to answer.
    pub fn new(channel: NodeChannel, deadline: Duration) -> Self {
        Self {
            client: AggregateServiceClient::new(channel),
            deadline,
        }
    }
}

impl Service<pb::AggregateRequest> for AggregateCall {
    type Response = pb::AggregateResponse;
    type Error = tonic::Status;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    /// Always ready: the channel's own readiness is awaited inside the call, under the
    /// deadline and breaker above.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, query: pb::AggregateRequest) -> Self::Future {
        let mut client = self.client.clone();
        let mut request = tonic::Request::new(query);
        request.set_timeout(self.deadline);
        psonet_serve::telemetry::inject_trace_context(request.metadata_mut());
        Box::pin(async move {
            client
                .aggregate(request)
                .await
                .map(tonic::Response::into_inner)
        })
    }
}
