//! What the node knows of its links, one entry per gateway address: up since when, or down
//! since when and why. `psonet links` and `psonet health` read it from the local listener
//! ([`LinkList`]), and Prometheus at every scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use psonet_core::pb::{self, link_service_server::LinkService};
use psonet_serve::link::timestamp;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};
use tonic::{Request, Response, Status};

/// One gateway address: its link now and its history since the node started.
#[derive(Debug, Clone, Default)]
struct AddressState {
    /// When the current link was made (wall clock, and monotonic for its age).
    up: Option<(SystemTime, Instant)>,
    /// When the last link went down.
    down_since: Option<SystemTime>,
    links_made: u64,
    last_error: String,
    peer_not_after: Option<SystemTime>,
}

/// Every gateway address the node dials, shared by the dialers, the local listener and metrics.
#[derive(Debug)]
pub struct LinkStates {
    facility: String,
    addresses: Mutex<BTreeMap<SocketAddr, AddressState>>,
}

impl LinkStates {
    /// No address yet, for `facility`'s node.
    pub fn new(facility: &str) -> Arc<Self> {
        Arc::new(Self {
            facility: facility.to_string(),
            addresses: Mutex::new(BTreeMap::new()),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<SocketAddr, AddressState>) -> R) -> R {
        f(&mut self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// `address` is one to dial (it resolved from the endpoint).
    pub fn dialling(&self, address: SocketAddr) {
        self.with(|a| {
            a.entry(address).or_default();
        });
    }

    /// A link to `address` is up; the gateway's certificate expires at `peer_not_after`.
    pub fn up(&self, address: SocketAddr, peer_not_after: Option<SystemTime>) {
        self.with(|a| {
            let state = a.entry(address).or_default();
            state.up = Some((SystemTime::now(), Instant::now()));
            state.links_made += 1;
            state.last_error.clear();
            state.peer_not_after = peer_not_after;
        });
    }

    /// The link to `address` went down, or could not be made, because of `why`.
    pub fn down(&self, address: SocketAddr, why: &str) {
        self.with(|a| {
            let state = a.entry(address).or_default();
            if state.up.take().is_some() || state.down_since.is_none() {
                state.down_since = Some(SystemTime::now());
            }
            state.last_error = why.to_string();
        });
    }

    /// `address` no longer resolves from the endpoint: it is not dialled any more.
    pub fn forget(&self, address: SocketAddr) {
        self.with(|a| a.remove(&address));
    }

    /// Links up now.
    pub fn links_up(&self) -> usize {
        self.with(|a| a.values().filter(|s| s.up.is_some()).count())
    }

    /// Every address, as `ListLinks` reports it.
    pub fn snapshot(&self) -> Vec<pb::Link> {
        self.with(|a| {
            a.iter()
                .map(|(address, state)| pb::Link {
                    facility_id: self.facility.clone(),
                    peer_address: address.to_string(),
                    up: state.up.is_some(),
                    since: state
                        .up
                        .map(|(at, _)| at)
                        .or(state.down_since)
                        .map(timestamp),
                    reconnects: state.links_made.saturating_sub(1),
                    last_error: state.last_error.clone(),
                    peer_certificate_not_after: state.up.and(state.peer_not_after).map(timestamp),
                })
                .collect()
        })
    }
}

/// The node's `LinkService` on its local listener: its own links, for the facility's staff.
#[derive(Clone)]
pub struct LinkList(pub Arc<LinkStates>);

#[tonic::async_trait]
impl LinkService for LinkList {
    async fn list_links(
        &self,
        _request: Request<pb::ListLinksRequest>,
    ) -> Result<Response<pb::ListLinksResponse>, Status> {
        Ok(Response::new(pb::ListLinksResponse {
            links: self.0.snapshot(),
        }))
    }
}

/// `psonet_gateway_links_up`, and per gateway address the link's age and its reconnects, read
/// at every scrape.
#[derive(Debug)]
pub struct LinkGauges(pub Arc<LinkStates>);

impl Collector for LinkGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let states = self.0.with(|a| a.clone());
        let up = states.values().filter(|s| s.up.is_some()).count();
        ConstGauge::new(up as i64).encode(encoder.encode_descriptor(
            "psonet_gateway_links_up",
            "Links this node holds to gateway addresses now",
            None,
            MetricType::Gauge,
        )?)?;
        let mut age = encoder.encode_descriptor(
            "psonet_gateway_link_age_seconds",
            "Age of the link to each gateway address that is up",
            None,
            MetricType::Gauge,
        )?;
        for (address, state) in &states {
            if let Some((_, since)) = state.up {
                let labels = [("gateway", address.to_string())];
                ConstGauge::new(since.elapsed().as_secs_f64())
                    .encode(age.encode_family(&labels)?)?;
            }
        }
        let mut reconnects = encoder.encode_descriptor(
            "psonet_gateway_link_reconnects",
            "Links made to each gateway address after the first since the node started",
            None,
            MetricType::Counter,
        )?;
        for (address, state) in &states {
            let labels = [("gateway", address.to_string())];
            ConstCounter::new(state.links_made.saturating_sub(1))
                .encode(reconnects.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
