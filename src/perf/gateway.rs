//! `psonet bench-load` and `psonet bench-fanout`: the gateway under load, figures printed,
//! never asserted.
//!
//! Both issue a fresh PKI, start facility nodes in this process (each with its own mTLS
//! listeners and sled store, loaded with a year of synthetic reports) and the gateway as a
//! separate `psonet gateway` process, so its memory and CPU time are its own. `bench-load` drives
//! many concurrent benchmark clients, each on its own mTLS connection, for a fixed time, then
//! overloads the gateway to show it sheds; `bench-fanout` measures one warm client's category
//! table as the network grows, on the secure path beside the node-suppressed ("plain") one: the
//! latency, the gateway's CPU per benchmark, and each node's CPU per answer — read from this
//! process for both paths (it runs every node, and the one client), and as the nodes report it
//! in their secure-aggregation answers, masking apart, collected by the gateway's metrics.
//! With `--links`, `bench-fanout` measures latency over links beside listening nodes.

use super::{cpu_seconds, rss_mb};
use crate::client;
use crate::network::{Launcher, Network, Reach, Servers};
use crate::synth::SynthOptions;
use anyhow::{Context, Result};
use psonet_core::month::Month;
use psonet_core::pb::{self, CoverageStatus, benchmark_service_client::BenchmarkServiceClient};
use psonet_gateway::config::NetworkSums;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Synthetic events loaded into each node.
const EVENTS_PER_NODE: usize = 1_000;

/// Arguments of `psonet bench-load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
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

/// Arguments of `psonet bench-fanout`.
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    /// Network sizes, e.g. 10,50,100.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
    pub nodes: Vec<usize>,
    /// Seconds per size.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Months each benchmark covers, ending this month.
    #[arg(long, default_value_t = 12)]
    pub months: u32,
    /// Measure each size twice, the gateway dialling the nodes' listeners and the nodes dialling
    /// out to the gateway (the same nodes: each listens and links), and print both side by side.
    #[arg(long)]
    pub links: bool,
    /// Measured runs per size and path, `--seconds` each (their p50s show the spread).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
}

/// `count` nodes in this process, loaded with synthetic data; the gateway will be a process.
/// Each node is reached as `reach` says.
async fn start_network(count: usize, reach: Reach, out: &mut impl Write) -> Result<Network> {
    let gateway = Launcher::this_binary()?.log_filter("error");
    let net = Network::builder("load")
        .facilities(count)
        .reach(reach)
        .servers(Servers::InProcess)
        .gateway_servers(Servers::Processes(gateway))
        .start()
        .await?;
    net.load_synthetic(|i, node| SynthOptions {
        events: EVENTS_PER_NODE,
        months: 12,
        last_month: Month::current(),
        key_prefix: node.id.clone(),
        beds: 150 + 25 * (i as u32 % 12),
        seed: i as u64 + 1,
    })
    .await?;
    writeln!(
        out,
        "{count} nodes in this process, {EVENTS_PER_NODE} synthetic events each"
    )?;
    Ok(net)
}

