//! The node's store: events, idempotency keys, counters and exposure in one sled database.
//!
//! An event, its idempotency entry and its counter increments are written in one sled
//! transaction, and so is an amendment with the move of its counts, so a counter never
//! disagrees with the events even across a crash ([`Store::verify_counters`] checks it). Writes
//! are acknowledged only once [`Store::make_durable`] has flushed them (group commit).
//!
//! Events are kept as the node's own versioned record ([`crate::record`]), never as API
//! messages. One concept per file: `write` (submit and amend), `write_gate` (what a backup
//! pauses), `read` (events back), `counters` (the deltas a write applies, and the aggregate
//! read), `rollup` (the counters mirrored in memory), `exposure` (denominators), `verify` (the
//! full recount), `keys` (how ids are encoded) and `format` (the store's format version, and
//! the migration of an older store when it is opened).

mod counters;
mod exposure;
mod failure;
mod format;
mod keys;
mod open;
mod read;
mod records;
mod rollup;
mod verify;
mod write;
mod write_gate;

use crate::group_commit::GroupCommit;
use rollup::RollupMirror;
use sled::Tree;
use sled::transaction::TransactionError;
use std::sync::RwLock;

pub use exposure::{Exposure, ExposureCells};
pub use failure::StoreFailure;
pub use format::{FORMAT_VERSION, META_TREE};
pub(crate) use open::open_db;
pub use records::RecordChange;
pub use write::{AmendOutcome, SubmitOutcome};

/// A store failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption it detected, or a bug it reports); the message carries
    /// sled's own, so the log says what the disk did.
    #[error("the store failed: {0}")]
    Sled(sled::Error),
    /// The data directory cannot hold a store: what is wrong with it and what to do, naming it.
    #[error("{0}")]
    DataDir(String),
    /// Stored bytes do not decode, or counters disagree with events.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// The store was written by a newer release, in a format this one cannot read.
    #[error(
        "the store is in format {found}, written by a newer psonet; this one reads formats up \
         to {supported}: run the newer release, or restore a backup taken before the upgrade"
    )]
    NewerFormat {
        /// The store's format version.
        found: u32,
        /// The newest this release reads.
        supported: u32,
    },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Sled(e)
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

/// The sled database of one facility.
pub struct Store {
    db: sled::Db,
    events: Tree,
    keys: Tree,
    counters: Tree,
    exposure: Tree,
    commits: GroupCommit,
    /// The first I/O failure met by any call, which the node must not outlive.
    failure: StoreFailure,
    /// The rollup families of the counters, mirrored in memory.
    rollup: RollupMirror,
    /// Every write holds it shared; a backup holds it exclusively, so the copy is one point in
    /// time (see [`Store::pause_writes`]).
    writes: RwLock<()>,
}

impl Store {
    /// Opens (or creates) the store in `dir` with a page cache of `cache_bytes`, migrating a
    /// store of an older format in place first. The directory and its files are private to
    /// the owner; an unusable directory is refused with what to do about it.
    pub fn open(dir: &std::path::Path, cache_bytes: u64) -> Result<Self, StoreError> {
        Self::from_db(open_db(dir, cache_bytes)?, dir)
    }

    /// The store in an open database in `dir` (e.g. one just restored, which sled would not let
    /// this process open again until its background threads let go of it), migrated to the
    /// current format if it is older.
    pub fn from_db(db: sled::Db, dir: &std::path::Path) -> Result<Self, StoreError> {
        let events = db.open_tree("events")?;
        format::upgrade(&db, &events)?;
        let counters = db.open_tree("counters")?;
        let rollup = RollupMirror::load(&counters)?;
        crate::heap::release_freed();
        Ok(Self {
            events,
            keys: db.open_tree("idempotency_keys")?,
            counters,
            exposure: db.open_tree("exposure")?,
            commits: GroupCommit::default(),
            failure: StoreFailure::new(dir),
            rollup,
            writes: RwLock::new(()),
            db,
        })
    }

    /// Opens (or creates) another tree of this store, e.g. the audit trail or the privacy
    /// ledger; its writes become durable with [`Store::make_durable`].
    pub fn tree(&self, name: &str) -> Result<Tree, StoreError> {
        self.watched(|| Ok(self.db.open_tree(name)?))
    }

    /// The store's first I/O failure, for whoever must stop serving on it.
    pub fn failure(&self) -> &StoreFailure {
        &self.failure
    }

    /// Runs `op`, recording the failure it meets (see [`StoreFailure::record`]). Every public
    /// call of the store goes through here, so no caller can miss a failed disk.
    fn watched<T>(&self, op: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        op().inspect_err(|e| self.failure.record(e))
    }

    /// The format version the store is in (always [`FORMAT_VERSION`] once opened).
    pub fn format_version(&self) -> Result<u32, StoreError> {
        format::read_version(&self.db)?
            .ok_or_else(|| StoreError::Corrupt("no format version".into()))
    }

    /// Flushes made so far (for tests and measurements of group commit).
    pub fn flushes(&self) -> u64 {
        self.commits.flushes()
    }

    /// Makes every write applied so far durable (shared fsync; see [`GroupCommit`]).
    pub async fn make_durable(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        self.commits
            .durable(|| async move {
                tokio::task::spawn_blocking(move || db.flush())
                    .await
                    .map_err(|e| StoreError::Corrupt(format!("flush task failed: {e}")))??;
                Ok(())
            })
            .await
            .inspect_err(|e| self.failure.record(e))
    }
}
