//! The facility registry: per facility node, how the gateway reaches it — a lazily connected mTLS
//! channel to its federation listener, its links (when it dials out), or both — and over that
//! the node's client stack (deadline, load shedding, concurrency limit, retry budget, breaker).
//!
//! Dialled channels connect on first use, within the connect timeout, and reconnect by
//! themselves, so a node that is down costs nothing until it is queried, and a node that comes
//! back is used again without a restart; a node that dials out is used from its first link on.

use crate::client::breaker::{Breaker, BreakerPolicy};
use crate::client::connector::NodeConnector;
use crate::client::node_channel::NodeChannel;
use crate::client::node_metrics::NodeMetrics;
use crate::client::stack::{NodeLimits, NodeService, node_stack};
use crate::config::{FacilityEntry, FanoutConfig};
use crate::link::table::LinkTable;
use crate::secure::node_call::{SecureNodeService, secure_stack};
use psonet_serve::identity::Principal;
use psonet_serve::metrics::Metrics;
use rustls::ClientConfig;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Endpoint;
use tower::BoxError;

/// A facility the gateway can query.
#[derive(Clone)]
pub struct Facility {
    /// Facility id.
    pub id: String,
    /// Where its node listens, when the gateway dials it.
    pub endpoint: Option<String>,
    /// Channel to its federation API, over its listener or its link (bare: no deadline, retry
    /// or breaker).
    pub channel: NodeChannel,
    /// The node's client stack for aggregate queries; clones share its limits and breaker.
    pub service: NodeService,
    /// The node's client stack for secure aggregation: the same layers, sharing the same
    /// in-flight limit, breaker and retry budget.
    pub secure: SecureNodeService,
    /// The node's breaker, to report its state.
    pub breaker: Breaker,
}

impl Facility {
    /// Awaits `call` to this facility's node for at most `deadline` (past it, tower's
    /// `Elapsed`), unless the node dials out and has no live link: then it is not asked —
    /// nothing could carry the call — and the error is the `NotLinked` coverage reads. Every kind
    /// of call to a node (aggregate, secure round, learning-loop RPC) goes through here.
    pub async fn within<T, E: Into<BoxError>>(
        &self,
        deadline: Duration,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, BoxError> {
        if let Err(not_linked) = self.channel.current() {
            return Err(not_linked.into());
        }
        match tokio::time::timeout(deadline, call).await {
            Ok(outcome) => outcome.map_err(Into::into),
            Err(_) => Err(tower::timeout::error::Elapsed::new().into()),
        }
    }
}

/// Why the registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An endpoint is not a URI.
    #[error("a facility endpoint is not a URI")]
    Endpoint(#[from] tonic::transport::Error),
    /// A server name is not a DNS name or IP address.
    #[error("facility {0}: {1}")]
    ServerName(String, String),
    /// A facility has no endpoint and the gateway accepts no links.
    #[error("facility {0} has no endpoint and the gateway has no link listener")]
    Unreachable(String),
}

/// Every facility of the network, in configuration order.
#[derive(Clone)]
pub struct Registry {
    facilities: Vec<Facility>,
    metrics: NodeMetrics,
}

impl Registry {
    /// Builds a channel and client stack per facility of `network`; none connects yet. `tls`
    /// presents the gateway's (reloadable) client certificate to nodes it dials, and every
    /// connection checks that the node is the facility of its entry; `links`, when the gateway
    /// accepts links, holds those of nodes that dial out. Fan-outs record into `metrics`, which
    /// also gets each node's breaker state as a gauge read at every scrape.
    pub fn new(
        network: &str,
        entries: &[FacilityEntry],
        tls: Arc<ClientConfig>,
        links: Option<Arc<LinkTable>>,
        fanout: &FanoutConfig,
        metrics: &Metrics,
    ) -> Result<Self, RegistryError> {
        let policy = BreakerPolicy {
            failures: fanout.breaker_failures,
            backoff: fanout.breaker_backoff(),
            max_backoff: fanout.breaker_max_backoff(),
            deadline: fanout.node_deadline(),
        };
        let facilities = entries
            .iter()
            .map(|entry| {
                let dialled = match (&entry.endpoint, entry.server_name()) {
                    (Some(endpoint), Some(server_name)) => {
                        // TLS is the connector's job, so the channel speaks plain HTTP/2 to it.
                        let plain = endpoint.replacen("https://", "http://", 1);
                        let facility = Principal::facility(network, &entry.id);
                        let connector = NodeConnector::new(tls.clone(), &server_name, facility)
                            .map_err(|why| RegistryError::ServerName(entry.id.clone(), why))?;
                        let channel = Endpoint::from_shared(plain)?
                            .connect_timeout(fanout.connect_timeout().min(fanout.node_deadline()))
                            .connect_with_connector_lazy(connector);
                        Some(channel)
                    }
                    _ => None,
                };
                let channel = NodeChannel::new(&entry.id, dialled, links.clone())
                    .ok_or_else(|| RegistryError::Unreachable(entry.id.clone()))?;
                let breaker = Breaker::new(policy);
                let limits = NodeLimits::new(breaker.clone(), fanout);
                Ok(Facility {
                    id: entry.id.clone(),
                    endpoint: entry.endpoint.clone(),
                    service: node_stack(channel.clone(), &limits, fanout),
                    secure: secure_stack(channel.clone(), &limits, fanout),
                    channel,
                    breaker,
                })
            })
            .collect::<Result<Vec<_>, RegistryError>>()?;
        let breakers: Vec<_> = facilities
            .iter()
            .map(|f| (f.id.clone(), f.breaker.clone()))
            .collect();
        Ok(Self {
            facilities,
            metrics: NodeMetrics::register(metrics, breakers),
        })
    }

    /// Where fan-outs record their figures.
    pub fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }

    /// The facilities, in configuration order.
    pub fn facilities(&self) -> &[Facility] {
        &self.facilities
    }
}
