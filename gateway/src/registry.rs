//! The facility registry: one lazily connected mTLS channel per facility node.
//!
//! Channels connect on first use and reconnect by themselves, so a node that is down costs
//! nothing until it is queried, and a node that comes back is used again without a restart.

use crate::config::{FacilityEntry, FanoutConfig};
use psonet_core::tls::TlsMaterial;
use tonic::transport::{Channel, Endpoint};

/// A facility the gateway can query.
#[derive(Clone)]
pub struct Facility {
    /// Facility id.
    pub id: String,
    /// Where its node is.
    pub endpoint: String,
    /// Channel to its federation listener.
    pub channel: Channel,
}

/// Every facility of the network, in configuration order.
#[derive(Clone)]
pub struct Registry {
    facilities: Vec<Facility>,
}

impl Registry {
    /// Builds a channel per facility; none connects yet.
    pub fn new(
        entries: &[FacilityEntry],
        tls: &TlsMaterial,
        fanout: &FanoutConfig,
    ) -> Result<Self, tonic::transport::Error> {
        let facilities = entries
            .iter()
            .map(|entry| {
                let channel = Endpoint::from_shared(entry.endpoint.clone())?
                    .tls_config(tls.client_config(&entry.server_name()))?
                    .connect_timeout(fanout.connect_timeout())
                    .tcp_nodelay(true)
                    .connect_lazy();
                Ok(Facility {
                    id: entry.id.clone(),
                    endpoint: entry.endpoint.clone(),
                    channel,
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
