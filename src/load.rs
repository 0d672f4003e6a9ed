//! `psonet bench-load` and `psonet bench-fanout`: the gateway under load, figures printed,
//! never asserted.
//!
//! Both issue a fresh PKI, start facility nodes in this process (each with its own mTLS
//! listeners and sled store, loaded with a year of synthetic reports) and the gateway as a
//! separate `psonet gateway` process, so its memory is its own. `bench-load` drives many
//! concurrent benchmark clients, each on its own mTLS connection, for a fixed time, then
//! overloads the gateway to show it sheds; `bench-fanout` measures one warm client's benchmark
//! latency as the network grows.

use crate::pki::{self, InitOptions, NetworkLayout};
use crate::{client, submit, synth};
use anyhow::{Context, Result, bail};
use psonet_core::month::Month;
use psonet_core::pb::{self, CoverageStatus, benchmark_service_client::BenchmarkServiceClient};
use psonet_gateway::GatewayConfig;
use psonet_node::{NodeConfig, RunningNode};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Synthetic events loaded into each node.
const EVENTS_PER_NODE: usize = 1_000;

/// What `bench-load` runs.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadOptions {
    /// Facility nodes (in this process) behind the gateway (its own process).
    #[arg(long, default_value_t = 20)]
    pub nodes: usize,
    /// Concurrent benchmark clients, each on its own mTLS connection.
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Seconds of the measured run.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// The gateway's fanout.max_concurrent_benchmarks.
    #[arg(long, default_value_t = 256)]
    pub max_concurrent: usize,
    /// Clients of a second, overloading run (0 skips it).
    #[arg(long, default_value_t = 1000)]
    pub overload_clients: usize,
    /// Months each benchmark covers, ending this month.
    #[arg(long, default_value_t = 12)]
    pub months: u32,
}

/// A network of in-process nodes loaded with synthetic data.
struct Nodes {
    _dir: TempDir,
    layout: NetworkLayout,
    running: Vec<RunningNode>,
}

impl Nodes {
    async fn start(count: usize, out: &mut impl Write) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let layout = pki::init(&InitOptions {
            network: "load".into(),
            out: dir.path().join("pki"),
            facilities: (1..=count).map(|i| format!("facility-{i}")).collect(),
            hosts: Vec::new(),
            base_port: None,
            years: 1,
        })?;
        let mut running = Vec::new();
        for facility in &layout.facilities {
            running.push(RunningNode::start(NodeConfig::load(&facility.node_config)?).await?);
        }
        let loads = layout
            .facilities
            .iter()
            .zip(&running)
            .enumerate()
            .map(|(i, (f, node))| {
                let options = synth::SynthOptions {
                    events: EVENTS_PER_NODE,
                    months: 12,
                    last_month: Month::current(),
                    key_prefix: f.id.clone(),
                    beds: 150 + 25 * (i as u32 % 12),
                    seed: i as u64 + 1,
                };
                let addr = node.local_addr.to_string();
                let identity = f.client_identity.clone();
                async move {
                    submit::events(&addr, &identity, synth::events(&options)).await?;
                    submit::exposure(&addr, &identity, synth::exposure(&options)).await
                }
            });
        futures::future::try_join_all(loads).await?;
        writeln!(
            out,
            "{count} nodes in this process, {EVENTS_PER_NODE} synthetic events each"
        )?;
        Ok(Self {
            _dir: dir,
            layout,
            running,
        })
    }

    async fn stop(self) -> Result<()> {
        for node in self.running {
            node.shutdown().await?;
        }
        Ok(())
    }
}

/// The gateway as its own process.
struct GatewayProcess {
    child: Child,
    addr: String,
}

