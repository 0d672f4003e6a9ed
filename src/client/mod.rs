//! Clients for people: connecting with an identity directory and explaining failures plainly.

pub mod submit;
mod tls_probe;

use anyhow::{Context, Result, anyhow};
use psonet_serve::diagnose::{Failure, diagnose_as};
use psonet_serve::tls::TlsFiles;
use std::path::Path;
use tonic::transport::{Channel, Endpoint};

/// `host:port` or `https://host:port` as a URL, its `host:port`, and its host.
fn parse_addr(addr: &str) -> Result<(String, String, String)> {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("https://{addr}")
    };
    let uri: tonic::codegen::http::Uri = url
        .parse()
        .with_context(|| format!("{addr:?} is not an address"))?;
    let host = uri.host().unwrap_or("localhost").to_string();
    let port = uri.port_u16().unwrap_or(443);
    Ok((
        url,
        format!("{host}:{port}"),
        host.trim_matches(['[', ']']).to_string(),
    ))
}

/// A channel to `addr` (`host:port` or `https://host:port`) with the identity in `identity`
/// (`ca.pem`, `cert.pem`, `key.pem`). Connects on first call.
pub fn channel(addr: &str, identity: &Path) -> Result<Channel> {
    let (url, _, host) = parse_addr(addr)?;
    let files = TlsFiles {
        ca: identity.join("ca.pem"),
        cert: identity.join("cert.pem"),
        key: identity.join("key.pem"),
    };
    let tls = files
        .load("--identity")
        .context("loading the client identity")?;
    Ok(Endpoint::from_shared(url.clone())
        .with_context(|| format!("{addr:?} is not an address"))?
        .tls_config(tls.client_config(&host))
        .with_context(|| format!("TLS setup for {url}"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy())
}

/// Why a call to `addr` failed, in plain words. When the transport hides the cause (a refused
/// certificate often shows up as a broken pipe), the TLS handshake is repeated alone to read
/// the peer's alert. `ca` is the CA the client trusts; `identity` holds its cert.pem and key.pem.
pub async fn explain_failure(
    status: &tonic::Status,
    addr: &str,
    peer: &str,
    ca: &Path,
    identity: Option<&Path>,
) -> Failure {
    let own = identity.and_then(own_certificate);
    let first = diagnose_as(status, peer, own.as_deref());
    // A status with a source was made by the transport, not sent by the peer.
    let hidden =
        std::error::Error::source(status).is_some() && !matches!(first, Failure::Refused(_));
    if hidden
        && let Ok((_, host_port, host)) = parse_addr(addr)
        && let Some(found) =
            tls_probe::probe(&host_port, &host, ca, identity, own.as_deref(), peer).await
    {
        return found;
    }
    first
}

/// The leaf certificate (DER) in `identity`/cert.pem, to explain a refusal of it.
fn own_certificate(identity: &Path) -> Option<Vec<u8>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let der = CertificateDer::from_pem_file(identity.join("cert.pem")).ok()?;
    Some(der.to_vec())
}

/// The failed call as an error a person can act on (identity directory as for [`channel`]).
pub async fn explain(
    status: tonic::Status,
    addr: &str,
    peer: &str,
    identity: &Path,
) -> anyhow::Error {
    let failure = explain_failure(
        &status,
        addr,
        peer,
        &identity.join("ca.pem"),
        Some(identity),
    )
    .await;
    anyhow!("{}", failure.explanation())
}
