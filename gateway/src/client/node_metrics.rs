//! What the gateway measures about each node: how long it took to answer a fan-out and with
//! what coverage status, the cells it suppressed, the CPU time it reports for its secure
//! aggregation answers, and the state of its breaker.
//!
//! The first two are recorded by every fan-out, the CPU time after every secure sum; the
//! breaker state is read at each scrape, so a breaker needs to know nothing of metrics.

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

/// A node's secure-aggregation answers of one round: the facility and the round.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FacilityRound {
    facility: String,
    round: &'static str,
}

/// The CPU time a node reports, by round and part (`all`, or `masking`: masks, keys, shares).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FacilityRoundPart {
    facility: String,
    round: &'static str,
    part: &'static str,
}

/// What one node reported of its secure-aggregation answers to one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecureAnswerCost {
    /// CPU time of its round-1 answer, µs.
    pub round1_micros: u64,
    /// Of that, masking (masks, keys, shares), µs.
    pub masking_micros: u64,
    /// CPU time of its round-2 answer, µs, when it answered round 2.
    pub round2_micros: Option<u64>,
}

/// The per-node families fan-outs record into (clones record into the same series).
#[derive(Clone)]
pub struct NodeMetrics {
    durations: LatencyHistograms<FacilityStatus>,
    suppressed_cells: Family<FacilityLabel, Counter>,
    secure_answers: Family<FacilityRound, Counter>,
    secure_cpu: Family<FacilityRoundPart, Counter<f64, std::sync::atomic::AtomicU64>>,
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
        let secure_answers = Family::default();
        let secure_cpu = Family::default();
        metrics.register(
            "psonet_secure_node_answers",
            "Secure-aggregation answers nodes gave, by round",
            secure_answers.clone(),
        );
        metrics.register(
            "psonet_secure_node_cpu_seconds",
            "CPU time nodes report for their secure-aggregation answers, by round and part (all, or masking: masks, keys and shares)",
            secure_cpu.clone(),
        );
        metrics.register_collector(BreakerStates(breakers));
        Self {
            durations,
            suppressed_cells,
            secure_answers,
            secure_cpu,
        }
    }

    /// Records what `facility` reported of its answers to one secure aggregation.
    pub fn record_secure(&self, facility: &str, cost: SecureAnswerCost) {
        let add = |round: &'static str, part: &'static str, micros: u64| {
            let labels = FacilityRoundPart {
                facility: facility.to_string(),
                round,
                part,
            };
            self.secure_cpu
                .get_or_create(&labels)
                .inc_by(micros as f64 / 1e6);
        };
        add("1", "all", cost.round1_micros);
        add("1", "masking", cost.masking_micros);
        let answered = |round: &'static str| {
            let labels = FacilityRound {
                facility: facility.to_string(),
                round,
            };
            self.secure_answers.get_or_create(&labels).inc();
        };
        answered("1");
        if let Some(micros) = cost.round2_micros {
            answered("2");
            add("2", "all", micros);
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
