//! The metric registry of one process, and the RPC families every listener records into.
//!
//! Families are typed and registered once, at start; recording is a hash lookup under a read
//! lock and an atomic add (a histogram adds under its own small lock), so the RPC path never
//! waits on a scrape for long. Servers add their own families with [`Metrics::register`] and
//! figures computed at scrape time with [`Metrics::register_collector`].

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds (1 ms to 10 s).
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with psonet's buckets, so every latency series can be compared.
pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Latency histograms keyed by the label set `L`, each made by [`latency_histogram`].
pub type LatencyHistograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The labels of the RPC series: the method's path and the gRPC status the call ended with.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc: String,
    code: String,
}

/// The label of a per-method series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    rpc: String,
}

/// The labels of the refusal series: which listener, handshake or call, and why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    listener: String,
    stage: String,
    reason: String,
}

/// The metrics of one process.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RpcLabels, Counter>,
    durations: LatencyHistograms<RpcLabels>,
    messages_received: Family<MethodLabel, Counter>,
    refusals: Family<RefusalLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::default();
        let durations = LatencyHistograms::new_with_constructor(latency_histogram as fn() -> _);
        let messages_received = Family::default();
        let refusals = Family::default();
        let mut registry = Registry::default();
        registry.register(
            "psonet_rpc_requests",
            "RPCs served, by method and gRPC status",
            requests.clone(),
        );
        registry.register(
            "psonet_rpc_duration_seconds",
            "Time to the response headers of each RPC served, by method and gRPC status",
            durations.clone(),
        );
        registry.register(
            "psonet_rpc_messages_received",
            "Request messages received, by method (for SubmitEvents: events streamed in)",
            messages_received.clone(),
        );
        registry.register(
            "psonet_refusals",
            "Refused TLS handshakes and calls, by listener, stage (handshake or call) and reason",
            refusals.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            durations,
            messages_received,
            refusals,
        }
    }
}

impl Metrics {
    /// The RPC families, and room for more.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Exposes `metric` as `name`, described by `help` (one sentence, no final period: the
    /// exposition adds it). A counter's name takes no `_total`: the exposition adds that too.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry().register(name, help, metric);
    }

    /// Adds figures computed at each scrape (e.g. the state of every breaker).
    pub fn register_collector(&self, collector: impl Collector) {
        self.registry().register_collector(Box::new(collector));
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4); fails only when
    /// a collector does.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry())?;
        Ok(out)
    }

    /// Counts and times one served RPC.
    pub fn observe_rpc(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        let labels = RpcLabels {
            rpc: method.to_string(),
            code: format!("{code:?}"),
        };
        self.requests.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts `messages` request messages received by one call to `method`.
    pub fn count_messages_received(&self, method: &str, messages: u64) {
        let label = MethodLabel {
            rpc: method.to_string(),
        };
        self.messages_received
            .get_or_create(&label)
            .inc_by(messages);
    }

    /// Counts one refused handshake or call (see [`crate::security_log`]).
    pub fn count_refusal(&self, listener: &str, stage: &str, reason: &str) {
        let labels = RefusalLabels {
            listener: listener.to_string(),
            stage: stage.to_string(),
            reason: reason.to_string(),
        };
        self.refusals.get_or_create(&labels).inc();
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
    use prometheus_client::metrics::MetricType;
    use prometheus_client::metrics::gauge::ConstGauge;

    #[derive(Debug)]
    struct OneGauge;

    impl Collector for OneGauge {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            let mut family = encoder.encode_descriptor("g", "A gauge", None, MetricType::Gauge)?;
            ConstGauge::new(1).encode(family.encode_family(&[("facility", "f")])?)
        }
    }

    #[test]
    fn renders_counters_histograms_and_collected_gauges_in_the_text_format() {
        let m = Metrics::new();
        m.observe_rpc("/a.B/C", tonic::Code::Ok, Duration::from_millis(3));
        m.observe_rpc("/a.B/C", tonic::Code::Ok, Duration::from_millis(30));
        m.observe_rpc("/a.B/say \"hi\"", tonic::Code::NotFound, Duration::ZERO);
        m.count_messages_received("/a.B/D", 3);
        m.count_messages_received("/a.B/D", 4);
        let x = Family::<MethodLabel, Counter>::default();
        m.register("x", "X", x.clone());
        x.get_or_create(&MethodLabel { rpc: "r".into() }).inc_by(2);
        m.register_collector(OneGauge);
        let text = m.render().unwrap();
        for line in [
            "# HELP psonet_rpc_requests_total RPCs served, by method and gRPC status.",
            "# TYPE psonet_rpc_requests_total counter",
            "psonet_rpc_requests_total{rpc=\"/a.B/C\",code=\"Ok\"} 2",
            "# TYPE psonet_rpc_duration_seconds histogram",
            "psonet_rpc_duration_seconds_bucket{rpc=\"/a.B/C\",code=\"Ok\",le=\"0.001\"} 0",
            "psonet_rpc_duration_seconds_bucket{rpc=\"/a.B/C\",code=\"Ok\",le=\"0.005\"} 1",
            "psonet_rpc_duration_seconds_bucket{rpc=\"/a.B/C\",code=\"Ok\",le=\"10\"} 2",
            "psonet_rpc_duration_seconds_bucket{rpc=\"/a.B/C\",code=\"Ok\",le=\"+Inf\"} 2",
            "psonet_rpc_duration_seconds_count{rpc=\"/a.B/C\",code=\"Ok\"} 2",
            "psonet_rpc_requests_total{rpc=\"/a.B/say \\\"hi\\\"\",code=\"NotFound\"} 1",
            "psonet_rpc_messages_received_total{rpc=\"/a.B/D\"} 7",
            "x_total{rpc=\"r\"} 2",
            "# TYPE g gauge",
            "g{facility=\"f\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        let sum = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("psonet_rpc_duration_seconds_sum{rpc=\"/a.B/C\",code=\"Ok\"} ")
            })
            .and_then(|v| v.parse::<f64>().ok());
        assert!(sum.is_some_and(|s| (s - 0.033).abs() < 1e-9), "{text}");
    }
}
