//! Clients for people: connecting with an identity directory and explaining failures plainly.

use anyhow::{Context, Result, anyhow};
use psonet_core::diagnose::diagnose;
use psonet_core::tls::TlsFiles;
use std::path::Path;
use tonic::transport::{Channel, Endpoint};

/// A channel to `addr` (`host:port` or `https://host:port`) with the identity in `identity`
/// (`ca.pem`, `cert.pem`, `key.pem`). Connects on first call.
pub fn channel(addr: &str, identity: &Path) -> Result<Channel> {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("https://{addr}")
    };
    let files = TlsFiles {
        ca: identity.join("ca.pem"),
        cert: identity.join("cert.pem"),
        key: identity.join("key.pem"),
    };
    let tls = files
        .load("--identity")
        .context("loading the client identity")?;
    let endpoint = Endpoint::from_shared(url.clone())
        .with_context(|| format!("{addr:?} is not an address"))?;
    let host = endpoint
        .uri()
        .host()
        .unwrap_or("localhost")
        .trim_matches(['[', ']'])
        .to_string();
    Ok(endpoint
        .tls_config(tls.client_config(&host))
        .with_context(|| format!("TLS setup for {url}"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy())
}

/// The failed call as an error a person can act on.
pub fn explain(status: tonic::Status, peer: &str) -> anyhow::Error {
    anyhow!("{}", diagnose(&status, peer).explanation())
}
