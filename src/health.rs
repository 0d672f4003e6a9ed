//! `psonet health`: a gRPC health check over mutual TLS, for probes and people.
//!
//! Kubernetes' built-in gRPC probe speaks plaintext only, and every psonet listener requires a
//! client certificate, so container probes run this instead (an `exec` probe): it makes a real
//! `grpc.health.v1.Health/Check` call and exits non-zero unless the service is `SERVING`.
//!
//! After `SERVING` it prints the server's links when it has any and admits the caller: on the
//! gateway the facility nodes linked to it (asked as a partner), on a node's local listener the
//! gateway addresses it holds links to. A probe's exit code never depends on them.

use crate::client::{channel, explain};
use anyhow::{Result, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// Arguments of `psonet health`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The listener, e.g. 127.0.0.1:7100.
    #[arg(long)]
    addr: String,
    /// Identity directory the listener admits (ca.pem, cert.pem, key.pem).
    #[arg(long)]
    identity: PathBuf,
    /// Service to check, e.g. psonet.v1.BenchmarkService (default: the whole server).
    #[arg(long, default_value = "")]
    service: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

/// Runs `psonet health`: `SERVING` on `out`, or an error that says what answered instead.
pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let wait = Duration::from_secs(args.timeout);
    check(&args.addr, &args.identity, &args.service, wait).await?;
    writeln!(out, "SERVING")?;
    if let Ok(links) = crate::links::list(&args.addr, &args.identity, wait).await
        && !links.links.is_empty()
    {
        write!(out, "{}", crate::render::table::links(&links))?;
    }
    Ok(())
}

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