impl GatewayProcess {
    /// Starts a gateway over the first `count` nodes.
    fn start(nodes: &Nodes, count: usize, max_concurrent: usize) -> Result<Self> {
        let mut loaded = GatewayConfig::load(&nodes.layout.gateway_config)?;
        let config = &mut loaded.config;
        config.facilities.truncate(count);
        for (entry, node) in config.facilities.iter_mut().zip(&nodes.running) {
            entry.endpoint = format!("https://127.0.0.1:{}", node.federation_addr.port());
        }
        config.fanout.max_concurrent_benchmarks = max_concurrent;
        config.fanout.max_in_flight_per_node = max_concurrent.max(1);
        let path = nodes.layout.out.join(format!("gateway-{count}.toml"));
        std::fs::write(&path, toml::to_string(config)?)?;
        let mut child = Command::new(std::env::current_exe()?)
            .args(["gateway", "--config"])
            .arg(&path)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the gateway")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("gateway stdout")?).read_line(&mut line)?;
        let Some(addr) = line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("listen="))
        else {
            bail!("the gateway did not start: {line:?}");
        };
        Ok(Self {
            addr: addr.to_string(),
            child,
        })
    }

    fn rss_mb(&self) -> f64 {
        crate::bench::rss_mb(self.child.id()).unwrap_or(f64::NAN)
    }

    /// CPU time the gateway process has used (user + system), in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()));
        // Fields after the command name (which ends with ')'): utime and stime are the 12th
        // and 13th, in clock ticks of 1/100 s.
        stat.ok()
            .and_then(|s| {
                let fields: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
                let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
                Some((ticks(11)? + ticks(12)?) / 100.0)
            })
            .unwrap_or(f64::NAN)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(months: u32) -> pb::NetworkBenchmarkRequest {
    let now = Month::current();
    pb::NetworkBenchmarkRequest {
        month_from: now.minus(months.saturating_sub(1)).to_string(),
        month_to: now.to_string(),
        categories: vec![],
        ..Default::default()
    }
}

/// What one run of clients saw.
#[derive(Default)]
struct RunFigures {
    gateway_cpu_seconds: f64,
    latencies: Vec<Duration>,
    errors: BTreeMap<String, u64>,
    partial: u64,
    shed_latencies: Vec<Duration>,
}

impl RunFigures {
    fn merge(&mut self, other: RunFigures) {
        self.latencies.extend(other.latencies);
        self.shed_latencies.extend(other.shed_latencies);
        self.partial += other.partial;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
    }
}

/// `clients` concurrent clients, each on its own connection, for `seconds`.
async fn drive(
    gateway: &GatewayProcess,
    nodes: &Nodes,
    clients: usize,
    seconds: u64,
    months: u32,
) -> Result<(RunFigures, Vec<f64>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let channel = client::channel(&gateway.addr, &nodes.layout.partner_identity)?;
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = BenchmarkServiceClient::new(channel);
            let mut figures = RunFigures::default();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match client.network_benchmark(request(months)).await {
                    Ok(response) => {
                        figures.latencies.push(started.elapsed());
                        let ok = CoverageStatus::Ok as i32;
                        let all = response.get_ref().coverage.iter().all(|c| c.status == ok);
                        figures.partial += u64::from(!all);
                    }
                    Err(status) => {
                        if status.code() == tonic::Code::ResourceExhausted {
                            figures.shed_latencies.push(started.elapsed());
                        }
                        *figures
                            .errors
                            .entry(format!("{:?}", status.code()))
                            .or_default() += 1;
                    }
                }
            }
            figures
        }));
    }
    let cpu_before = gateway.cpu_seconds();
    let mut memory = vec![gateway.rss_mb()];
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        memory.push(gateway.rss_mb());
    }
    stop.store(true, Ordering::Relaxed);
    let mut figures = RunFigures::default();
    for task in tasks {
        figures.merge(task.await?);
    }
    figures.gateway_cpu_seconds = gateway.cpu_seconds() - cpu_before;
    Ok((figures, memory))
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

