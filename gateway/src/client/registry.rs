//! The facility registry: one lazily connected mTLS channel per facility node, and over it the
//! node's client stack (deadline, load shedding, concurrency limit, retry budget, breaker).
//!
//! Channels connect on first use, within the connect timeout, and reconnect by themselves, so a
//! node that is down costs nothing until it is queried, and a node that comes back is used again
//! without a restart.

use crate::client::breaker::{Breaker, BreakerPolicy};
use crate::client::connector::NodeConnector;
use crate::client::node_metrics::NodeMetrics;
use crate::client::stack::{NodeLimits, NodeService, node_stack};
use crate::config::{FacilityEntry, FanoutConfig};
use crate::secure::node_call::{SecureNodeService, secure_stack};
use psonet_serve::identity::Principal;
use psonet_serve::metrics::Metrics;
use rustls::ClientConfig;
use std::sync::Arc;
use tonic::transport::{Channel, Endpoint};

/// A facility the gateway can query.
#[derive(Clone)]
pub struct Facility {
    /// Facility id.
    pub id: String,
    /// Where its node is.
    pub endpoint: String,
    /// Channel to its federation listener (bare: no deadline, retry or breaker).
    pub channel: Channel,
    /// The node's client stack for aggregate queries; clones share its limits and breaker.
    pub service: NodeService,
    /// The node's client stack for secure aggregation: the same layers, sharing the same
    /// in-flight limit, breaker and retry budget.
    pub secure: SecureNodeService,
    /// The node's breaker, to report its state.
    pub breaker: Breaker,
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
}

/// Every facility of the network, in configuration order.
#[derive(Clone)]
pub struct Registry {
    facilities: Vec<Facility>,
    metrics: NodeMetrics,
}

impl Registry {
    /// Builds a channel and client stack per facility of `network`; none connects yet. `tls`
    /// presents the gateway's (reloadable) client certificate, and every connection checks
    /// that the node is the facility of its entry; fan-outs record into `metrics`, which also
    /// gets each node's breaker state as a gauge read at every scrape.
    pub fn new(
        network: &str,
        entries: &[FacilityEntry],
        tls: Arc<ClientConfig>,
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
                // TLS is the connector's job, so the channel itself speaks plain HTTP/2 to it.
                let plain = entry.endpoint.replacen("https://", "http://", 1);
                let facility = Principal::facility(network, &entry.id);
                let connector = NodeConnector::new(tls.clone(), &entry.server_name(), facility)
                    .map_err(|why| RegistryError::ServerName(entry.id.clone(), why))?;
                let channel = Endpoint::from_shared(plain)?
                    .connect_timeout(fanout.connect_timeout().min(fanout.node_deadline()))
                    .connect_with_connector_lazy(connector);
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