/// (Re)starts the gateway over the first `count` nodes, admitting `max_concurrent` benchmarks,
/// its network figures from `sums`, with a metrics endpoint.
async fn start_gateway(
    net: &mut Network,
    count: usize,
    max_concurrent: usize,
    sums: NetworkSums,
) -> Result<()> {
    net.start_gateway(|config| {
        config.facilities.truncate(count);
        config.fanout.max_concurrent_benchmarks = max_concurrent;
        config.fanout.max_in_flight_per_node = max_concurrent.max(1);
        config.disclosure.network_sums = sums;
        config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await
}

/// The gateway process's id.
fn gateway_pid(net: &Network) -> Result<u32> {
    Ok(net
        .gateway_process()
        .context("the gateway runs as a process")?
        .pid())
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
    net: &Network,
    clients: usize,
    seconds: u64,
    months: u32,
) -> Result<(RunFigures, Vec<f64>)> {
    let gateway = net.gateway_addr()?.to_string();
    let pid = gateway_pid(net)?;
    let memory_now = || rss_mb(pid).unwrap_or(f64::NAN);
    let cpu_now = || cpu_seconds(pid).unwrap_or(f64::NAN);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let channel = client::channel(&gateway, &net.layout.partner_identity)?;
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
    let cpu_before = cpu_now();
    let mut memory = vec![memory_now()];
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        memory.push(memory_now());
    }
    stop.store(true, Ordering::Relaxed);
    let mut figures = RunFigures::default();
    for task in tasks {
        figures.merge(task.await?);
    }
    figures.gateway_cpu_seconds = cpu_now() - cpu_before;
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
pub async fn run_load(options: LoadArgs, out: &mut impl Write) -> Result<()> {
    let mut net = start_network(options.nodes, Reach::Listens, out).await?;
    start_gateway(
        &mut net,
        options.nodes,
        options.max_concurrent,
        NetworkSums::Secure,
    )
    .await?;
    writeln!(
        out,
        "gateway process over {} nodes, max_concurrent_benchmarks = {}; mTLS everywhere, 2 cores shared by all",
        options.nodes, options.max_concurrent
    )?;
    let months = options.months;
    writeln!(out, "each benchmark: {months} month(s) × category × harm")?;
    drive(&net, options.clients.min(8), 2, months).await?; // warm-up
    let (mut figures, memory) = drive(&net, options.clients, options.seconds, months).await?;
    let what = format!("{} clients", options.clients);
    report(out, &what, &mut figures, options.seconds as f64)?;
    report_memory(out, &memory)?;
    if options.overload_clients > 0 {
        let seconds = options.seconds.min(10);
        let (mut figures, memory) = drive(&net, options.overload_clients, seconds, months).await?;
        let what = format!("overload, {} clients", options.overload_clients);
        report(out, &what, &mut figures, seconds as f64)?;
        report_memory(out, &memory)?;
    }
    net.shutdown().await
}

/// What the nodes reported of their secure-aggregation answers, summed over nodes: answers
/// and CPU seconds of round 1 (of which masking) and round 2, read from the gateway's metrics.
#[derive(Debug, Clone, Copy, Default)]
struct SecureCosts {
    round1: f64,
    round1_cpu: f64,
    masking_cpu: f64,
    round2: f64,
    round2_cpu: f64,
}

impl SecureCosts {
    /// Sums the `psonet_secure_node_*` series of a Prometheus text exposition.
    fn parse(text: &str) -> Self {
        let mut costs = Self::default();
        for line in text
            .lines()
            .filter(|l| l.starts_with("psonet_secure_node_"))
        {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(0.0);
            let round1 = series.contains("round=\"1\"");
            let slot = match (series.starts_with("psonet_secure_node_answers"), round1) {
                (true, true) => &mut costs.round1,
                (true, false) => &mut costs.round2,
                (false, true) if series.contains("part=\"masking\"") => &mut costs.masking_cpu,
                (false, true) => &mut costs.round1_cpu,
                (false, false) => &mut costs.round2_cpu,
            };
            *slot += value;
        }
        costs
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            round1: self.round1 - before.round1,
            round1_cpu: self.round1_cpu - before.round1_cpu,
            masking_cpu: self.masking_cpu - before.masking_cpu,
            round2: self.round2 - before.round2,
            round2_cpu: self.round2_cpu - before.round2_cpu,
        }
    }
}

/// The gateway's metrics endpoint, read.
async fn scrape(net: &Network) -> Result<String> {
    let addr = net
        .gateway()
        .and_then(|g| g.metrics())
        .context("the gateway serves metrics")?;
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n")
        .await?;
    let mut text = String::new();
    conn.read_to_string(&mut text).await?;
    Ok(text)
}

/// One path's run at one network size.
struct PathRun {
    figures: RunFigures,
    memory: Vec<f64>,
    /// CPU seconds of this process (every node and the one client) over the run.
    nodes_cpu: f64,
    /// What the nodes reported, on the secure path.
    reported: Option<SecureCosts>,
}

impl PathRun {
    /// The gateway's CPU per benchmark answered, ms.
    fn gateway_cpu_ms(&self) -> f64 {
        self.figures.gateway_cpu_seconds * 1000.0 / self.figures.latencies.len().max(1) as f64
    }

    fn p50_ms(&self) -> f64 {
        quantile(&self.figures.latencies, 0.5)
    }
}

/// Runs one path over the first `size` nodes for `seconds`, one warm client.
async fn run_path(
    net: &mut Network,
    size: usize,
    sums: NetworkSums,
    seconds: u64,
    months: u32,
) -> Result<PathRun> {
    start_gateway(net, size, 256, sums).await?;
    drive(net, 1, 1, months).await?; // warm: every channel connected, every key fetched
    let reported_before = SecureCosts::parse(&scrape(net).await?);
    let own = std::process::id();
    let nodes_before = cpu_seconds(own)?;
    let (mut figures, memory) = drive(net, 1, seconds, months).await?;
    let nodes_cpu = cpu_seconds(own)? - nodes_before;
    figures.latencies.sort();
    let reported = if sums == NetworkSums::Secure {
        Some(SecureCosts::parse(&scrape(net).await?).since(&reported_before))
    } else {
        None
    };
    Ok(PathRun {
        figures,
        memory,
        nodes_cpu,
        reported,
    })
}

/// Prints one path's line: latency, gateway CPU, node CPU.
fn report_path(out: &mut impl Write, what: &str, run: &PathRun, size: usize) -> Result<()> {
    let l = &run.figures.latencies;
    let answers = (l.len() * size).max(1) as f64;
    writeln!(
        out,
        "  {what:<6} {:>5} benchmarks  p50 {:>7.2} ms  p90 {:>7.2} ms  max {:>7.2} ms  \
         gateway CPU {:>6.2} ms/benchmark  nodes' CPU {:>5.2} ms/answer{}  errors {:?}",
        l.len(),
        run.p50_ms(),
        quantile(l, 0.9),
        quantile(l, 1.0),
        run.gateway_cpu_ms(),
        run.nodes_cpu * 1000.0 / answers,
        if run.figures.partial > 0 {
            format!("  with a facility missing: {}", run.figures.partial)
        } else {
            String::new()
        },
        run.figures.errors
    )?;
    if let Some(r) = &run.reported {
        let per = |cpu: f64, n: f64| cpu * 1000.0 / n.max(1.0);
        writeln!(
            out,
            "         as the nodes report it: round 1 {:.3} ms/answer (masking {:.3} ms), round 2 {:.3} ms/answer",
            per(r.round1_cpu, r.round1),
            per(r.masking_cpu, r.round1),
            per(r.round2_cpu, r.round2),
        )?;
    }
    Ok(())
}

/// Runs `bench-fanout` for each network size and prints the figures to `out`.
pub async fn run_fanout(options: FanoutArgs, out: &mut impl Write) -> Result<()> {
    if options.links {
        return run_fanout_links(options, out).await;
    }
    let (seconds, months) = (options.seconds, options.months);
    let largest = options.nodes.iter().copied().max().unwrap_or(0);
    let mut net = start_network(largest, Reach::Listens, out).await?;
    writeln!(
        out,
        "each benchmark: the category table of {months} month(s); plain: each node answers by \
         category and harm after suppressing its own small cells, the gateway sums the answers; \
         secure: each node masks its exact counts by category, the gateway opens the sum \
         (two rounds)"
    )?;
    writeln!(
        out,
        "nodes' CPU: this process (every node, and the one client) per node answer"
    )?;
    for &size in &options.nodes {
        writeln!(out, "fan-out to {size} nodes, one client, warm channels:")?;
        let plain = run_path(&mut net, size, NetworkSums::NodeSuppressed, seconds, months).await?;
        report_path(out, "plain", &plain, size)?;
        let secure = run_path(&mut net, size, NetworkSums::Secure, seconds, months).await?;
        report_path(out, "secure", &secure, size)?;
        writeln!(
            out,
            "  secure/plain: gateway CPU {:.2}, p50 {:.2}",
            secure.gateway_cpu_ms() / plain.gateway_cpu_ms(),
            secure.p50_ms() / plain.p50_ms()
        )?;
        report_memory(out, &secure.memory)?;
    }
    net.shutdown().await
}

/// The two ways a gateway reaches the same nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// The gateway dials each node's federation listener.
    Listening,
    /// Each node dials out to the gateway's link listener.
    Links,
}

