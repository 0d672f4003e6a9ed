//! `psonet node backup` and `psonet node restore`: the facility's side of a backup.
//!
//! A backup is taken by the running node (`BackupService` on its local listener) and written
//! here to a file, checked against the manifest the node sent first. A restore needs no node:
//! it writes the file into the empty data directory of a config, and the node is started on
//! it afterwards.

use crate::client::{channel, explain};
use anyhow::{Context, Result, bail};
use psonet_core::pb::{self, backup_response::Part, backup_service_client::BackupServiceClient};
use psonet_node::NodeConfig;
use psonet_node::backup::RestoreSummary;
use psonet_serve::config_file::read_toml;
use ring::digest::{Context as Digest, SHA256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `psonet node backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The node's local listener, e.g. 127.0.0.1:7111.
    #[arg(long)]
    node: String,
    /// Identity directory of a facility client (ca.pem, cert.pem, key.pem).
    #[arg(long)]
    identity: PathBuf,
    /// The backup file to write (must not exist).
    #[arg(long)]
    out: PathBuf,
}

/// Arguments of `psonet node restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The config of the node to restore; its data_dir must be empty or absent.
    #[arg(long)]
    config: PathBuf,
    /// The backup file.
    file: PathBuf,
}

/// `psonet node backup`: fetches the backup and describes it to `out`.
pub async fn run_backup(args: BackupArgs, out: &mut impl Write) -> Result<()> {
    let manifest = fetch(&args.node, &args.identity, &args.out).await?;
    write!(out, "{}", describe(&manifest, &args.out))?;
    Ok(())
}

/// `psonet node restore`: restores the backup and says what it restored, to `out`.
pub fn run_restore(args: RestoreArgs, out: &mut impl Write) -> Result<()> {
    let (summary, dir) = restore(&args.config, &args.file)?;
    writeln!(
        out,
        "restored {} entries ({} events, counters checked) of facility {} into {}",
        summary.entries,
        summary.events,
        summary.facility_id,
        dir.display()
    )?;
    Ok(())
}

/// Asks the node at `node` (its local listener) for a backup as `identity` and writes it to
/// `out`, which must not exist. The file appears under its name only once its size and
/// SHA-256 match the manifest and it is on disk.
async fn fetch(node: &str, identity: &Path, out: &Path) -> Result<pb::BackupManifest> {
    if out.exists() {
        bail!("{} exists; choose a new file name", out.display());
    }
    let peer = format!("the node at {node}");
    let mut stream = match BackupServiceClient::new(channel(node, identity)?)
        .backup(pb::BackupRequest {})
        .await
    {
        Ok(response) => response.into_inner(),
        Err(s) => return Err(explain(s, node, &peer, identity).await),
    };
    let manifest = match stream.message().await? {
        Some(pb::BackupResponse {
            part: Some(Part::Manifest(m)),
        }) => m,
        _ => bail!("{peer} did not start the backup with its manifest"),
    };
    let partial = partial_path(out);
    let written = receive(&mut stream, &partial, &manifest).await;
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written?;
    std::fs::rename(&partial, out).with_context(|| format!("naming {}", out.display()))?;
    Ok(manifest)
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Writes the data pieces to `path` and checks them against `manifest`.
async fn receive(
    stream: &mut tonic::Streaming<pb::BackupResponse>,
    path: &Path,
    manifest: &pb::BackupManifest,
) -> Result<()> {
    // A backup holds narratives: readable by its owner only, whatever the umask.
    let file = psonet_serve::private_files::create_new_file(path)
        .with_context(|| format!("creating {}", path.display()))?;
    let mut file = std::io::BufWriter::new(file);
    let mut digest = Digest::new(&SHA256);
    let mut size = 0u64;
    while let Some(message) = stream.message().await? {
        let Some(Part::Data(bytes)) = message.part else {
            bail!("the node sent a second manifest in the middle of the backup");
        };
        digest.update(&bytes);
        size += bytes.len() as u64;
        file.write_all(&bytes)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if size != manifest.size_bytes || digest.finish().as_ref() != manifest.sha256.as_slice() {
        bail!(
            "the backup arrived damaged: {size} bytes, the node announced {} with another SHA-256",
            manifest.size_bytes
        );
    }
    let file = file.into_inner().context("flushing the backup")?;
    file.sync_all().context("syncing the backup to disk")?;
    Ok(())
}

/// One line per fact of a fetched backup, for the person who asked for it.
fn describe(manifest: &pb::BackupManifest, out: &Path) -> String {
    let trees: Vec<String> = manifest
        .trees
        .iter()
        .map(|t| format!("{} {}", t.name, t.entries))
        .collect();
    let sha: String = manifest.sha256.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "wrote {} ({} bytes) for facility {}\n  entries: {}\n  writes paused {} ms\n  sha256 {sha}\n",
        out.display(),
        manifest.size_bytes,
        manifest.facility_id,
        trees.join(", "),
        manifest.pause_ms,
    )
}

/// Restores `file` into the data directory of the node config `config` (which must be empty
/// or absent), for the config's facility only.
fn restore(config: &Path, file: &Path) -> Result<(RestoreSummary, PathBuf)> {
    let (mut node, base): (NodeConfig, _) = read_toml(config)?;
    node.resolve_relative(&base);
    let summary = psonet_node::backup::restore(
        file,
        &node.data_dir,
        &node.facility_id,
        node.store.cache_capacity_mb * 1024 * 1024,
    )?;
    Ok((summary, node.data_dir))
}
