//! Sending events and exposure to a node's local listener.

use crate::client::explain;
use anyhow::Result;
use psonet_core::pb::{self, reporting_service_client::ReportingServiceClient};
use tonic::transport::Channel;

/// Streams `events` through `SubmitEvents` and returns the node's summary.
pub async fn events(
    channel: Channel,
    events: Vec<pb::Event>,
    peer: &str,
) -> Result<pb::SubmitEventsResponse> {
    let stream = tokio_stream::iter(
        events
            .into_iter()
            .map(|event| pb::SubmitEventsRequest { event: Some(event) }),
    );
    ReportingServiceClient::new(channel)
        .submit_events(stream)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| explain(s, peer))
}

/// Records exposure, all records in one request.
pub async fn exposure(
    channel: Channel,
    records: Vec<pb::ExposureRecord>,
    peer: &str,
) -> Result<u32> {
    ReportingServiceClient::new(channel)
        .record_exposure(pb::RecordExposureRequest { records })
        .await
        .map(|r| r.into_inner().recorded)
        .map_err(|s| explain(s, peer))
}
