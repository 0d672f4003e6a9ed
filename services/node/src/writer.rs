//! The single writer: every submit, unary or streamed, goes through one task that applies
//! whatever is waiting as one sled transaction and one flush.
//!
//! Concurrent writers would each run their own transaction on the same hot counters and retry
//! on conflict; batching them removes the conflicts and shares each fsync among every caller
//! that arrived while the previous batch was being written (group commit at the transaction
//! level). A caller's events are durable when its `submit` returns.

use crate::store::{Store, StoreError, SubmitOutcome};
use psonet_core::event::Event;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most events applied in one transaction.
const MAX_BATCH_EVENTS: usize = 4_096;
/// Submits waiting for the writer before callers wait to enqueue (backpressure).
const QUEUE: usize = 1_024;

type Reply = oneshot::Sender<Result<Vec<SubmitOutcome>, StoreError>>;

/// A handle to the writer task.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<(Vec<Event>, Reply)>,
}

impl Writer {
    /// Starts the writer task for `store`.
    pub fn start(store: Arc<Store>) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx));
        Self { jobs }
    }

    /// Stores `events` (each new key once, known keys as duplicates) and returns once they are
    /// durable.
    pub async fn submit(&self, events: Vec<Event>) -> Result<Vec<SubmitOutcome>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Corrupt("the writer has stopped".into());
        self.jobs
            .send((events, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(store: Arc<Store>, mut rx: mpsc::Receiver<(Vec<Event>, Reply)>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut waiting = jobs[0].0.len();
        while waiting < MAX_BATCH_EVENTS {
            match rx.try_recv() {
                Ok(job) => {
                    waiting += job.0.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let sizes: Vec<usize> = jobs.iter().map(|(events, _)| events.len()).collect();
        let (events, replies): (Vec<Vec<Event>>, Vec<Reply>) = jobs.into_iter().unzip();
        let all: Vec<Event> = events.into_iter().flatten().collect();
        let result = write_durably(&store, all).await;
        match result {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for (size, reply) in sizes.into_iter().zip(replies) {
                    let _ = reply.send(Ok(outcomes.by_ref().take(size).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "write failed");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

async fn write_durably(
    store: &Arc<Store>,
    events: Vec<Event>,
) -> Result<Vec<SubmitOutcome>, StoreError> {
    let writer_store = store.clone();
    let outcomes = tokio::task::spawn_blocking(move || writer_store.submit(&events))
        .await
        .map_err(|e| StoreError::Corrupt(format!("store task failed: {e}")))??;
    store.make_durable().await?;
    Ok(outcomes)
}
