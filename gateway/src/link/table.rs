//! The live links, by facility: a channel over each, when it was made, and what happened to the
//! ones that closed. The fan-out asks here for a facility's channel; `ListLinks`, coverage and
//! Prometheus read it too.
//!
//! A facility may hold more than one link to this gateway for a moment (a node that redialled
//! before this side noticed its old link was dead); the newest is used, and the others close by
//! themselves when keepalive finds them dead or the node drops them.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use psonet_core::pb;
use psonet_serve::link::timestamp;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;
use tonic::transport::Channel;

/// One live link.
#[derive(Clone)]
struct LiveLink {
    id: u64,
    channel: Channel,
    since: SystemTime,
    made: Instant,
    peer: SocketAddr,
    not_after: Option<SystemTime>,
}

/// One facility's links, live and past.
#[derive(Clone, Default)]
struct FacilityLinks {
    live: Vec<LiveLink>,
    made: u64,
    down_since: Option<SystemTime>,
    last_end: String,
}

/// The links of every facility of the registry.
pub struct LinkTable {
    facilities: Mutex<BTreeMap<String, FacilityLinks>>,
    /// Facilities that can be reached only by a link (no endpoint): listed even when down.
    outbound_only: Vec<String>,
    next_id: AtomicU64,
    changed: Notify,
}

/// The facility has no live link to this gateway: the coverage detail of a node that dials out.
#[derive(Debug, Clone, thiserror::Error)]
pub struct NotLinked {
    /// The facility.
    pub facility: String,
    /// When its last link closed, if it ever had one since the gateway started.
    pub since: Option<SystemTime>,
    /// How that link ended.
    pub why: String,
}

impl fmt::Display for NotLinked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "facility {} is not linked: its node dials out to the gateway and has no live link \
             to this one",
            self.facility
        )?;
        match self.since.and_then(|at| at.elapsed().ok()) {
            Some(ago) => write!(
                f,
                " (its last link closed {} s ago: {})",
                ago.as_secs(),
                self.why
            ),
            None => write!(f, " (none since the gateway started)"),
        }
    }
}

impl LinkTable {
    /// A table for `facilities` (every registry id); `outbound_only` are those with no
    /// endpoint, listed by `ListLinks` even while they have no link.
    pub fn new(
        facilities: impl IntoIterator<Item = String>,
        outbound_only: impl IntoIterator<Item = String>,
    ) -> Arc<Self> {
        let facilities = facilities
            .into_iter()
            .map(|id| (id, FacilityLinks::default()))
            .collect();
        Arc::new(Self {
            facilities: Mutex::new(facilities),
            outbound_only: outbound_only.into_iter().collect(),
            next_id: AtomicU64::new(1),
            changed: Notify::new(),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, FacilityLinks>) -> R) -> R {
        f(&mut self
            .facilities
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// Records a new link of `facility` from `peer`, carried by `channel`; the node's certificate
    /// expires at `not_after`. Returns the link's id, for [`LinkTable::remove`].
    pub fn add(
        &self,
        facility: &str,
        channel: Channel,
        peer: SocketAddr,
        not_after: Option<SystemTime>,
    ) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.with(|all| {
            let links = all.entry(facility.to_string()).or_default();
            links.made += 1;
            links.live.push(LiveLink {
                id,
                channel,
                since: SystemTime::now(),
                made: Instant::now(),
                peer,
                not_after,
            });
        });
        self.changed.notify_waiters();
        id
    }

    /// Link `id` of `facility` has closed, because of `why`.
    pub fn remove(&self, facility: &str, id: u64, why: &str) {
        self.with(|all| {
            if let Some(links) = all.get_mut(facility) {
                links.live.retain(|link| link.id != id);
                if links.live.is_empty() {
                    links.down_since = Some(SystemTime::now());
                }
                links.last_end = why.to_string();
            }
        });
        self.changed.notify_waiters();
    }

    /// Drops every link (the gateway is stopping): their connections close once no call holds
    /// them.
    pub fn clear(&self) {
        self.with(|all| all.values_mut().for_each(|links| links.live.clear()));
    }

    /// The channel over `facility`'s newest live link.
    pub fn channel(&self, facility: &str) -> Result<Channel, NotLinked> {
        self.with(|all| {
            let links = all.get(facility);
            match links.and_then(|links| links.live.last()) {
                Some(link) => Ok(link.channel.clone()),
                None => Err(NotLinked {
                    facility: facility.to_string(),
                    since: links.and_then(|l| l.down_since),
                    why: links.map(|l| l.last_end.clone()).unwrap_or_default(),
                }),
            }
        })
    }

    /// Whether `facility` has a live link.
    pub fn is_linked(&self, facility: &str) -> bool {
        self.channel(facility).is_ok()
    }

    /// The channel over `facility`'s newest live link, waiting up to `wait` for one to be made.
    pub async fn wait_for(&self, facility: &str, wait: Duration) -> Result<Channel, NotLinked> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.channel(facility) {
                Ok(channel) => return Ok(channel),
                Err(not_linked) if tokio::time::Instant::now() >= until => {
                    return Err(not_linked);
                }
                Err(_) => {
                    let _ = tokio::time::timeout_at(until, changed).await;
                }
            }
        }
    }

