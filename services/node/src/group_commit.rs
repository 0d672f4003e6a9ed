//! Group commit: one fsync makes many writes durable.
//!
//! Every write is acknowledged only after a flush that started after the write was applied.
//! Writers that arrive while a flush runs wait for the next one and share it, so durable
//! throughput is bounded by fsyncs per second times the writes that pile up behind each.

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

/// Tracks applied writes against flushed ones.
#[derive(Default)]
pub struct GroupCommit {
    applied: AtomicU64,
    flushed: AtomicU64,
    flushes: AtomicU64,
    flush_lock: Mutex<()>,
}

impl GroupCommit {
    /// Makes every write applied before this call durable, flushing with `flush` unless a
    /// flush that started after those writes has already finished.
    pub async fn durable<F, Fut, E>(&self, flush: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let mine = self.applied.fetch_add(1, Ordering::AcqRel) + 1;
        let _guard = self.flush_lock.lock().await;
        if self.flushed.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        let upto = self.applied.load(Ordering::Acquire);
        flush().await?;
        self.flushed.fetch_max(upto, Ordering::AcqRel);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Flushes run so far: fewer than the writes made durable when writes share them.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn concurrent_writers_share_flushes_and_each_sees_one() {
        let gc = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (gc, flushes) = (gc.clone(), flushes.clone());
                tokio::spawn(async move {
                    gc.durable(|| async {
                        flushes.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        Ok::<_, ()>(())
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        assert!((1..64).contains(&n), "64 writers needed {n} flushes");
        // A write after every flush still gets its own flush.
        gc.durable(|| async {
            flushes.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(())
        })
        .await
        .unwrap();
        assert_eq!(flushes.load(Ordering::SeqCst), n + 1);
    }
}
