//! `psonet health`: a gRPC health check over mutual TLS, for probes and people.
//!
//! Kubernetes' built-in gRPC probe speaks plaintext only, and every psonet listener requires a
//! client certificate, so container probes run this instead (an `exec` probe): it makes a real
//! `grpc.health.v1.Health/Check` call and exits non-zero unless the service is `SERVING`.

use crate::client::{channel, explain};
use anyhow::{Result, bail};
use std::path::Path;
use std::time::Duration;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// Checks `service` ("" for the server as a whole) at `addr` as `identity`, within `timeout`.
pub async fn check(addr: &str, identity: &Path, service: &str, timeout: Duration) -> Result<()> {
    let peer = format!("the server at {addr}");
    let request = HealthCheckRequest {
        service: service.to_string(),
    };
    let mut client = HealthClient::new(channel(addr, identity)?);
    let call = client.check(request);
    let answer = match tokio::time::timeout(timeout, call).await {
        Ok(Ok(response)) => response.into_inner().status,
        Ok(Err(s)) => return Err(explain(s, addr, &peer, identity).await),
        Err(_) => bail!("{peer} did not answer within {timeout:?}"),
    };
    match ServingStatus::try_from(answer) {
        Ok(ServingStatus::Serving) => Ok(()),
        Ok(other) => bail!("{peer} reports {}", other.as_str_name()),
        Err(_) => bail!("{peer} sent an unknown health status {answer}"),
    }
}
