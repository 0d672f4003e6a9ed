//! Pulling guidance from the gateway: once at start, then on a schedule, with the facility's
//! client identity, into the store. A pull that fails is logged and tried again at the next
//! tick; the guidance already held keeps being served.

use super::GuidancePullConfig;
use super::register::store_pulled;
use crate::store::{Store, StoreError};
use psonet_core::pb::{self, guidance_service_client::GuidanceServiceClient};
use psonet_serve::listener::Shutdown;
use psonet_serve::tls::TlsError;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Longest a pull may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why guidance could not be pulled.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The identity files are not usable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The gateway address is not usable, or the channel could not be set up.
    #[error("guidance.gateway {0:?}: {1}")]
    Endpoint(String, String),
    /// The gateway refused or failed the call.
    #[error("the gateway answered {0}")]
    Call(#[from] tonic::Status),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The host name the gateway's certificate must name, from `host:port`.
fn host_of(addr: &str) -> &str {
    let bare = addr.trim_start_matches("https://");
    let host = bare.rsplit_once(':').map_or(bare, |(host, _)| host);
    host.trim_matches(['[', ']'])
}

/// A lazily connecting channel to the gateway with the configured identity.
pub fn channel(config: &GuidancePullConfig) -> Result<Channel, PullError> {
    let tls = config.tls.load("guidance.tls")?;
    let bad =
        |e: tonic::transport::Error| PullError::Endpoint(config.gateway.clone(), e.to_string());
    let url = format!("https://{}", config.gateway.trim_start_matches("https://"));
    Ok(Endpoint::from_shared(url)
        .map_err(bad)?
        .tls_config(tls.client_config(host_of(&config.gateway)))
        .map_err(bad)?
        .connect_timeout(PULL_TIMEOUT)
        .timeout(PULL_TIMEOUT)
        .connect_lazy())
}

/// Pulls once: every item in force at the gateway, stored and made durable; returns how many
/// were new or changed.
pub async fn pull_once(store: &Store, channel: Channel) -> Result<usize, PullError> {
    let items = GuidanceServiceClient::new(channel)
        .list_guidance(pb::ListGuidanceRequest {})
        .await?
        .into_inner()
        .items;
    let changed = store_pulled(store, &items)?;
    store.make_durable().await?;
    Ok(changed)
}

/// Pulls at start and every `config.pull_interval()` until `shutdown`.
pub fn pull_in_background(
    store: Arc<Store>,
    config: &GuidancePullConfig,
    shutdown: &Shutdown,
) -> Result<(), PullError> {
    let channel = channel(config)?;
    let interval = config.pull_interval();
    let stopped = shutdown.signalled();
    tokio::spawn(async move {
        tokio::pin!(stopped);
        let mut ticks = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = ticks.tick() => {}
            }
            match pull_once(&store, channel.clone()).await {
                Ok(0) => tracing::debug!("guidance pulled; nothing new"),
                Ok(changed) => tracing::info!(changed, "guidance pulled"),
                Err(e) => tracing::warn!(error = %e, "guidance pull failed; will retry"),
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_what_the_certificate_must_name() {
        assert_eq!(host_of("pso.example.org:7100"), "pso.example.org");
        assert_eq!(host_of("https://127.0.0.1:7100"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7100"), "::1");
    }
}
