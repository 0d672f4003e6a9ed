//! Keyed records beside the events (interventions, and whatever the learning loop keeps next):
//! one record per key in a tree of its own, each change decided and written in one sled
//! transaction under the write gate, so a backup copies them as of the same instant as the
//! events.

use super::{Store, StoreError};
use sled::transaction::abort;

/// What a change to one keyed record does: the bytes to store under the key (`None` leaves it
/// as it is) and what to answer.
pub struct RecordChange<T> {
    /// New bytes for the key, or `None` to write nothing.
    pub write: Option<Vec<u8>>,
    /// The outcome to return.
    pub outcome: T,
}

/// One stored record: its key and its bytes.
pub type KeyedRecord = (Vec<u8>, Vec<u8>);

impl Store {
    /// Reads the record under `key` in `tree`, lets `decide` choose what to write, and writes it,
    /// all in one transaction. `decide` may run more than once (a conflicting transaction is
    /// retried), so it must not have side effects. Not yet durable.
    pub fn change_record<T>(
        &self,
        tree: &str,
        key: &[u8],
        decide: impl Fn(Option<&[u8]>) -> Result<RecordChange<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let _writing = self.write_gate()?;
        let tree = self.db.open_tree(tree)?;
        let outcome = tree.transaction(|tx| {
            let old = tx.get(key)?;
            let change = decide(old.as_deref()).or_else(abort)?;
            if let Some(bytes) = change.write {
                tx.insert(key, bytes)?;
            }
            Ok(change.outcome)
        })?;
        Ok(outcome)
    }

    /// Every record of `tree`, in key order.
    pub fn records(&self, tree: &str) -> Result<Vec<KeyedRecord>, StoreError> {
        let tree = self.db.open_tree(tree)?;
        tree.iter()
            .map(|item| {
                let (key, value) = item?;
                Ok((key.to_vec(), value.to_vec()))
            })
            .collect()
    }

    /// The record under `key` in `tree`.
    pub fn record(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.open_tree(tree)?.get(key)?.map(|v| v.to_vec()))
    }
}