    /// Every live link, and every outbound-only facility without one, as `ListLinks` reports
    /// them.
    pub fn snapshot(&self) -> Vec<pb::Link> {
        self.with(|all| {
            let mut rows = Vec::new();
            for (facility, links) in all.iter() {
                let reconnects = links.made.saturating_sub(1);
                for link in &links.live {
                    rows.push(pb::Link {
                        facility_id: facility.clone(),
                        peer_address: link.peer.to_string(),
                        up: true,
                        since: Some(timestamp(link.since)),
                        reconnects,
                        last_error: String::new(),
                        peer_certificate_not_after: link.not_after.map(timestamp),
                    });
                }
                if links.live.is_empty() && self.outbound_only.contains(facility) {
                    rows.push(pb::Link {
                        facility_id: facility.clone(),
                        peer_address: String::new(),
                        up: false,
                        since: links.down_since.map(timestamp),
                        reconnects,
                        last_error: links.last_end.clone(),
                        peer_certificate_not_after: None,
                    });
                }
            }
            rows
        })
    }
}

/// Links up, age of the newest and reconnects, per facility, read at every scrape.
pub struct LinkGauges(pub Arc<LinkTable>);

impl fmt::Debug for LinkGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkGauges")
    }
}

impl Collector for LinkGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all = self.0.with(|all| all.clone());
        let mut up = encoder.encode_descriptor(
            "psonet_links_up",
            "Live links of each facility's node to this gateway",
            None,
            MetricType::Gauge,
        )?;
        for (facility, links) in &all {
            ConstGauge::new(links.live.len() as i64)
                .encode(up.encode_family(&[("facility", facility.as_str())])?)?;
        }
        let mut age = encoder.encode_descriptor(
            "psonet_link_age_seconds",
            "Age of each linked facility's newest link",
            None,
            MetricType::Gauge,
        )?;
        for (facility, links) in &all {
            if let Some(link) = links.live.last() {
                ConstGauge::new(link.made.elapsed().as_secs_f64())
                    .encode(age.encode_family(&[("facility", facility.as_str())])?)?;
            }
        }
        let mut reconnects = encoder.encode_descriptor(
            "psonet_link_reconnects",
            "Links each facility's node made after its first since the gateway started",
            None,
            MetricType::Counter,
        )?;
        for (facility, links) in &all {
            ConstCounter::new(links.made.saturating_sub(1))
                .encode(reconnects.encode_family(&[("facility", facility.as_str())])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> Channel {
        tonic::transport::Endpoint::from_static("http://link.test").connect_lazy()
    }

    #[tokio::test]
    async fn the_newest_live_link_is_used_and_a_closed_one_is_said_so() {
        let table = LinkTable::new(["f1".to_string(), "f2".to_string()], ["f1".to_string()]);
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let never = table.channel("f1").unwrap_err().to_string();
        assert!(
            never.contains("not linked") && never.contains("none since the gateway started"),
            "{never}"
        );
        let first = table.add("f1", channel(), peer, None);
        let second = table.add("f1", channel(), peer, None);
        assert!(table.is_linked("f1"));
        table.remove("f1", second, "reset by peer");
        assert!(table.is_linked("f1"), "the older link still serves");
        table.remove("f1", first, "keepalive timed out");
        let closed = table.channel("f1").unwrap_err().to_string();
        assert!(
            closed.contains("last link closed 0 s ago: keepalive timed out"),
            "{closed}"
        );
        let rows = table.snapshot();
        assert_eq!(
            rows.len(),
            1,
            "f2 has an endpoint and is not listed: {rows:?}"
        );
        assert_eq!((rows[0].up, rows[0].reconnects), (false, 1));

        // A waiter sees a link made while it waits.
        let waiting = {
            let table = table.clone();
            tokio::spawn(async move { table.wait_for("f2", Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        table.add("f2", channel(), peer, None);
        assert!(waiting.await.unwrap().is_ok());
        assert!(
            table
                .wait_for("f1", Duration::from_millis(10))
                .await
                .is_err()
        );
    }
}
