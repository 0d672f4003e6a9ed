//! The facility registry: one lazily connected mTLS channel per facility node, and over it the
//! node's client stack (deadline, load shedding, concurrency limit, retry budget, breaker).
//!
//! Channels connect on first use, within the connect timeout, and reconnect by themselves, so a
//! node that is down costs nothing until it is queried, and a node that comes back is used again
//! without a restart.

use crate::breaker::{Breaker, BreakerPolicy};
use crate::config::{FacilityEntry, FanoutConfig};
use crate::stack::{NodeService, node_stack};
use psonet_core::tls::TlsMaterial;
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
    /// The node's breaker, to report its state.
    pub breaker: Breaker,
}

/// Every facility of the network, in configuration order.
#[derive(Clone)]
pub struct Registry {
    facilities: Vec<Facility>,
}

impl Registry {
    /// Builds a channel and client stack per facility; none connects yet.
    pub fn new(
        entries: &[FacilityEntry],
        tls: &TlsMaterial,
        fanout: &FanoutConfig,
    ) -> Result<Self, tonic::transport::Error> {
        let policy = BreakerPolicy {
            failures: fanout.breaker_failures,
            backoff: fanout.breaker_backoff(),
            max_backoff: fanout.breaker_max_backoff(),
            deadline: fanout.node_deadline(),
        };
        let facilities = entries
            .iter()
            .map(|entry| {
                let channel = Endpoint::from_shared(entry.endpoint.clone())?
                    .tls_config(tls.client_config(&entry.server_name()))?
                    .connect_timeout(fanout.connect_timeout().min(fanout.node_deadline()))
                    .tcp_nodelay(true)
                    .connect_lazy();
                let breaker = Breaker::new(policy);
                Ok(Facility {
                    id: entry.id.clone(),
                    endpoint: entry.endpoint.clone(),
                    service: node_stack(channel.clone(), breaker.clone(), fanout),
                    channel,
                    breaker,
                })
            })
            .collect::<Result<_, tonic::transport::Error>>()?;
        Ok(Self { facilities })
    }

    /// The facilities, in configuration order.
    pub fn facilities(&self) -> &[Facility] {
        &self.facilities
    }
}
