//! `psonet node`: run a facility node in the foreground, or look after one — `audit` its trail
//! while it is stopped, `backup` it while it runs, `restore` a backup into an empty directory.

mod backup;

use crate::foreground::{ReadyLine, stop_signal};
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `psonet node`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node's config file.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List a stopped node's audit trail of aggregate requests; --verify checks its hash chain.
    Audit(AuditArgs),
    /// Copy a running node's store to a file (consistent; the node keeps serving).
    Backup(backup::BackupArgs),
    /// Restore a backup into the empty data directory of a node config (node not running).
    Restore(backup::RestoreArgs),
}

/// Arguments of `psonet node audit`.
#[derive(Debug, clap::Args)]
struct AuditArgs {
    /// The node's config file.
    #[arg(long)]
    config: PathBuf,
    /// Only records from this UTC time on: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]Z.
    #[arg(long)]
    since: Option<String>,
    /// Verify the whole hash chain; fails naming the first altered or missing record.
    #[arg(long)]
    verify: bool,
}

impl Args {
    /// Whether this runs the node itself (rather than one of its maintenance commands): a
    /// server logs at `info` and names itself `psonet-node` in traces.
    pub fn serves(&self) -> bool {
        self.command.is_none()
    }
}

/// Runs `psonet node …`, writing what it has to say to `out`.
pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    match args.command {
        None => {
            serve(
                args.config
                    .context("psonet node needs --config <node.toml>")?,
                out,
            )
            .await
        }
        Some(Command::Audit(audit)) => run_audit(&audit, out),
        Some(Command::Backup(backup)) => backup::run_backup(backup, out).await,
        Some(Command::Restore(restore)) => backup::run_restore(restore, out),
    }
}

/// Serves until SIGTERM or Ctrl-C, then shuts down gracefully.
async fn serve(config: PathBuf, out: &mut impl Write) -> Result<()> {
    let loaded = psonet_node::NodeConfig::load(&config)?;
    let facility = loaded.config.facility_id.clone();
    let node = psonet_node::RunningNode::start(loaded).await?;
    writeln!(
        out,
        "{}",
        ReadyLine::node(
            &facility,
            node.local_addr,
            node.federation_addr,
            node.metrics_addr
        )
    )?;
    out.flush()?;
    tokio::select! {
        stopped = stop_signal() => stopped?,
        failed = node.store_failed() => {
            // Drain, then exit non-zero so that systemd or Kubernetes restart the node; the
            // final flush fails too, and says nothing the failure did not.
            if let Err(e) = node.shutdown().await {
                tracing::warn!(error = %e, "stopping after the store failed");
            }
            bail!("{failed}");
        }
    }
    node.shutdown().await?;
    Ok(())
}

fn run_audit(args: &AuditArgs, out: &mut impl Write) -> Result<()> {
    let data_dir = psonet_node::NodeConfig::load(&args.config)?.config.data_dir;
    let since = match &args.since {
        Some(text) => psonet_node::utc::parse_ms(text)
            .with_context(|| format!("--since {text:?}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"))?,
        None => 0,
    };
    psonet_node::audit::report(&data_dir, since, args.verify, out)?;
    Ok(())
}
