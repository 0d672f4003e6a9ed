//! The node's outbound link to the gateway: for a node behind a hospital firewall that must not
//! open an inbound port, the node dials out and serves its federation API over the connection
//! it made (see [`psonet_serve::link`] for why that needs no second query path).
//!
//! - [`resolve`]: the endpoint's host name to every address it has (one per gateway replica);
//! - [`dial`]: one link per address — dial, check the gateway, serve, redial with [`backoff`];
//! - [`state`]: what is linked since when, for `psonet links`, `psonet health` and metrics.
//!
//! [`GatewayLinks::start`] resolves the name at once and again every `resolve_interval_s`,
//! starting a dialler for each new address and stopping the one of an address that went away
//! (a replica rolled or scaled down).

pub mod backoff;
pub mod dial;
pub mod resolve;
pub mod state;

use crate::config::GatewayLinkConfig;
use dial::{Dialler, ServeLink};
use psonet_serve::listener::Shutdown;
use psonet_serve::tls::{ReloadableIdentity, TlsError};
use rustls::pki_types::ServerName;
use state::LinkStates;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Why the links could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LinkSetupError {
    /// The node's certificate, key or CA is not usable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The endpoint or server name is not usable.
    #[error("gateway_link: {0}")]
    Config(String),
}

/// The links of a running node.
pub struct GatewayLinks {
    task: JoinHandle<()>,
}

impl GatewayLinks {
    /// Starts linking to the gateway of `network` named by `config`, presenting `identity`
    /// (reloaded in place, so a rotated certificate is presented from the next link on), and
    /// serving each link with `serve`, until `shutdown`. `states` records what happens.
    pub fn start(
        config: &GatewayLinkConfig,
        network: &str,
        identity: &Arc<ReloadableIdentity>,
        serve: ServeLink,
        states: Arc<LinkStates>,
        shutdown: &Shutdown,
    ) -> Result<Self, LinkSetupError> {
        let config_error = |e: crate::config::ConfigError| LinkSetupError::Config(e.to_string());
        let (host, port) = config.host_port().map_err(config_error)?;
        let name = config.server_name().map_err(config_error)?;
        let server_name = ServerName::try_from(name.clone())
            .map_err(|e| LinkSetupError::Config(format!("{name:?} is not a host name: {e}")))?;
        let dialler = Dialler {
            tls: tokio_rustls::TlsConnector::from(identity.client_config()?),
            server_name,
            network: network.to_string(),
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            backoff: (
                Duration::from_millis(config.reconnect_backoff_ms),
                Duration::from_millis(config.reconnect_backoff_max_ms),
            ),
            serve,
            states,
        };
        let resolver = Resolver {
            host,
            port,
            hosts_file: config.hosts_file.clone(),
            every: Duration::from_secs(config.resolve_interval_s),
        };
        let task = tokio::spawn(resolver.run(dialler, shutdown.clone()));
        Ok(Self { task })
    }

    /// Waits until every link has been closed after the node's shutdown signal (in-flight
    /// calls finish first).
    pub async fn stopped(self) -> Result<(), tokio::task::JoinError> {
        self.task.await
    }
}

/// Resolves the endpoint periodically and keeps one dialler per address.
struct Resolver {
    host: String,
    port: u16,
    hosts_file: Option<PathBuf>,
    every: Duration,
}

impl Resolver {
    async fn run(self, dialler: Dialler, shutdown: Shutdown) {
        let mut diallers: BTreeMap<SocketAddr, (Shutdown, JoinHandle<()>)> = BTreeMap::new();
        let mut failures = backoff::Backoff::new(Duration::from_millis(200), self.every);
        loop {
            let wait = match resolve::resolve(&self.host, self.port, self.hosts_file.as_deref())
                .await
            {
                Ok(addresses) if !addresses.is_empty() => {
                    failures.reset();
                    diallers.retain(|address, (stop, _)| {
                        let keep = addresses.contains(address);
                        if !keep {
                            tracing::info!(gateway = %address, "the gateway address went away; closing its link");
                            stop.trigger();
                        }
                        keep
                    });
                    for address in addresses {
                        diallers.entry(address).or_insert_with(|| {
                            let stop = Shutdown::new();
                            let task = tokio::spawn(dialler.clone().run(address, stop.clone()));
                            (stop, task)
                        });
                    }
                    self.every
                }
                Ok(_) => {
                    tracing::warn!(host = %self.host, "the gateway's name resolves to no address");
                    failures.next_wait()
                }
                Err(e) => {
                    tracing::warn!(host = %self.host, error = %e, "cannot resolve the gateway's name");
                    failures.next_wait()
                }
            };
            tokio::select! {
                _ = shutdown.signalled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        for (stop, _) in diallers.values() {
            stop.trigger();
        }
        for (_, task) in diallers.into_values() {
            let _ = task.await;
        }
    }
}
