//! Asking every node whether it adopted a practice, and for its before/after counts if so
//! (`PracticeOutcomeService`), concurrently, each within the node deadline, with every node's
//! coverage classified as a benchmark's is.

use crate::client::fanout::classify;
use crate::client::registry::{Facility, Registry};
use futures::future::join_all;
use psonet_core::pb::{
    self, CoverageStatus, practice_outcome_service_client::PracticeOutcomeServiceClient,
};
use std::time::{Duration, Instant};
use tower::BoxError;

/// One node's answer, or why there is none.
pub struct OutcomeAnswer {
    /// Facility id.
    pub facility_id: String,
    /// The answer, when the node gave one.
    pub response: Option<pb::PracticeOutcomeResponse>,
    /// Its coverage row.
    pub coverage: pb::FacilityCoverage,
}

async fn ask(
    facility: &Facility,
    request: pb::PracticeOutcomeRequest,
    deadline: Duration,
) -> OutcomeAnswer {
    let started = Instant::now();
    let mut client = PracticeOutcomeServiceClient::new(facility.channel.clone());
    let mut call = tonic::Request::new(request);
    call.set_timeout(deadline);
    psonet_serve::telemetry::inject_trace_context(call.metadata_mut());
    let outcome = match tokio::time::timeout(deadline, client.practice_outcome(call)).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(BoxError::from(status)),
        Err(elapsed) => Err(BoxError::from(elapsed)),
    };
    let (response, status, detail) = match outcome {
        Ok(r) => (Some(r), CoverageStatus::Ok, String::new()),
        Err(e) if e.is::<tokio::time::error::Elapsed>() => {
            let elapsed: BoxError = tower::timeout::error::Elapsed::new().into();
            let (status, detail) = classify(&elapsed, facility, deadline);
            (None, status, detail)
        }
        Err(e) => {
            let (status, detail) = classify(&e, facility, deadline);
            (None, status, detail)
        }
    };
    OutcomeAnswer {
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

/// Sends `request` to every facility of `registry` at once; none is waited for past `deadline`.
pub async fn ask_all(
    registry: &Registry,
    request: &pb::PracticeOutcomeRequest,
    deadline: Duration,
) -> Vec<OutcomeAnswer> {
    join_all(
        registry
            .facilities()
            .iter()
            .map(|f| ask(f, request.clone(), deadline)),
    )
    .await
}
