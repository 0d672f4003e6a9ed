//! The store's first I/O failure, and everyone who must hear of it.
//!
//! Once sled fails to write or read its files it remembers the error and fails every later
//! call the same way, even after the disk has recovered: only a restart, which replays sled's
//! log from what was flushed, brings the store back. So a failure is not a per-request matter.
//! The store records the first one here, whatever call met it, and the node turns
//! `NOT_SERVING` and stops (see `RunningNode`), so that systemd or Kubernetes restart it — instead
//! of answering health checks `SERVING` while every write fails.

use super::StoreError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

/// The first failure of a store, once there is one (cloning shares it).
#[derive(Clone)]
pub struct StoreFailure {
    data_dir: Arc<PathBuf>,
    first: Arc<watch::Sender<Option<Arc<str>>>>,
}

impl StoreFailure {
    /// No failure yet, for the store in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: Arc::new(data_dir.to_path_buf()),
            first: Arc::new(watch::channel(None).0),
        }
    }

    /// Records `error` when it means the store itself failed (sled's I/O, corruption or bug;
    /// not a record that does not decode). The first such error is kept, logged with what to
    /// check, and wakes [`StoreFailure::failed`].
    pub fn record(&self, error: &StoreError) {
        if let StoreError::Sled(_) = error {
            self.record_cause(&error.to_string());
        }
    }

    /// Records a failure of the store's files met outside the store's own calls (a tree of it
    /// written directly, such as the audit trail), described by `cause`.
    pub fn record_cause(&self, cause: &str) {
        let first = self.first.send_if_modified(|first| {
            if first.is_some() {
                return false;
            }
            *first = Some(Arc::from(cause));
            true
        });
        if first {
            tracing::error!(
                data_dir = %self.data_dir.display(),
                "{}",
                self.advice(cause)
            );
        }
    }

    /// The first failure, if there was one.
    pub fn get(&self) -> Option<Arc<str>> {
        self.first.borrow().clone()
    }

    /// Completes with the first failure once there is one.
    pub fn failed(&self) -> impl Future<Output = Arc<str>> + Send + 'static {
        let mut rx = self.first.subscribe();
        async move {
            let first = rx
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|first| first.clone());
            match first {
                Some(first) => first,
                // The sender lives as long as any clone of this; without it nothing can fail.
                None => std::future::pending().await,
            }
        }
    }

    /// What the failure means and what to check, for the log and the exit message.
    pub fn advice(&self, cause: &str) -> String {
        format!(
            "{cause}. This node now reports NOT_SERVING and stops, so that systemd or \
             Kubernetes restart it (sled cannot recover from a failed write without a restart); \
             acknowledged data is on disk. Check the disk holding data_dir {}: free space \
             (`df -h`), I/O errors (`dmesg`), a read-only remount, ownership and permissions",
            self.data_dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_failure_is_kept_and_wakes_the_waiter() {
        let failure = StoreFailure::new(Path::new("/srv/store"));
        let waiter = tokio::spawn(failure.failed());
        failure.record(&StoreError::Corrupt("one bad record".into()));
        assert!(
            failure.get().is_none(),
            "a record that does not decode is not fatal"
        );
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device");
        failure.record(&StoreError::Sled(sled::Error::Io(io)));
        failure.record_cause("a later failure");
        let first = waiter.await.unwrap();
        assert!(first.contains("No space left on device"), "{first}");
        assert!(failure.advice(&first).contains("data_dir /srv/store"));
    }
}
