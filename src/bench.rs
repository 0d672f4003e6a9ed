//! `psonet bench`: the node's performance figures on this machine, printed, never asserted.
//!
//! Starts a real facility node as a separate process (so its memory is its own) on a fresh
//! PKI and data directory, then measures over mTLS on loopback: durable streaming ingest,
//! durable unary submits from 64 concurrent clients, the 12-month × category × harm aggregate
//! at two store sizes, the node's resident memory, and bytes on disk per event.

use crate::pki::{self, InitOptions};
use crate::synth::{self, SynthOptions};
use anyhow::{Context, Result, bail};
use psonet_core::month::Month;
use psonet_core::pb::{
    self, aggregate_service_client::AggregateServiceClient,
    reporting_service_client::ReportingServiceClient,
};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Events in the large store (the aggregate and memory figures are taken at this size).
    pub events: u64,
    /// Events in the small store the aggregate is compared with.
    pub small_events: u64,
    /// Seconds of the unary run.
    pub unary_seconds: u64,
    /// The node's sled page cache (`store.cache_capacity_mb`).
    pub cache_mb: u64,
}

struct NodeProcess {
    child: Child,
    local: String,
    federation: String,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(config: &Path) -> Result<NodeProcess> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["node", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the node")?;
    let stdout = child.stdout.take().context("node stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    match (field("local"), field("federation")) {
        (Some(local), Some(federation)) => Ok(NodeProcess {
            child,
            local,
            federation,
        }),
        _ => bail!("the node did not start: {line:?}"),
    }
}

/// Runs every measurement and prints the figures to `out`.
pub async fn run(options: &BenchOptions, out: &mut impl Write) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let layout = pki::init(&InitOptions {
        network: "bench".into(),
        out: dir.path().join("pki"),
        facilities: vec!["bench-1".into()],
        hosts: Vec::new(),
        base_port: None,
        years: 1,
    })?;
    let facility = &layout.facilities[0];
    let data_dir = facility
        .node_config
        .parent()
        .context("config dir")?
        .join("data");
    set_cache(&facility.node_config, options.cache_mb)?;
    let mut node = start_node(&facility.node_config)?;
    let reporting = crate::client::channel(&node.local, &facility.client_identity)?;
    let aggregates = crate::client::channel(&node.federation, &layout.out.join("gateway"))?;
    writeln!(
        out,
        "psonet bench: one node process, mTLS on loopback, sled on {}",
        data_dir.display()
    )?;

    let mut loaded = 0u64;
    let rate = ingest(&reporting, &mut loaded, options.small_events).await?;
    writeln!(
        out,
        "streaming ingest (durable): {:>9.0} events/s  ({} events, chunks of 10,000)",
        rate, options.small_events
    )?;

    let (unary_rate, p50, p99) = unary(&reporting, &mut loaded, options.unary_seconds).await?;
    writeln!(
        out,
        "unary submits, 64 clients:  {:>9.0} events/s  p50 {:.2} ms  p99 {:.2} ms",
        unary_rate,
        ms(p50),
        ms(p99)
    )?;

