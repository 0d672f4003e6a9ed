//! `psonet links`: which facility nodes are linked to a gateway, from where and since when — or,
//! asked of a node's local listener, which gateway addresses the node holds links to.
//!
//! For PSO staff (a partner identity on the gateway) and facility IT (the facility's client
//! identity on its node). `psonet health` prints the same list after `SERVING` when the server
//! has one.

use crate::client::{channel, explain};
use crate::render::table;
use anyhow::{Result, bail};
use psonet_core::pb::{self, link_service_client::LinkServiceClient};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `psonet links`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The gateway's listener (e.g. 127.0.0.1:7100), or a node's local listener.
    #[arg(long)]
    addr: String,
    /// Identity directory: a partner's for the gateway, the facility's client for its node.
    #[arg(long)]
    identity: PathBuf,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// Runs `psonet links`: the table on `out`.
pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let wait = Duration::from_secs(args.timeout);
    let links = list(&args.addr, &args.identity, wait).await?;
    write!(out, "{}", table::links(&links))?;
    Ok(())
}

/// The links the server at `addr` knows of, asked as `identity`, within `timeout`.
pub async fn list(addr: &str, identity: &Path, timeout: Duration) -> Result<pb::ListLinksResponse> {
    let peer = format!("the server at {addr}");
    let mut client = LinkServiceClient::new(channel(addr, identity)?);
    match tokio::time::timeout(timeout, client.list_links(pb::ListLinksRequest {})).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(explain(status, addr, &peer, identity).await),
        Err(_) => bail!("{peer} did not answer within {timeout:?}"),
    }
}
