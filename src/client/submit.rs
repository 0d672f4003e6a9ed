//! Sending events and exposure to a node's local listener.

use super::{channel, explain};
use anyhow::Result;
use psonet_core::pb::{self, reporting_service_client::ReportingServiceClient};
use std::path::Path;
use tonic::transport::Channel;

/// Streams `events` through one `SubmitEvents` call on `client`; the summary arrives once every
/// event of the stream is durable.
pub async fn stream(
    client: &mut ReportingServiceClient<Channel>,
    events: Vec<pb::Event>,
) -> Result<pb::SubmitEventsResponse, tonic::Status> {
    let requests = events
        .into_iter()
        .map(|event| pb::SubmitEventsRequest { event: Some(event) });
    let response = client.submit_events(tokio_stream::iter(requests)).await?;
    Ok(response.into_inner())
}

/// Streams `events` through `SubmitEvents` to the node at `addr` as `identity`, and returns the
/// node's summary.
pub async fn events(
    addr: &str,
    identity: &Path,
    events: Vec<pb::Event>,
) -> Result<pb::SubmitEventsResponse> {
    let mut client = ReportingServiceClient::new(channel(addr, identity)?);
    match stream(&mut client, events).await {
        Ok(summary) => Ok(summary),
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