/// `bench-fanout --links`: per size, one warm client's benchmark latency with the gateway
/// dialling the nodes, then with the nodes dialling out, over the same nodes and data. Each
/// path gets `rounds` runs; their p50s give the spread.
async fn run_fanout_links(options: FanoutArgs, out: &mut impl Write) -> Result<()> {
    let (seconds, months) = (options.seconds, options.months);
    let largest = options.nodes.iter().copied().max().unwrap_or(0);
    let mut net = start_network(largest, Reach::Both, out).await?;
    writeln!(
        out,
        "each benchmark: {months} month(s) × category × harm; every node listens and links, the \
         gateway (its own process) uses one path at a time; {} run(s) of {seconds} s per path",
        options.rounds
    )?;
    for &size in &options.nodes {
        writeln!(out, "fan-out to {size:>3} nodes, one client, warm channels")?;
        let mut p50s = Vec::new();
        for path in [Path::Listening, Path::Links] {
            net.start_gateway(|config| {
                config.facilities.truncate(size);
                match path {
                    // No link listener: the nodes' endpoints are the only way.
                    Path::Listening => config.link_listen = None,
                    // No endpoints: the links are the only way.
                    Path::Links => config.facilities.iter_mut().for_each(|f| f.endpoint = None),
                }
            })
            .await?;
            drive(&net, 1, 1, months).await?; // warm: every channel connected
            let mut all = RunFigures::default();
            let mut round_p50s = Vec::new();
            for _ in 0..options.rounds.max(1) {
                let (mut figures, _) = drive(&net, 1, seconds, months).await?;
                figures.latencies.sort();
                round_p50s.push(quantile(&figures.latencies, 0.5));
                all.merge(figures);
            }
            all.latencies.sort();
            let l = &all.latencies;
            let spread: Vec<String> = round_p50s.iter().map(|p| format!("{p:.2}")).collect();
            writeln!(
                out,
                "  {:<34} {:>6} benchmarks, with a facility missing {:>3}; p50 {:.2} ms \
                 (per run: {}), p90 {:.2} ms, p99 {:.2} ms",
                match path {
                    Path::Listening => "listening (the gateway dials):",
                    Path::Links => "links (the nodes dial out):",
                },
                l.len(),
                all.partial,
                quantile(l, 0.5),
                spread.join(" / "),
                quantile(l, 0.9),
                quantile(l, 0.99),
            )?;
            p50s.push(quantile(l, 0.5));
        }
        if let [listening, links] = p50s[..] {
            writeln!(
                out,
                "  links p50 / listening p50 = {:.3} ({:+.1} %)",
                links / listening,
                (links / listening - 1.0) * 100.0
            )?;
        }
    }
    net.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_costs_are_summed_from_the_gateway_metrics() {
        let text = "\
# HELP psonet_secure_node_answers Secure-aggregation answers nodes gave, by round.
psonet_secure_node_answers_total{facility=\"a\",round=\"1\"} 4
psonet_secure_node_answers_total{facility=\"b\",round=\"1\"} 4
psonet_secure_node_answers_total{facility=\"a\",round=\"2\"} 4
psonet_secure_node_cpu_seconds_total{facility=\"a\",round=\"1\",part=\"all\"} 0.008
psonet_secure_node_cpu_seconds_total{facility=\"b\",round=\"1\",part=\"all\"} 0.012
psonet_secure_node_cpu_seconds_total{facility=\"a\",round=\"1\",part=\"masking\"} 0.002
psonet_secure_node_cpu_seconds_total{facility=\"a\",round=\"2\",part=\"all\"} 0.001
psonet_rpc_requests_total{rpc=\"x\",code=\"Ok\"} 9
";
        let c = SecureCosts::parse(text);
        assert_eq!((c.round1, c.round2), (8.0, 4.0));
        assert!((c.round1_cpu - 0.020).abs() < 1e-12);
        assert!((c.masking_cpu - 0.002).abs() < 1e-12);
        assert!((c.round2_cpu - 0.001).abs() < 1e-12);
        let none = c.since(&c);
        assert_eq!(none.round1, 0.0);
    }
}
