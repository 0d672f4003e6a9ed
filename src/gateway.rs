//! `psonet gateway`: run the PSO gateway in the foreground until SIGTERM or Ctrl-C.

use crate::foreground::{ReadyLine, stop_signal};
use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `psonet gateway`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The gateway's config file.
    #[arg(long)]
    config: PathBuf,
}

/// Serves until SIGTERM or Ctrl-C, then shuts down gracefully; the ready line goes to `out`.
pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let loaded = psonet_gateway::GatewayConfig::load(&args.config)?;
    let gateway = psonet_gateway::RunningGateway::start(loaded).await?;
    writeln!(
        out,
        "{}",
        ReadyLine::gateway(gateway.addr, gateway.link_addr, gateway.metrics_addr)
    )?;
    out.flush()?;
    stop_signal().await?;
    gateway.shutdown().await?;
    Ok(())
}
