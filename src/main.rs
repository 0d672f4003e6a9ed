//! The `psonet` command: parses the command line and runs the subcommand's module.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use psonet::{
    benchmark, demo, gateway, guidance, health, import, intervention, links, node, perf, pki,
    practice_effect, report, synth,
};

#[derive(Parser)]
#[command(
    name = "psonet",
    version,
    about = "Federated patient safety benchmarking: facility nodes, PSO gateway, tools."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a facility node (local + federation listeners); `backup` and `restore` its store,
    /// or inspect a stopped one (`audit`).
    ///
    /// Upgrading: a new release brings the store to its own format at its first start, in
    /// place, before the listeners open (when the format changed, every event is rewritten,
    /// with progress logged); releases older than the store's format cannot use it afterwards,
    /// so take a `backup` first. See "Upgrade a node" in deploy/README.md.
    #[command(args_conflicts_with_subcommands = true)]
    Node(node::Args),
    /// Run the PSO gateway.
    Gateway(gateway::Args),
    /// Certificates for a network.
    Pki(pki::Args),
    /// A whole network on loopback with synthetic data, then a benchmark (no setup needed).
    Demo,
    /// Import events and exposure from an NDJSON or CSV file into a node, with progress.
    #[command(visible_alias = "submit")]
    Import(import::Args),
    /// Ask the gateway for a benchmark: category rows, a metric's funnel, a trend or a
    /// facility scorecard, as a table, JSON or CSV, optionally plotted to SVG.
    Benchmark(benchmark::Args),
    /// The PSO's report for a period as one self-contained HTML file (and PDF with --pdf):
    /// every catalogue metric for a partner, the facility's own scorecards for a facility.
    Report(report::Args),
    /// A facility's interventions on its node: record, amend, end, list, and the facility's
    /// own before/after for one (rate ratio, interrupted time series, SVG chart).
    Intervention(intervention::Args),
    /// Which practices work: the gateway's pooled before/after of the facilities that adopted a
    /// practice, against those that did not, with a forest plot.
    PracticeEffect(practice_effect::Args),
    /// The PSO's guidance: in force at the gateway, its adoption, and at a facility's node
    /// (acknowledge, adopt).
    Guidance(guidance::Args),
    /// gRPC health check over mTLS; exits 0 only when SERVING (for container probes). Lists
    /// the server's links after SERVING when it has any.
    Health(health::Args),
    /// Facility nodes linked to a gateway and since when (for PSO staff), or a node's own
    /// links to the gateway (for facility IT).
    Links(links::Args),
    /// Measure a node on this machine: ingest, unary submits, aggregates, memory, disk.
    Bench(perf::node::Args),
    /// Measure the gateway under load: many concurrent benchmark clients, then overload.
    BenchLoad(perf::gateway::LoadArgs),
    /// Measure one warm client's benchmark as the network grows, secure aggregation beside the
    /// node-suppressed path: latency, gateway CPU per benchmark, node CPU per answer.
    BenchFanout(perf::gateway::FanoutArgs),
    /// Write synthetic events and exposure as NDJSON to standard output.
    Synth(synth::Args),
}

impl Command {
    /// The service a server command runs as (its log level is `info` and its traces carry the
    /// name); `None` for the tools, which log warnings only.
    fn service(&self) -> Option<&'static str> {
        match self {
            Command::Node(args) if args.serves() => Some("psonet-node"),
            Command::Gateway(_) => Some("psonet-gateway"),
            _ => None,
        }
    }

    async fn run(self) -> Result<()> {
        let out = &mut std::io::stdout();
        match self {
            Command::Node(args) => node::run(args, out).await,
            Command::Gateway(args) => gateway::run(args, out).await,
            Command::Pki(args) => pki::run(args, out),
            Command::Demo => demo::run(out).await,
            Command::Import(args) => import::run(args, out).await,
            Command::Benchmark(args) => benchmark::run(args, out).await,
            Command::Report(args) => report::run(args).await,
            Command::Intervention(args) => intervention::run(args, out).await,
            Command::PracticeEffect(args) => practice_effect::run(args, out).await,
            Command::Guidance(args) => guidance::run(args, out).await,
            Command::Health(args) => health::run(args, out).await,
            Command::Links(args) => links::run(args, out).await,
            Command::Bench(args) => perf::node::run(args, out).await,
            Command::BenchLoad(args) => perf::gateway::run_load(args, out).await,
            Command::BenchFanout(args) => perf::gateway::run_fanout(args, out).await,
            Command::Synth(args) => synth::run(args, out),
        }
    }
}

fn main() -> std::process::ExitCode {
    let command = Cli::parse().command;
    let service = command.service();
    if service == Some("psonet-node") {
        psonet_node::heap::limit_arenas();
    }
    psonet_serve::tls::install_crypto_provider();
    let result = tokio::runtime::Runtime::new()
        .context("starting the async runtime")
        .and_then(|runtime| {
            runtime.block_on(async {
                let filter = if service.is_some() { "info" } else { "warn" };
                let telemetry = psonet_serve::telemetry::init(service.unwrap_or("psonet"), filter)?;
                let result = command.run().await;
                telemetry.shutdown();
                result
            })
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
