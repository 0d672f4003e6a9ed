//! Sending events and exposure to a node's local listener.

use crate::client::{channel, explain};
use anyhow::Result;
use psonet_core::pb::{self, reporting_service_client::ReportingServiceClient};
use std::path::Path;

/// Streams `events` through `SubmitEvents` to the node at `addr` as `identity`, and returns the
/// node's summary.
pub async fn events(
    addr: &str,
    identity: &Path,
    events: Vec<pb::Event>,
) -> Result<pb::SubmitEventsResponse> {
    let stream = tokio_stream::iter(
        events
            .into_iter()
            .map(|event| pb::SubmitEventsRequest { event: Some(event) }),
    );
    match ReportingServiceClient::new(channel(addr, identity)?)
        .submit_events(stream)
        .await
    {
        Ok(response) => Ok(response.into_inner()),
        Err(s) => Err(explain(s, addr, &format!("the node at {addr}"), identity).await),
    }
}

/// Records exposure at the node at `addr`, all records in one request.
pub async fn exposure(
    addr: &str,
    identity: &Path,
    records: Vec<pb::ExposureRecord>,
) -> Result<u32> {
    let request = pb::RecordExposureRequest { records };
    match ReportingServiceClient::new(channel(addr, identity)?)
        .record_exposure(request)
        .await
    {
        Ok(response) => Ok(response.into_inner().recorded),
        Err(s) => Err(explain(s, addr, &format!("the node at {addr}"), identity).await),
    }
}
