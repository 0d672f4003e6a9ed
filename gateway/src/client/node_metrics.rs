//! What the gateway measures about each node: how long it took to answer a fan-out and with
//! what coverage status, the cells it suppressed, and the state of its breaker.
//!
//! The first two are recorded by every fan-out; the breaker state is read at each scrape, so a
//! breaker needs to know nothing of metrics.

use crate::client::breaker::{Breaker, BreakerState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use psonet_serve::metrics::{LatencyHistograms, Metrics, latency_histogram};
use std::time::Duration;

/// A node's answer as a label set: the facility and its coverage status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FacilityStatus {
    facility: String,
    status: String,
}

/// The facility a series is about.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FacilityLabel {
    facility: String,
}

/// The per-node families fan-outs record into (clones record into the same series).
#[derive(Clone)]
pub struct NodeMetrics {
    durations: LatencyHistograms<FacilityStatus>,
    suppressed_cells: Family<FacilityLabel, Counter>,
}

impl NodeMetrics {
    /// Registers the per-node families in `metrics`, and a gauge of each of `breakers`' state
    /// (by facility id) read at every scrape.
    pub fn register(metrics: &Metrics, breakers: Vec<(String, Breaker)>) -> Self {
        let durations = LatencyHistograms::new_with_constructor(latency_histogram as fn() -> _);
        let suppressed_cells = Family::default();
        metrics.register(
            "psonet_fanout_node_duration_seconds",
            "Time each node took to answer or fail in a fan-out, by coverage status",
            durations.clone(),
        );
        metrics.register(
            "psonet_fanout_suppressed_cells",
            "Cells nodes suppressed (1..k-1 events) in the aggregates they returned",
            suppressed_cells.clone(),
        );
        metrics.register_collector(BreakerStates(breakers));
        Self {
            durations,
            suppressed_cells,
        }
    }

    /// Records one node's part in a fan-out: its `latency`, its coverage `status` (e.g. `OK`,
    /// `UNAVAILABLE`) and the cells it `suppressed`.
    pub fn record(&self, facility: &str, status: &str, latency: Duration, suppressed: u64) {
        let answer = FacilityStatus {
            facility: facility.to_string(),
            status: status.to_string(),
        };
        self.durations
            .get_or_create(&answer)
            .observe(latency.as_secs_f64());
        let facility = FacilityLabel {
            facility: answer.facility,
        };
        self.suppressed_cells
            .get_or_create(&facility)
            .inc_by(suppressed);
    }
}

/// `psonet_node_breaker_state{facility,state}`: 1 for each node's current state, 0 otherwise.
#[derive(Debug)]
struct BreakerStates(Vec<(String, Breaker)>);

impl Collector for BreakerStates {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use BreakerState::*;
        let mut family = encoder.encode_descriptor(
            "psonet_node_breaker_state",
            "Each node's breaker: 1 on its current state.",
            None,
            MetricType::Gauge,
        )?;
        for (id, breaker) in &self.0 {
            let now = breaker.state();
            for state in [Closed, Open, HalfOpen] {
                let labels = [("facility", id.as_str()), ("state", state.as_str())];
                ConstGauge::new(i64::from(state == now)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
