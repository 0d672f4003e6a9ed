//! Fan-out: ask every node at once, wait for none longer than its deadline.
//!
//! Each node's answer or failure is classified into a coverage status, so a benchmark always
//! says exactly who answered and why the others did not.

use crate::registry::{Facility, Registry};
use futures::future::join_all;
use psonet_core::diagnose::{Failure, diagnose};
use psonet_core::pb::{self, CoverageStatus, aggregate_service_client::AggregateServiceClient};
use std::time::{Duration, Instant};

/// What one node gave back.
pub struct NodeAnswer {
    /// Facility id.
    pub facility_id: String,
    /// The aggregate, when the node answered.
    pub response: Option<pb::AggregateResponse>,
    /// Coverage status.
    pub status: CoverageStatus,
    /// Why, for any status other than OK.
    pub detail: String,
    /// Time to answer or fail.
    pub latency: Duration,
}

/// Sends `request` to every facility concurrently; each gets at most `deadline`.
pub async fn fan_out(
    registry: &Registry,
    request: pb::AggregateRequest,
    deadline: Duration,
) -> Vec<NodeAnswer> {
    let calls = registry
        .facilities()
        .iter()
        .map(|facility| ask(facility, request.clone(), deadline));
    join_all(calls).await
}

async fn ask(facility: &Facility, request: pb::AggregateRequest, deadline: Duration) -> NodeAnswer {
    let started = Instant::now();
    let mut client = AggregateServiceClient::new(facility.channel.clone());
    let mut request = tonic::Request::new(request);
    request.set_timeout(deadline);
    let outcome = tokio::time::timeout(deadline, client.aggregate(request)).await;
    let peer = format!(
        "the node of facility {} at {}",
        facility.id, facility.endpoint
    );
    let (response, status, detail) = match outcome {
        Ok(Ok(response)) => (
            Some(response.into_inner()),
            CoverageStatus::Ok,
            String::new(),
        ),
        Ok(Err(status)) => {
            let failure = diagnose(&status, &peer);
            let coverage = match failure {
                Failure::Unreachable(_) => CoverageStatus::Unavailable,
                Failure::Refused(_) => CoverageStatus::Refused,
                Failure::TimedOut(_) => CoverageStatus::TimedOut,
                Failure::Invalid(_) | Failure::Other(_) => CoverageStatus::Error,
            };
            (None, coverage, failure.explanation().to_string())
        }
        Err(_) => (
            None,
            CoverageStatus::TimedOut,
            format!("{peer} did not answer within {} ms", deadline.as_millis()),
        ),
    };
    if status != CoverageStatus::Ok {
        tracing::warn!(facility = %facility.id, status = status.as_str_name(), %detail, "node did not contribute");
    }
    NodeAnswer {
        facility_id: facility.id.clone(),
        response,
        status,
        detail,
        latency: started.elapsed(),
    }
}
