//! The `psonet` command: thin argument parsing over the psonet crates.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use psonet::import::{self, ImportOptions};
use psonet::ndjson::Codec;
use psonet::pki::{self, InitOptions};
use psonet::synth;
use psonet_core::month::Month;
use std::io::Write;
use std::path::PathBuf;

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
    #[command(args_conflicts_with_subcommands = true)]
    Node {
        /// The node's config file.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: Option<NodeCommand>,
    },
    /// Run the PSO gateway.
    Gateway {
        /// The gateway's config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Certificates for a network.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// A whole network on loopback with synthetic data, then a benchmark (no setup needed).
    Demo,
    /// Import events and exposure from an NDJSON or CSV file into a node, with progress.
    #[command(visible_alias = "submit")]
    Import {
        /// The node's local listener, e.g. 127.0.0.1:7111.
        #[arg(long)]
        node: String,
        /// Identity directory of a facility client (ca.pem, cert.pem, key.pem).
        #[arg(long)]
        identity: PathBuf,
        /// Write every rejected line (line, field, reason) to this CSV file.
        #[arg(long)]
        errors: Option<PathBuf>,
        /// The file: NDJSON (one event or exposure record per line) or .csv.
        file: PathBuf,
    },
    /// Ask the gateway for a benchmark: category rows, a metric's funnel, a trend or a
    /// facility scorecard, as a table, JSON or CSV, optionally plotted to SVG.
    Benchmark(psonet::benchmark_cli::BenchmarkArgs),
    /// gRPC health check over mTLS; exits 0 only when SERVING (for container probes).
    Health {
        /// The listener, e.g. 127.0.0.1:7100.
        #[arg(long)]
        addr: String,
        /// Identity directory the listener admits (ca.pem, cert.pem, key.pem).
        #[arg(long)]
        identity: PathBuf,
        /// Service to check, e.g. psonet.v1.BenchmarkService (default: the whole server).
        #[arg(long, default_value = "")]
        service: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Measure a node on this machine: ingest, unary submits, aggregates, memory, disk.
    Bench {
        /// Events in the large store.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Events in the small store the aggregate is compared with.
        #[arg(long, default_value_t = 100_000)]
        small_events: u64,
        /// Seconds of the unary run.
        #[arg(long, default_value_t = 10)]
        unary_seconds: u64,
        /// The node's sled page cache in MB (store.cache_capacity_mb).
        #[arg(long, default_value_t = 64)]
        cache_mb: u64,
    },
    /// Measure the gateway under load: many concurrent benchmark clients, then overload.
    BenchLoad(psonet::load::LoadOptions),
    /// Measure one warm client's benchmark latency as the network grows.
    BenchFanout {
        /// Network sizes, e.g. 10,50,100.
        #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
        nodes: Vec<usize>,
        /// Seconds per size.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Months each benchmark covers, ending this month.
        #[arg(long, default_value_t = 12)]
        months: u32,
    },
    /// Write synthetic events and exposure as NDJSON to standard output.
    Synth {
        /// Number of events.
        #[arg(long, default_value_t = 3000)]
        events: usize,
        /// Months covered, ending this month.
        #[arg(long, default_value_t = 12)]
        months: u32,
        /// Staffed beds (sets patient days).
        #[arg(long, default_value_t = 300)]
        beds: u32,
        /// Prefix of idempotency keys.
        #[arg(long, default_value = "synth")]
        key_prefix: String,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum NodeCommand {
    /// List a stopped node's audit trail of aggregate requests; --verify checks its hash chain.
    Audit {
        /// The node's config file.
        #[arg(long)]
        config: PathBuf,
        /// Only records from this UTC time on: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]Z.
        #[arg(long)]
        since: Option<String>,
        /// Verify the whole hash chain; fails naming the first altered or missing record.
        #[arg(long)]
        verify: bool,
    },
    /// Copy a running node's store to a file (consistent; the node keeps serving).
    Backup {
        /// The node's local listener, e.g. 127.0.0.1:7111.
        #[arg(long)]
        node: String,
        /// Identity directory of a facility client (ca.pem, cert.pem, key.pem).
        #[arg(long)]
        identity: PathBuf,
        /// The backup file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into the empty data directory of a node config (node not running).
    Restore {
        /// The config of the node to restore; its data_dir must be empty or absent.
        #[arg(long)]
        config: PathBuf,
        /// The backup file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create a CA, certificates for a gateway, facilities and a partner, and example configs.
    Init {
        /// Network name (the SPIFFE trust domain), e.g. midwest-pso.
        #[arg(long)]
        network: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Number of facilities, named facility-1.. (ignored when --facility is given). A network
        /// figure needs 5 facilities by default.
        #[arg(long, default_value_t = 5)]
        facilities: usize,
        /// A facility id (repeatable).
        #[arg(long = "facility")]
        facility_ids: Vec<String>,
        /// Extra host name or IP for server certificates (repeatable).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// First port of the example configs: gateway on it, facility i on +10i+1 and +10i+2.
        #[arg(long, default_value_t = 7100)]
        base_port: u16,
        /// Years the certificates are valid.
        #[arg(long, default_value_t = 2)]
        years: i32,
        /// Do nothing (and succeed) when --out already holds a CA, e.g. on a restart.
        #[arg(long)]
        if_missing: bool,
    },
    /// Issue a node and a client identity for one more facility from an existing CA, with its
    /// node.toml, under <CA DIR>/<FACILITY>; prints the gateway's registry entry.
    AddFacility {
        /// Directory holding the network's ca.pem and ca.key (e.g. the --out of pki init).
        #[arg(long)]
        ca: PathBuf,
        /// Network name (the SPIFFE trust domain), as in the CA's other certificates.
        #[arg(long)]
        network: String,
        /// The new facility's id.
        #[arg(long)]
        facility: String,
        /// Host name or IP the node is reached at (repeatable); the first goes into the
        /// registry entry.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Port of the node's local listener.
        #[arg(long, default_value_t = 7111)]
        local_port: u16,
        /// Port of the node's federation listener.
        #[arg(long, default_value_t = 7112)]
        federation_port: u16,
        /// Years the certificates are valid.
        #[arg(long, default_value_t = 2)]
        years: i32,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let service = match cli.command {
        Command::Node { command: None, .. } => Some("psonet-node"),
        Command::Gateway { .. } => Some("psonet-gateway"),
        _ => None,
    };
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
                let result = run(cli.command).await;
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

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Node {
            command: Some(action),
            ..
        } => run_node_action(action).await,
        Command::Node { config, .. } => {
            run_node(config.context("psonet node needs --config <node.toml>")?).await
        }
        Command::Gateway { config } => run_gateway(config).await,
        Command::Pki {
            command:
                PkiCommand::Init {
                    network,
                    out,
                    facilities,
                    facility_ids,
                    hosts,
                    base_port,
                    years,
                    if_missing,
                },
        } => {
            if if_missing && out.join("ca.pem").exists() {
                println!("{} already holds a CA; kept it", out.display());
                return Ok(());
            }
            let facilities = if facility_ids.is_empty() {
                (1..=facilities).map(|i| format!("facility-{i}")).collect()
            } else {
                facility_ids
            };
            let layout = pki::init(&InitOptions {
                network,
                out,
                facilities,
                hosts,
                base_port: Some(base_port),
                years,
            })?;
            print_layout(&layout);
            Ok(())
        }
        Command::Pki {
            command:
                PkiCommand::AddFacility {
                    ca,
                    network,
                    facility,
                    hosts,
                    local_port,
                    federation_port,
                    years,
                },
        } => {
            let host = hosts.first().cloned().unwrap_or_else(|| "127.0.0.1".into());
            let added = pki::add_facility(&pki::AddFacilityOptions {
                ca_dir: ca,
                network,
                facility,
                hosts,
                ports: (local_port, federation_port),
                years,
            })?;
            println!(
                "facility {}: psonet node --config {}\n  client identity {}\n\
                 the example config listens on 127.0.0.1: change local.listen and \
                 federation.listen for a real host.\nadd to the gateway's registry:\n{}",
                added.id,
                added.node_config.display(),
                added.client_identity.display(),
                pki::registry_entry(&added.id, &host, federation_port)
            );
            Ok(())
        }
        Command::Demo => psonet::demo::run(&mut std::io::stdout()).await,
        Command::Health {
            addr,
            identity,
            service,
            timeout,
        } => {
            let wait = std::time::Duration::from_secs(timeout);
            psonet::health_probe::check(&addr, &identity, &service, wait).await?;
            println!("SERVING");
            Ok(())
        }
        Command::Bench {
            events,
            small_events,
            unary_seconds,
            cache_mb,
        } => {
            let options = psonet::bench::BenchOptions {
                events,
                small_events,
                unary_seconds,
                cache_mb,
            };
            psonet::bench::run(&options, &mut std::io::stdout()).await
        }
        Command::BenchLoad(options) => {
            psonet::load::run_load(&options, &mut std::io::stdout()).await
        }
        Command::BenchFanout {
            nodes,
            seconds,
            months,
        } => psonet::load::run_fanout(&nodes, seconds, months, &mut std::io::stdout()).await,
        Command::Import {
            node,
            identity,
            errors,
            file,
        } => {
            let options = ImportOptions {
                node,
                identity,
                file,
                errors,
            };
            let summary = import::run(&options).await?;
            import::report(&summary, &options, &mut std::io::stdout())
        }
        Command::Benchmark(args) => psonet::benchmark_cli::run(&args, &mut std::io::stdout()).await,
        Command::Synth {
            events,
            months,
            beds,
            key_prefix,
            seed,
        } => {
            let options = synth::SynthOptions {
                events,
                months,
                last_month: Month::current(),
                key_prefix,
                beds,
                seed,
            };
            let codec = Codec::new()?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for record in synth::exposure(&options) {
                writeln!(out, "{}", codec.exposure_json(&record)?)?;
            }
            for event in synth::events(&options) {
                writeln!(out, "{}", codec.event_json(&event)?)?;
            }
            out.flush()?;
            Ok(())
        }
    }
}

async fn run_node(config: PathBuf) -> Result<()> {
    let loaded = psonet_node::NodeConfig::load(&config)?;
    let facility = loaded.config.facility_id.clone();
    let node = psonet_node::RunningNode::start(loaded).await?;
    println!(
        "psonet node ready facility={facility} local={} federation={}{}",
        node.local_addr,
        node.federation_addr,
        metrics_field(node.metrics_addr)
    );
    stop_signal().await?;
    node.shutdown().await?;
    Ok(())
}

fn run_audit(config: &std::path::Path, since: Option<&str>, verify: bool) -> Result<()> {
    let data_dir = psonet_node::NodeConfig::load(config)?.config.data_dir;
    let since = match since {
        Some(text) => psonet_node::utc::parse_ms(text)
            .with_context(|| format!("--since {text:?}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"))?,
        None => 0,
    };
    let mut out = std::io::stdout().lock();
    psonet_node::audit::report(&data_dir, since, verify, &mut out)?;
    Ok(())
}

async fn run_node_action(action: NodeCommand) -> Result<()> {
    match action {
        NodeCommand::Audit {
            config,
            since,
            verify,
        } => run_audit(&config, since.as_deref(), verify)?,
        NodeCommand::Backup {
            node,
            identity,
            out,
        } => {
            let manifest = psonet::backup::fetch(&node, &identity, &out).await?;
            print!("{}", psonet::backup::describe(&manifest, &out));
        }
        NodeCommand::Restore { config, file } => {
            let (summary, dir) = psonet::backup::restore(&config, &file)?;
            println!(
                "restored {} entries ({} events, counters checked) of facility {} into {}",
                summary.entries,
                summary.events,
                summary.facility_id,
                dir.display()
            );
        }
    }
    Ok(())
}

async fn run_gateway(config: PathBuf) -> Result<()> {
    let loaded = psonet_gateway::GatewayConfig::load(&config)?;
    let gateway = psonet_gateway::RunningGateway::start(loaded).await?;
    println!(
        "psonet gateway ready listen={}{}",
        gateway.addr,
        metrics_field(gateway.metrics_addr)
    );
    stop_signal().await?;
    gateway.shutdown().await?;
    Ok(())
}

/// ` metrics=ADDR` for a ready line, when metrics are served.
fn metrics_field(addr: Option<std::net::SocketAddr>) -> String {
    addr.map(|a| format!(" metrics={a}")).unwrap_or_default()
}

/// SIGTERM or Ctrl-C.
async fn stop_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    Ok(())
}

fn print_layout(layout: &pki::NetworkLayout) {
    println!(
        "wrote a CA, certificates and configs to {}",
        layout.out.display()
    );
    println!(
        "  gateway:  psonet gateway --config {}",
        layout.gateway_config.display()
    );
    for f in &layout.facilities {
        println!(
            "  {:<9} psonet node --config {}",
            format!("{}:", f.id),
            f.node_config.display()
        );
        println!(
            "  {:<9} client identity {}",
            "",
            f.client_identity.display()
        );
    }
    println!(
        "  partner:  client identity {}",
        layout.partner_identity.display()
    );
    println!(
        "keep {} offline: it signs every identity of the network",
        layout.out.join("ca.key").display()
    );
}