    let small = aggregate_latency(&aggregates).await?;
    writeln!(
        out,
        "aggregate 12 mo × category × harm at {loaded:>9} events: p50 {:.3} ms  p99 {:.3} ms",
        ms(small.0),
        ms(small.1)
    )?;
    let more = options.events.saturating_sub(loaded);
    let rate = ingest(&reporting, &mut loaded, more).await?;
    writeln!(
        out,
        "streaming ingest up to {loaded} events: {rate:.0} events/s"
    )?;
    let large = aggregate_latency(&aggregates).await?;
    writeln!(
        out,
        "aggregate 12 mo × category × harm at {loaded:>9} events: p50 {:.3} ms  p99 {:.3} ms  ({:.2}× the small store)",
        ms(large.0),
        ms(large.1),
        large.0.as_secs_f64() / small.0.as_secs_f64().max(1e-9)
    )?;
    writeln!(
        out,
        "node resident memory: {:.0} MB after ingest (sled cache_capacity_mb = {})",
        rss_mb(node.child.id())?,
        options.cache_mb
    )?;
    drop(node);
    node = start_node(&facility.node_config)?;
    let aggregates = crate::client::channel(&node.federation, &layout.out.join("gateway"))?;
    let restarted = aggregate_latency(&aggregates).await?;
    writeln!(
        out,
        "node resident memory: {:.0} MB after a restart and {} aggregates (p50 {:.3} ms)",
        rss_mb(node.child.id())?,
        AGGREGATE_CALLS,
        ms(restarted.0)
    )?;
    let bytes = dir_size(&data_dir)?;
    writeln!(
        out,
        "on disk: {:.0} MB, {:.0} bytes per event",
        bytes as f64 / 1e6,
        bytes as f64 / loaded as f64
    )?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Streams `count` more synthetic events in chunks of 10,000, two streams at a time.
async fn ingest(channel: &Channel, loaded: &mut u64, count: u64) -> Result<f64> {
    let started = Instant::now();
    let chunks = count.div_ceil(10_000);
    let mut in_flight = Vec::new();
    for chunk in 0..chunks {
        let size = (count - chunk * 10_000).min(10_000) as usize;
        let seed = *loaded + chunk * 10_000;
        let events = synth::events(&SynthOptions {
            events: size,
            months: 12,
            last_month: Month::current(),
            key_prefix: format!("bench-{seed}"),
            beds: 500,
            seed,
        });
        let mut client = ReportingServiceClient::new(channel.clone());
        in_flight.push(tokio::spawn(async move {
            let stream = tokio_stream::iter(
                events
                    .into_iter()
                    .map(|e| pb::SubmitEventsRequest { event: Some(e) }),
            );
            client
                .submit_events(stream)
                .await
                .map(|r| r.into_inner().accepted)
        }));
        if in_flight.len() == 2 {
            *loaded += in_flight.remove(0).await??;
        }
    }
    for task in in_flight {
        *loaded += task.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// 64 concurrent clients (on 4 connections) submitting one event per call for `seconds`.
async fn unary(
    channel: &Channel,
    loaded: &mut u64,
    seconds: u64,
) -> Result<(f64, Duration, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let template = synth::events(&SynthOptions {
        events: 1,
        months: 12,
        last_month: Month::current(),
        key_prefix: "unary".into(),
        beds: 500,
        seed: 9,
    })
    .remove(0);
    let tasks: Vec<_> = (0..64)
        .map(|client_no| {
            let mut client = ReportingServiceClient::new(channel.clone());
            let template = template.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let event = pb::Event {
                        idempotency_key: format!("unary-{client_no}-{i}"),
                        ..template.clone()
                    };
                    let t = Instant::now();
                    client
                        .submit_event(pb::SubmitEventRequest { event: Some(event) })
                        .await?;
                    latencies.push(t.elapsed());
                    i += 1;
                }
                Ok::<_, tonic::Status>(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    *loaded += all.len() as u64;
    all.sort();
    let pick = |q: f64| {
        all.get(((all.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    Ok((
        all.len() as f64 / started.elapsed().as_secs_f64(),
        pick(0.5),
        pick(0.99),
    ))
}

/// p50 and p99 of the benchmark's own aggregate over 300 sequential calls (after 20 warm-ups).
/// Aggregate calls per latency figure.
const AGGREGATE_CALLS: usize = 320;

async fn aggregate_latency(channel: &Channel) -> Result<(Duration, Duration)> {
    let mut client = AggregateServiceClient::new(channel.clone());
    let now = Month::current();
    let request = pb::AggregateRequest {
        month_from: now.minus(11).to_string(),
        month_to: now.to_string(),
        time_grain: pb::TimeGrain::Month as i32,
        group_by: vec![pb::Dimension::Category as i32, pb::Dimension::Harm as i32],
        filter: None,
        querier: String::new(),
    };
    let mut latencies = Vec::new();
    for i in 0..AGGREGATE_CALLS {
        let t = Instant::now();
        client.aggregate(request.clone()).await?;
        if i >= 20 {
            latencies.push(t.elapsed());
        }
    }
    latencies.sort();
    Ok((
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
    ))
}

/// Sets the node's sled page cache in its config file.
fn set_cache(config: &Path, cache_mb: u64) -> Result<()> {
    let mut node: psonet_node::NodeConfig = toml::from_str(&std::fs::read_to_string(config)?)?;
    node.store.cache_capacity_mb = cache_mb;
    std::fs::write(config, toml::to_string(&node)?)?;
    Ok(())
}

/// Resident memory of process `pid`, in MB.
pub(crate) fn rss_mb(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")?;
    Ok(kb / 1024.0)
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}
