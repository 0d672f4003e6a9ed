//! `BackupService`: a running node copies its own store for the facility (local listener only).
//!
//! The copy goes first to an unlinked spool file beside the data directory, with writes paused
//! only for that local copy; it then streams at whatever pace the client reads, with writes
//! flowing again. A slow or stalled client never holds the store.

use crate::backup::{BackupSummary, write_backup};
use crate::reporting::store_status;
use crate::store::Store;
use psonet_core::pb::{self, backup_response::Part, backup_service_server::BackupService};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Largest `data` piece of the stream.
const PIECE_BYTES: usize = 256 * 1024;

/// Serves backups of one facility's store.
pub struct Backups {
    store: Arc<Store>,
    facility_id: String,
    spool_dir: PathBuf,
}

impl Backups {
    /// Backups of `store` (facility `facility_id`), spooled in `spool_dir` (the directory that
    /// holds the data directory, which the node may write; the system temp dir if it cannot).
    pub fn new(store: Arc<Store>, facility_id: String, spool_dir: PathBuf) -> Self {
        Self {
            store,
            facility_id,
            spool_dir,
        }
    }

    /// Copies the store into an unlinked spool file, rewound for reading.
    fn spool(&self) -> Result<(std::fs::File, BackupSummary), Status> {
        let mut file = tempfile::tempfile_in(&self.spool_dir)
            .or_else(|_| tempfile::tempfile())
            .map_err(|e| {
                Status::unavailable(format!("no room for the backup's spool file: {e}"))
            })?;
        let summary = write_backup(&self.store, &self.facility_id, &mut file).map_err(|e| {
            tracing::error!(error = %e, "backup failed");
            match e {
                crate::backup::BackupError::Store(e) => store_status(e),
                other => Status::unavailable(format!("the backup could not be written: {other}")),
            }
        })?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Status::internal(format!("rewinding the spool file: {e}")))?;
        Ok((file, summary))
    }
}

type BackupStream = Pin<Box<dyn Stream<Item = Result<pb::BackupResponse, Status>> + Send>>;

#[tonic::async_trait]
impl BackupService for Backups {
    type BackupStream = BackupStream;

    async fn backup(
        &self,
        _request: Request<pb::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let this = Backups::new(
            self.store.clone(),
            self.facility_id.clone(),
            self.spool_dir.clone(),
        );
        let (file, summary) = tokio::task::spawn_blocking(move || this.spool())
            .await
            .map_err(|e| Status::internal(format!("backup task failed: {e}")))??;
        tracing::info!(
            bytes = summary.size_bytes,
            pause_ms = summary.pause.as_millis() as u64,
            "backup taken"
        );
        let (tx, rx) = mpsc::channel(4);
        let manifest = Part::Manifest(manifest(&summary));
        tx.send(Ok(pb::BackupResponse {
            part: Some(manifest),
        }))
        .await
        .map_err(|_| Status::cancelled("the client went away"))?;
        tokio::task::spawn_blocking(move || send_pieces(file, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn manifest(summary: &BackupSummary) -> pb::BackupManifest {
    pb::BackupManifest {
        facility_id: summary.facility_id.clone(),
        taken_at: Some(prost_types::Timestamp {
            seconds: summary.taken_at_unix_s as i64,
            nanos: 0,
        }),
        size_bytes: summary.size_bytes,
        sha256: summary.sha256.to_vec(),
        trees: summary
            .trees
            .iter()
            .map(|(name, entries)| pb::BackupTree {
                name: name.clone(),
                entries: *entries,
            })
            .collect(),
        pause_ms: summary.pause.as_millis() as u64,
    }
}

/// Streams the spool file in pieces until it ends or the client goes away.
fn send_pieces(mut file: std::fs::File, tx: mpsc::Sender<Result<pb::BackupResponse, Status>>) {
    let mut buf = vec![0u8; PIECE_BYTES];
    loop {
        let item = match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => Ok(pb::BackupResponse {
                part: Some(Part::Data(buf[..n].to_vec())),
            }),
            Err(e) => Err(Status::internal(format!("reading the spool file: {e}"))),
        };
        let failed = item.is_err();
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
    }
}
