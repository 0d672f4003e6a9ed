//! The full recount: every counter recomputed from the stored events and compared with the
//! counters tree and its in-memory mirror, and events and idempotency keys checked to index
//! each other one to one. A full scan: for tests, audits and restores.

use super::counters::CounterMap;
use super::counters::read_counters;
use super::keys::event_id;
use super::rollup::is_rollup_key;
use super::{Store, StoreError};
use psonet_core::cube::CounterKey;

impl Store {
    /// Recounts every counter from the stored events and compares with the counters tree, and
    /// checks that events and idempotency keys index each other one to one; `Err` describes the
    /// first disagreement. Returns the number of events.
    pub fn verify_counters(&self) -> Result<u64, StoreError> {
        let mut expected = CounterMap::new();
        let mut events = 0;
        for stored in self.all_events() {
            let stored = stored?;
            let key = &stored.event.idempotency_key;
            let indexed = self.keys.get(key.as_bytes())?.map(|id| event_id(&id));
            if indexed.as_deref() != Some(stored.event_id.as_str()) {
                return Err(StoreError::Corrupt(format!(
                    "event {} is not indexed under its key {key}",
                    stored.event_id
                )));
            }
            for key in CounterKey::for_event(&stored.event) {
                *expected.entry(key.encode()).or_default() += 1;
            }
            events += 1;
        }
        if self.keys.len() as u64 != events {
            return Err(StoreError::Corrupt(format!(
                "{} idempotency keys for {events} events",
                self.keys.len()
            )));
        }
        let stored = read_counters(&self.counters, None)?;
        let mirror = self.rollup.read()?;
        let stored_rollups: CounterMap = stored
            .iter()
            .filter(|(key, _)| is_rollup_key(key))
            .map(|(key, count)| (*key, *count))
            .collect();
        if *mirror != stored_rollups {
            return Err(StoreError::Corrupt(
                "the in-memory counters differ from the stored ones".into(),
            ));
        }
        drop(mirror);
        if let Some((key, n)) = expected.iter().find(|(k, n)| stored.get(*k) != Some(n)) {
            return Err(StoreError::Corrupt(format!(
                "counter {:?} holds {:?}, events say {n}",
                CounterKey::decode(key),
                stored.get(key)
            )));
        }
        if let Some(key) = stored.keys().find(|k| !expected.contains_key(*k)) {
            return Err(StoreError::Corrupt(format!(
                "counter {:?} has no events",
                CounterKey::decode(key)
            )));
        }
        Ok(events)
    }
}
