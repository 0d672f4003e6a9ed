//! `psonet bench`: the node's performance figures on this machine, printed, never asserted.
//!
//! Starts a real facility node as a separate process (so its memory is its own) on a fresh
//! PKI and data directory, then measures over mTLS on loopback: durable streaming ingest,
//! durable unary submits from 64 concurrent clients, the 12-month × category × harm aggregate
//! at two store sizes, the node's resident memory, and bytes on disk per event.

use super::rss_mb;
use crate::client::{self, submit};
use crate::network::{Launcher, Network, Node, Servers};
use crate::synth::{self, SynthOptions};
use anyhow::{Context, Result};
use psonet_core::month::Month;
use psonet_core::pb::{
    self, aggregate_service_client::AggregateServiceClient,
    reporting_service_client::ReportingServiceClient,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Arguments of `psonet bench`: what to measure.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Events in the large store.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Events in the small store the aggregate is compared with.
    #[arg(long, default_value_t = 100_000)]
    pub small_events: u64,
    /// Seconds of the unary run.
    #[arg(long, default_value_t = 10)]
    pub unary_seconds: u64,
    /// The node's sled page cache in MB (store.cache_capacity_mb).
    #[arg(long, default_value_t = 64)]
    pub cache_mb: u64,
}

/// How long the node may take to open its store: a million events take a while to read back.
const NODE_READY_WITHIN: Duration = Duration::from_secs(600);

/// Runs every measurement and prints the figures to `out`.
pub async fn run(options: Args, out: &mut impl Write) -> Result<()> {
    let cache_mb = options.cache_mb;
    let launcher = Launcher::this_binary()?
        .log_filter("warn")
        .ready_within(NODE_READY_WITHIN);
    let mut net = Network::builder("bench")
        .facility_ids(["bench-1"])
        .servers(Servers::Processes(launcher))
        .node_config(move |config| config.store.cache_capacity_mb = cache_mb)
        .start()
        .await?;
    let gateway_identity = net.gateway_identity();
    let node = &mut net.nodes[0];
    let data_dir = node.config.parent().context("config dir")?.join("data");
    let reporting = client::channel(&node.local().to_string(), &node.client_identity)?;
    let federation = node.federation().context("the bench node listens")?;
    let aggregates = client::channel(&federation.to_string(), &gateway_identity)?;
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
        rss_mb(pid(node)?)?,
        options.cache_mb
    )?;
    node.kill();
    node.start().await?;
    let federation = node.federation().context("the bench node listens")?;
    let aggregates = client::channel(&federation.to_string(), &gateway_identity)?;
    let restarted = aggregate_latency(&aggregates).await?;
    writeln!(
        out,
        "node resident memory: {:.0} MB after a restart and {} aggregates (p50 {:.3} ms)",
        rss_mb(pid(node)?)?,
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

/// The node's process id.
fn pid(node: &Node) -> Result<u32> {
    Ok(node.process().context("the node runs as a process")?.pid())
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
            submit::stream(&mut client, events)
                .await
                .map(|summary| summary.accepted)
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

/// Aggregate calls per latency figure (the first 20 warm up).
const AGGREGATE_CALLS: usize = 320;

/// p50 and p99 of the benchmark's own aggregate over 300 sequential calls (after 20 warm-ups).
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
