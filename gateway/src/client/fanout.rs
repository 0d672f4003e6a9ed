//! Fan-out: ask every node at once, through its client stack, and wait for none longer than its
//! deadline.
//!
//! Each node's answer or failure is classified into a coverage status, so a benchmark always
//! says exactly who answered and why the others did not. The fan-out is one span and each node
//! call a child span whose context travels to the node, so a benchmark is one trace.

use crate::client::breaker::{BreakerOpen, ran_out_of_time};
use crate::client::node_metrics::NodeMetrics;
use crate::client::registry::{Facility, Registry};
use crate::link::table::NotLinked;
use futures::future::join_all;
use psonet_core::pb::{self, CoverageStatus};
use psonet_serve::diagnose::{Failure, diagnose};
use std::time::{Duration, Instant};
use tower::{BoxError, ServiceExt};
use tracing::Instrument;

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

/// Sends `request` to every facility `in_scope` admits, concurrently; each gets at most
/// `deadline` (the node stack enforces the configured node deadline; `deadline` bounds it
/// further when shorter). A node outside a peer group is not asked at all, so it spends no
/// privacy budget and audits no query it takes no part in.
pub async fn fan_out(
    registry: &Registry,
    request: pb::AggregateRequest,
    deadline: Duration,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Vec<NodeAnswer> {
    let asked: Vec<&Facility> = registry
        .facilities()
        .iter()
        .filter(|facility| in_scope(&facility.id))
        .collect();
    let span = tracing::info_span!("fan_out", facilities = asked.len());
    let calls = asked
        .into_iter()
        .map(|facility| ask(facility, request.clone(), deadline, registry.metrics()));
    join_all(calls).instrument(span).await
}

async fn ask(
    facility: &Facility,
    request: pb::AggregateRequest,
    deadline: Duration,
    metrics: &NodeMetrics,
) -> NodeAnswer {
    let started = Instant::now();
    let span = tracing::info_span!("node_call", facility = %facility.id, otel.kind = "client");
    let call = facility.service.clone().oneshot(request).instrument(span);
    let outcome = facility.within(deadline, call).await;
    let (response, status, detail) = match outcome {
        Ok(response) => (Some(response), CoverageStatus::Ok, String::new()),
        Err(error) => {
            let (status, detail) = classify(&error, facility, deadline);
            (None, status, detail)
        }
    };
    if status != CoverageStatus::Ok {
        tracing::warn!(facility = %facility.id, status = status.as_str_name(), %detail, "node did not contribute");
    }
    let answer = NodeAnswer {
        facility_id: facility.id.clone(),
        response,
        status,
        detail,
        latency: started.elapsed(),
    };
    record(metrics, &answer);
    answer
}

/// Per-node latency by coverage status, and the cells each node suppressed.
fn record(metrics: &NodeMetrics, answer: &NodeAnswer) {
    let status = answer
        .status
        .as_str_name()
        .trim_start_matches("COVERAGE_STATUS_");
    let suppressed = answer
        .response
        .as_ref()
        .map_or(0, |r| r.cells.iter().filter(|c| c.suppressed).count());
    metrics.record(
        &answer.facility_id,
        status,
        answer.latency,
        suppressed as u64,
    );
}

/// Names a failed node call precisely: which layer stopped it, or what the node or the
/// transport said.
pub(crate) fn classify(
    error: &BoxError,
    facility: &Facility,
    deadline: Duration,
) -> (CoverageStatus, String) {
    if let Some(not_linked) = error.downcast_ref::<NotLinked>() {
        return (CoverageStatus::Unavailable, not_linked.to_string());
    }
    let peer = match &facility.endpoint {
        Some(endpoint) if !facility.channel.linked_now() => {
            format!("the node of facility {} at {endpoint}", facility.id)
        }
        _ => format!("the node of facility {} over its link", facility.id),
    };
    let timed_out = (
        CoverageStatus::TimedOut,
        format!("{peer} did not answer within {} ms", deadline.as_millis()),
    );
    if error.is::<tower::timeout::error::Elapsed>() {
        return timed_out;
    }
    if error.is::<tower::load_shed::error::Overloaded>() {
        return (
            CoverageStatus::Unavailable,
            format!("{peer} was not asked: too many calls to it already in flight (load shed)"),
        );
    }
    if let Some(open) = error.downcast_ref::<BreakerOpen>() {
        return (CoverageStatus::Unavailable, format!("{peer} was {open}"));
    }
    let Some(status) = error.downcast_ref::<tonic::Status>() else {
        return (CoverageStatus::Error, format!("{peer}: {error}"));
    };
    if ran_out_of_time(status) {
        return timed_out;
    }
    if status.code() == tonic::Code::Cancelled {
        let why = status.message();
        return (
            CoverageStatus::Unavailable,
            format!("{peer} closed the connection before answering ({why})"),
        );
    }
    let failure = diagnose(status, &peer);
    let coverage = match failure {
        Failure::Unreachable(_) => CoverageStatus::Unavailable,
        Failure::Refused(_) => CoverageStatus::Refused,
        Failure::TimedOut(_) => CoverageStatus::TimedOut,
        // Another node answers at this facility's endpoint: what it would say is not this
        // facility's, so it is not asked (an ERROR, not a node that is down).
        Failure::WrongPeer(why) => {
            return (
                CoverageStatus::Error,
                format!(
                    "{why}: the registry's endpoint for {} reaches another node",
                    facility.id
                ),
            );
        }
        Failure::Invalid(_) | Failure::Other(_) => CoverageStatus::Error,
    };
    (coverage, failure.explanation().to_string())
}
