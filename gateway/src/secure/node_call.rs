//! The innermost service of a node's secure-aggregation stack: one call of
//! `SecureAggregationService` over the node's channel, and the fan-out of one kind of call to
//! many nodes through their stacks.
//!
//! The call sits under the same layers as an aggregate call ([`crate::client::stack`]) and
//! shares the node's in-flight limit, breaker and retry budget with it, so a node is protected
//! and accounted for the same way whatever it is asked; a failure is classified into the same
//! coverage statuses.

use crate::client::fanout::classify;
use crate::client::node_channel::NodeChannel;
use crate::client::registry::Facility;
use crate::client::stack::{NodeLimits, layered};
use crate::config::FanoutConfig;
use psonet_core::pb::{
    self, CoverageStatus, secure_aggregation_service_client::SecureAggregationServiceClient,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceExt};
use tracing::Instrument;

/// One secure-aggregation call. The round-1 request is the same for every member, so it is
/// shared rather than copied per node.
#[derive(Clone)]
pub enum SecureRequest {
    /// `GetMaskingKey`.
    MaskingKey(pb::GetMaskingKeyRequest),
    /// `MaskedRound`.
    Masked(Arc<pb::MaskedRoundRequest>),
    /// `MaskedRoundOnKnownCohort` (answered as `MaskedRound` is).
    MaskedOnKnownCohort(Arc<pb::MaskedRoundOnKnownCohortRequest>),
    /// `UnmaskRound`.
    Unmask(pb::UnmaskRoundRequest),
}

/// The answer to a [`SecureRequest`], of the same kind.
pub enum SecureReply {
    /// `GetMaskingKey`.
    MaskingKey(pb::GetMaskingKeyResponse),
    /// `MaskedRound` or `MaskedRoundOnKnownCohort`.
    Masked(pb::MaskedRoundResponse),
    /// `UnmaskRound`.
    Unmask(pb::UnmaskRoundResponse),
}

/// A node's secure-aggregation stack, cheap to clone; clones share the node's limits.
pub type SecureNodeService = BoxCloneSyncService<SecureRequest, SecureReply, BoxError>;

/// Sends one secure-aggregation call to one node.
#[derive(Clone)]
pub struct SecureCall {
    client: SecureAggregationServiceClient<NodeChannel>,
    deadline: Duration,
}

impl SecureCall {
    /// Calls over `channel`; the node is told it has `deadline` to answer.
    pub fn new(channel: NodeChannel, deadline: Duration) -> Self {
        Self {
            client: SecureAggregationServiceClient::new(channel),
            deadline,
        }
    }
}

impl Service<SecureRequest> for SecureCall {
    type Response = SecureReply;
    type Error = tonic::Status;
    type Future = Pin<Box<dyn Future<Output = Result<SecureReply, tonic::Status>> + Send>>;

    /// Always ready, as the aggregate call: readiness is the layers' business.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: SecureRequest) -> Self::Future {
        let mut client = self.client.clone();
        let deadline = self.deadline;
        fn prepare<T>(message: T, deadline: Duration) -> tonic::Request<T> {
            let mut request = tonic::Request::new(message);
            request.set_timeout(deadline);
            psonet_serve::telemetry::inject_trace_context(request.metadata_mut());
            request
        }
        Box::pin(async move {
            Ok(match request {
                SecureRequest::MaskingKey(r) => SecureReply::MaskingKey(
                    client
                        .get_masking_key(prepare(r, deadline))
                        .await?
                        .into_inner(),
                ),
                SecureRequest::Masked(r) => SecureReply::Masked(
                    client
                        .masked_round(prepare((*r).clone(), deadline))
                        .await?
                        .into_inner(),
                ),
                SecureRequest::MaskedOnKnownCohort(r) => SecureReply::Masked(
                    client
                        .masked_round_on_known_cohort(prepare((*r).clone(), deadline))
                        .await?
                        .into_inner()
                        .answer
                        .unwrap_or_default(),
                ),
                SecureRequest::Unmask(r) => SecureReply::Unmask(
                    client
                        .unmask_round(prepare(r, deadline))
                        .await?
                        .into_inner(),
                ),
            })
        })
    }
}

/// The secure-aggregation stack of one node over `channel`, within the node's `limits`.
pub fn secure_stack(
    channel: NodeChannel,
    limits: &NodeLimits,
    fanout: &FanoutConfig,
) -> SecureNodeService {
    layered(
        SecureCall::new(channel, fanout.node_deadline()),
        limits,
        fanout,
    )
}

/// Why a node's call brought nothing usable.
#[derive(Debug, Clone)]
pub struct CallFailure {
    /// Its coverage status.
    pub status: CoverageStatus,
    /// In words.
    pub detail: String,
    /// The node's `ErrorInfo` reason, when it refused with one.
    pub reason: Option<String>,
    /// The `facility` entry of that `ErrorInfo`'s metadata (whose key was refused), if any.
    pub about: Option<String>,
}

/// One node's outcome of one call.
pub struct Called {
    /// The answer, or why not.
    pub result: Result<SecureReply, CallFailure>,
    /// Time to answer or fail.
    pub latency: Duration,
}

/// Sends `requests[i]` to `facilities[i]`, all at once, each through its stack and waiting at
/// most until `until`.
pub async fn call_each(
    facilities: &[&Facility],
    requests: Vec<SecureRequest>,
    until: Instant,
    what: &'static str,
) -> Vec<Called> {
    let calls = facilities
        .iter()
        .zip(requests)
        .map(|(facility, request)| call_one(facility, request, until, what));
    futures::future::join_all(calls)
        .instrument(tracing::info_span!(
            "secure_fan_out",
            call = what,
            facilities = facilities.len()
        ))
        .await
}

async fn call_one(
    facility: &Facility,
    request: SecureRequest,
    until: Instant,
    what: &'static str,
) -> Called {
    let started = Instant::now();
    let deadline = until.saturating_duration_since(started);
    let span = tracing::info_span!("node_call", facility = %facility.id, call = what, otel.kind = "client");
    let call = facility.secure.clone().oneshot(request).instrument(span);
    let outcome = facility.within(deadline, call).await;
    let result = outcome.map_err(|error| {
        let (mut status, detail) = classify(&error, facility, deadline);
        let node_status = error.downcast_ref::<tonic::Status>();
        // A round the node declines on the protocol's grounds (cohort, keys, differencing,
        // a used query id) is a refusal, like one on policy grounds.
        if node_status.is_some_and(|s| s.code() == tonic::Code::FailedPrecondition) {
            status = CoverageStatus::Refused;
        }
        let (reason, about) = node_status.map_or((None, None), error_info);
        CallFailure {
            status,
            detail,
            reason,
            about,
        }
    });
    if let Err(failure) = &result {
        tracing::warn!(facility = %facility.id, call = what, status = failure.status.as_str_name(), detail = %failure.detail, "node call failed");
    }
    Called {
        result,
        latency: started.elapsed(),
    }
}

/// The `ErrorInfo` reason of a refusal, and its `facility` metadata.
fn error_info(status: &tonic::Status) -> (Option<String>, Option<String>) {
    use tonic_types::StatusExt;
    match status.get_details_error_info() {
        Some(info) => (Some(info.reason), info.metadata.get("facility").cloned()),
        None => (None, None),
    }
}
