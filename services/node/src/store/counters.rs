//! The counters: what each write adds to them, in its own transaction, and how an aggregate
//! reads them (the rollup families from memory, the others from sled), never from events.

use super::keys::decode_u64;
use super::{Store, StoreError};
use psonet_core::cube::{CounterKey, Family};
use psonet_core::event::Event;
use psonet_core::query::{AggregateQuery, CellKey};
use sled::Tree;
use sled::transaction::{ConflictableTransactionError, TransactionalTree, abort};
use std::collections::{BTreeMap, HashMap};

/// Counters by their encoded key.
pub(super) type CounterMap = BTreeMap<[u8; CounterKey::LEN], u64>;

/// Counter changes gathered over a transaction, applied once per key.
#[derive(Default, Clone)]
pub(super) struct Deltas(HashMap<[u8; CounterKey::LEN], i64>);

impl Deltas {
    /// Adds `delta` to every counter of `event`.
    pub fn add(&mut self, event: &Event, delta: i64) {
        for key in CounterKey::for_event(event) {
            *self.0.entry(key.encode()).or_default() += delta;
        }
    }

    /// Each changed counter and its change.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8; CounterKey::LEN], &i64)> {
        self.0.iter()
    }

    /// Applies the changes to the counters tree within a transaction; a counter that would go
    /// below zero aborts it.
    pub fn apply(
        &self,
        counters: &TransactionalTree,
    ) -> Result<(), ConflictableTransactionError<StoreError>> {
        for (key, delta) in self.0.iter().filter(|(_, d)| **d != 0) {
            let now = counters.get(key)?.map_or(0, |v| decode_u64(&v)) as i64;
            match now + delta {
                0 => {
                    counters.remove(key.as_slice())?;
                }
                n if n > 0 => {
                    counters.insert(key.as_slice(), &(n as u64).to_be_bytes())?;
                }
                n => {
                    return abort(StoreError::Corrupt(format!(
                        "counter {key:02x?} would be {n}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The counters of `family` (every family when `None`), keyed by their encoded key.
pub(super) fn read_counters(
    counters: &Tree,
    family: Option<Family>,
) -> Result<CounterMap, StoreError> {
    let prefix = family.map(|f| vec![f.prefix()]).unwrap_or_default();
    let mut out = BTreeMap::new();
    for item in counters.scan_prefix(prefix) {
        let (key, value) = item?;
        let key: [u8; CounterKey::LEN] = key
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("counter key {key:02x?}")))?;
        out.insert(key, decode_u64(&value));
    }
    Ok(out)
}

impl Store {
    /// The cells of `query`, read from one counter family (the rollups from memory, the others
    /// from sled), never from events.
    pub fn aggregate(&self, query: &AggregateQuery) -> Result<BTreeMap<CellKey, u64>, StoreError> {
        self.watched(|| {
            let mut cells = BTreeMap::new();
            let (start, end) =
                CounterKey::range(query.family(), query.range.from(), query.range.to());
            let mut add = |key: &[u8], count: u64| -> Result<(), StoreError> {
                let key =
                    CounterKey::decode(key).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                query.accumulate(&key, count, &mut cells);
                Ok(())
            };
            if query.family().is_rollup() {
                let rollup = self.rollup.read()?;
                let mut lower = [0u8; CounterKey::LEN];
                lower[..start.len()].copy_from_slice(&start);
                let mut upper = [0u8; CounterKey::LEN];
                upper[..end.len()].copy_from_slice(&end);
                for (key, count) in rollup.range(lower..upper) {
                    add(key, *count)?;
                }
            } else {
                for item in self.counters.range(start..end) {
                    let (key, value) = item?;
                    add(&key, decode_u64(&value))?;
                }
            }
            Ok(cells)
        })
    }
}