fn report(out: &mut impl Write, what: &str, figures: &mut RunFigures, seconds: f64) -> Result<()> {
    figures.latencies.sort();
    let l = &figures.latencies;
    writeln!(
        out,
        "{what}: {} benchmarks in {seconds:.0} s = {:.0}/s; p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms; \
         with a facility missing: {}; errors: {:?}",
        l.len(),
        l.len() as f64 / seconds,
        quantile(l, 0.5),
        quantile(l, 0.9),
        quantile(l, 0.99),
        quantile(l, 1.0),
        figures.partial,
        figures.errors
    )?;
    let answered = (l.len() + figures.shed_latencies.len()).max(1) as f64;
    writeln!(
        out,
        "  gateway CPU: {:.2} ms per call answered ({:.0}% of one core)",
        figures.gateway_cpu_seconds * 1000.0 / answered,
        figures.gateway_cpu_seconds * 100.0 / seconds
    )?;
    if !figures.shed_latencies.is_empty() {
        figures.shed_latencies.sort();
        writeln!(
            out,
            "  shed (RESOURCE_EXHAUSTED): {} calls, answered in p50 {:.2} ms  p99 {:.2} ms",
            figures.shed_latencies.len(),
            quantile(&figures.shed_latencies, 0.5),
            quantile(&figures.shed_latencies, 0.99)
        )?;
    }
    Ok(())
}

fn report_memory(out: &mut impl Write, memory: &[f64]) -> Result<()> {
    let max = memory.iter().copied().fold(f64::MIN, f64::max);
    let every_5s: Vec<String> = memory
        .iter()
        .step_by(5)
        .map(|m| format!("{m:.0}"))
        .collect();
    writeln!(
        out,
        "  gateway resident memory: start {:.1} MB, end {:.1} MB, max {:.1} MB; every 5 s: {} MB",
        memory.first().copied().unwrap_or(f64::NAN),
        memory.last().copied().unwrap_or(f64::NAN),
        max,
        every_5s.join(" ")
    )?;
    Ok(())
}

/// Runs `bench-load` and prints its figures to `out`.
pub async fn run_load(options: &LoadOptions, out: &mut impl Write) -> Result<()> {
    let nodes = Nodes::start(options.nodes, out).await?;
    let gateway = GatewayProcess::start(&nodes, options.nodes, options.max_concurrent)?;
    writeln!(
        out,
        "gateway process over {} nodes, max_concurrent_benchmarks = {}; mTLS everywhere, 2 cores shared by all",
        options.nodes, options.max_concurrent
    )?;
    let months = options.months;
    writeln!(out, "each benchmark: {months} month(s) × category × harm")?;
    drive(&gateway, &nodes, options.clients.min(8), 2, months).await?; // warm-up
    let (mut figures, memory) =
        drive(&gateway, &nodes, options.clients, options.seconds, months).await?;
    let what = format!("{} clients", options.clients);
    report(out, &what, &mut figures, options.seconds as f64)?;
    report_memory(out, &memory)?;
    if options.overload_clients > 0 {
        let seconds = options.seconds.min(10);
        let (mut figures, memory) =
            drive(&gateway, &nodes, options.overload_clients, seconds, months).await?;
        let what = format!("overload, {} clients", options.overload_clients);
        report(out, &what, &mut figures, seconds as f64)?;
        report_memory(out, &memory)?;
    }
    drop(gateway);
    nodes.stop().await
}

/// Runs `bench-fanout` for each network size in `sizes` and prints the figures to `out`.
pub async fn run_fanout(
    sizes: &[usize],
    seconds: u64,
    months: u32,
    out: &mut impl Write,
) -> Result<()> {
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let nodes = Nodes::start(largest, out).await?;
    writeln!(out, "each benchmark: {months} month(s) × category × harm")?;
    for &size in sizes {
        let gateway = GatewayProcess::start(&nodes, size, 256)?;
        drive(&gateway, &nodes, 1, 1, months).await?; // warm: every channel connected
        let (mut figures, memory) = drive(&gateway, &nodes, 1, seconds, months).await?;
        let what = format!("fan-out to {size:>3} nodes, one client, warm channels");
        report(out, &what, &mut figures, seconds as f64)?;
        report_memory(out, &memory)?;
    }
    nodes.stop().await
}
