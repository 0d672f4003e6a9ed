//! Metrics, served as Prometheus text on a plain HTTP port of their own.
//!
//! Why Prometheus text and not OTLP metrics: hospitals and PSOs already run Prometheus (or
//! something that scrapes its format), a scrape needs no collector in between, a node that
//! cannot reach its collector loses no metrics, and it costs no extra crates (OTLP metrics
//! would pull the OpenTelemetry metrics SDK into every build). Traces, which must be joined
//! across processes, go over OTLP (see [`crate::telemetry`]).
//!
//! [`Metrics`] holds counters and histograms keyed by name and labels, plus gauges computed at
//! scrape time (breaker state). [`RpcMetricsLayer`] counts and times every RPC a listener
//! serves by method and status, and counts the messages clients stream in (ingest);
//! [`serve_metrics`] answers `GET /metrics`.

use crate::listener::Shutdown;
use crate::message_count::CountingBody;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::codegen::http;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A gauge read at scrape time: appends `name{labels} value` lines.
type GaugeFn = Box<dyn Fn(&mut String) + Send + Sync>;

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Family {
    help: &'static str,
    counters: BTreeMap<String, u64>,
    histograms: BTreeMap<String, Histogram>,
}

/// The metrics of one process.
#[derive(Default)]
pub struct Metrics {
    families: Mutex<BTreeMap<&'static str, Family>>,
    gauges: Mutex<Vec<GaugeFn>>,
}

impl Metrics {
    /// An empty set of metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Adds `n` to the counter `name{labels}`.
    pub fn add(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], n: u64) {
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        let family = families.entry(name).or_default();
        family.help = help;
        *family.counters.entry(label_text(labels)).or_default() += n;
    }

    /// Records one observation of `elapsed` in the histogram `name{labels}` (seconds).
    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        elapsed: Duration,
    ) {
        let seconds = elapsed.as_secs_f64();
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        let family = families.entry(name).or_default();
        family.help = help;
        let histogram = family.histograms.entry(label_text(labels)).or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            *bucket += u64::from(seconds <= bound);
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// Adds a gauge computed at each scrape; `write` appends complete exposition lines.
    pub fn gauge(&self, write: impl Fn(&mut String) + Send + Sync + 'static) {
        self.gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(write));
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, family) in families.iter() {
            let kind = if family.histograms.is_empty() {
                "counter"
            } else {
                "histogram"
            };
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", family.help);
            for (labels, value) in &family.counters {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
            for (labels, h) in &family.histograms {
                let sep = if labels.is_empty() { "" } else { "," };
                for (bound, count) in BUCKETS.iter().zip(h.buckets) {
                    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
                }
                let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
            }
        }
        drop(families);
        for gauge in self
            .gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            gauge(&mut out);
        }
        out
    }

    /// Counts and times one served RPC.
    pub fn observe_rpc(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        let code = format!("{code:?}");
        let labels = [("rpc", method), ("code", code.as_str())];
        self.add(
            "psonet_rpc_requests_total",
            "RPCs served, by method and gRPC status.",
            &labels,
            1,
        );
        self.observe(
            "psonet_rpc_duration_seconds",
            "Time to the response headers of each RPC served, by method and gRPC status.",
            &labels,
            elapsed,
        );
    }
}

/// `k1="v1",k2="v2"` with values escaped as the text format requires.
pub fn label_text(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Serves `GET /metrics` on `addr` (plain HTTP: bind it to a private interface) until
/// `shutdown`; returns the bound address.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: &Shutdown,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {addr} (metrics): {e}"))
    })?;
    let bound = listener.local_addr()?;
    let stopped = shutdown.signalled();
    tokio::spawn(async move {
        tokio::pin!(stopped);
        loop {
            let (mut conn, _) = tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok(c) => c,
                    Err(_) => continue,
                },
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let mut head = vec![0u8; 4096];
                let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut head));
                let Ok(Ok(n)) = read.await else { return };
                let response = if head[..n].starts_with(b"GET /metrics ") {
                    let body = metrics.render();
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(bound)
}

/// Counts and times every RPC of a listener (give it to `Server::layer`).
#[derive(Clone)]
pub struct RpcMetricsLayer {
    metrics: Arc<Metrics>,
}

impl RpcMetricsLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A listener's services, counted and timed.
#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, R> tower::Service<http::Request<tonic::body::Body>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<R>>,
    S::Error: Into<tower::BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let method = request.uri().path().to_string();
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let (parts, body) = request.into_parts();
        let body = CountingBody::new(body, metrics.clone(), method.clone());
        let request = http::Request::from_parts(parts, tonic::body::Body::new(body));
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await.map_err(Into::into);
            // Errors are sent trailers-only, so their status is in the headers; a response
            // that starts without one is counted OK (its status follows in the trailers).
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok()?.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from_i32),
                // A call shed by the listener's load shedding is answered RESOURCE_EXHAUSTED.
                Err(e) if e.is::<tower::load_shed::error::Overloaded>() => {
                    tonic::Code::ResourceExhausted
                }
                Err(_) => tonic::Code::Unavailable,
            };
            metrics.observe_rpc(&method, code, started.elapsed());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges_in_the_text_format() {
        let m = Metrics::new();
        m.observe_rpc("/a.B/C", tonic::Code::Ok, Duration::from_millis(3));
        m.observe_rpc("/a.B/C", tonic::Code::Ok, Duration::from_millis(30));
        m.add("x_total", "X.", &[("who", "say \"hi\"")], 2);
        m.gauge(|out| out.push_str("g{facility=\"f\"} 1\n"));
        let text = m.render();
        assert!(
            text.contains("psonet_rpc_requests_total{rpc=\"/a.B/C\",code=\"Ok\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "psonet_rpc_duration_seconds_bucket{rpc=\"/a.B/C\",code=\"Ok\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "psonet_rpc_duration_seconds_bucket{rpc=\"/a.B/C\",code=\"Ok\",le=\"+Inf\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("psonet_rpc_duration_seconds_count{rpc=\"/a.B/C\",code=\"Ok\"} 2"),
            "{text}"
        );
        assert!(text.contains("x_total{who=\"say \\\"hi\\\"\"} 2"), "{text}");
        assert!(
            text.contains("# TYPE psonet_rpc_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.ends_with("g{facility=\"f\"} 1\n"), "{text}");
    }
}
