//! The write gate: every write holds it shared for its whole duration, and a backup holds it
//! exclusively, so what the backup copies is one point in time.

use super::{Store, StoreError};
use std::sync::{RwLockReadGuard, RwLockWriteGuard};

impl Store {
    /// Shared hold of the write gate, taken by every write for its whole duration.
    pub(super) fn write_gate(&self) -> Result<RwLockReadGuard<'_, ()>, StoreError> {
        self.writes.read().map_err(|_| poisoned())
    }

    /// Waits for writes in progress to finish and holds every new one back until the guard is
    /// dropped, together with the database to read: what a backup copies while it holds the
    /// guard is one point in time.
    pub fn pause_writes(&self) -> Result<(RwLockWriteGuard<'_, ()>, &sled::Db), StoreError> {
        let guard = self.writes.write().map_err(|_| poisoned())?;
        Ok((guard, &self.db))
    }
}

fn poisoned() -> StoreError {
    StoreError::Corrupt("write gate poisoned".into())
}
