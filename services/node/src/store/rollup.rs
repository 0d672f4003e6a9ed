//! The rollup families of the counters mirrored in memory.
//!
//! The network benchmark's month × category × harm query and its event totals read them
//! without touching sled pages. The mirror is updated with exactly the deltas of each committed
//! transaction. The detailed families stay on disk only: at a million events they hold about
//! two million keys, which would cost more memory than a node's budget allows, and a range read
//! of them costs milliseconds.

use super::StoreError;
use super::counters::{CounterMap, Deltas, read_counters};
use psonet_core::cube::{CounterKey, Family};
use sled::Tree;
use std::collections::BTreeMap;
use std::sync::{RwLock, RwLockReadGuard};

/// The in-memory copy of the rollup families.
pub(super) struct RollupMirror(RwLock<CounterMap>);

impl RollupMirror {
    /// Reads the rollup families from the counters tree.
    pub fn load(counters: &Tree) -> Result<Self, StoreError> {
        let mut out = BTreeMap::new();
        for family in Family::ALL.into_iter().filter(|f| f.is_rollup()) {
            out.extend(read_counters(counters, Some(family))?);
        }
        Ok(Self(RwLock::new(out)))
    }

    /// The mirror, for reading.
    pub fn read(&self) -> Result<RwLockReadGuard<'_, CounterMap>, StoreError> {
        self.0
            .read()
            .map_err(|_| StoreError::Corrupt("counter cache poisoned".into()))
    }

    /// Applies a committed transaction's rollup counter changes.
    pub fn apply(&self, deltas: &Deltas) {
        let Ok(mut cube) = self.0.write() else {
            return;
        };
        for (key, delta) in deltas.iter().filter(|(key, _)| is_rollup_key(key)) {
            let now = cube.get(key).copied().unwrap_or(0) as i64 + delta;
            if now > 0 {
                cube.insert(*key, now as u64);
            } else {
                cube.remove(key);
            }
        }
    }
}

/// Whether an encoded counter key belongs to a family the mirror holds.
pub(super) fn is_rollup_key(key: &[u8; CounterKey::LEN]) -> bool {
    Family::ALL
        .into_iter()
        .any(|f| f.is_rollup() && f.prefix() == key[0])
}
