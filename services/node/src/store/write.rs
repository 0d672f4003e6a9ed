//! Writes of events: a submit stores new events with their idempotency entries and counters,
//! an amendment replaces an event and moves its counts, each in one sled transaction.

use super::counters::Deltas;
use super::keys::{event_id, format_id};
use super::{Store, StoreError};
use crate::record::StoredEventRecord;
use prost::Message;
use psonet_core::event::Event;
use sled::Transactional;
use sled::transaction::abort;
use std::time::SystemTime;

/// What happened to one submitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Newly stored under this id.
    Stored(String),
    /// Its idempotency key was already stored under this id; nothing was written.
    Duplicate(String),
}

/// What happened to an amendment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmendOutcome {
    /// No event has that idempotency key.
    NotFound,
    /// Applied (or already the content): the event's id and revision.
    Amended {
        /// Event id.
        event_id: String,
        /// Revision after the call.
        revision: u32,
        /// True when nothing changed.
        unchanged: bool,
    },
}

impl Store {
    /// Stores `events` in one transaction: each new key gets an event and its counters, each
    /// known key (also one repeated within `events`) is a duplicate. Not yet durable.
    pub fn submit(&self, events: &[Event]) -> Result<Vec<SubmitOutcome>, StoreError> {
        self.watched(|| {
            let _writing = self.write_gate()?;
            let ids: Vec<u64> = events
                .iter()
                .map(|_| self.db.generate_id())
                .collect::<Result<_, _>>()?;
            let received_at = SystemTime::now();
            let (outcomes, deltas) = (&self.events, &self.keys, &self.counters).transaction(
                |(events_tx, keys_tx, counters_tx)| {
                    let mut outcomes = Vec::with_capacity(events.len());
                    let mut deltas = Deltas::default();
                    for (event, id) in events.iter().zip(&ids) {
                        if let Some(existing) = keys_tx.get(event.idempotency_key.as_bytes())? {
                            outcomes.push(SubmitOutcome::Duplicate(event_id(&existing)));
                            continue;
                        }
                        let id_bytes = id.to_be_bytes();
                        let record = StoredEventRecord::new(event, received_at);
                        events_tx.insert(&id_bytes, record.encode_to_vec())?;
                        keys_tx.insert(event.idempotency_key.as_bytes(), &id_bytes)?;
                        deltas.add(event, 1);
                        outcomes.push(SubmitOutcome::Stored(format_id(*id)));
                    }
                    deltas.apply(counters_tx)?;
                    Ok((outcomes, deltas))
                },
            )?;
            self.rollup.apply(&deltas);
            Ok(outcomes)
        })
    }

    /// Replaces the stored event with the same idempotency key by `event`, keeping the old
    /// version in its history and moving its counts, in one transaction. Not yet durable.
    pub fn amend(&self, event: &Event, reason: &str) -> Result<AmendOutcome, StoreError> {
        self.watched(|| {
            let _writing = self.write_gate()?;
            let amended_at = SystemTime::now();
            let (outcome, deltas) = (&self.events, &self.keys, &self.counters).transaction(
                |(events_tx, keys_tx, counters_tx)| {
                    let Some(id) = keys_tx.get(event.idempotency_key.as_bytes())? else {
                        return Ok((AmendOutcome::NotFound, Deltas::default()));
                    };
                    let Some(bytes) = events_tx.get(&id)? else {
                        return abort(StoreError::Corrupt(format!(
                            "key {} has no event",
                            event.idempotency_key
                        )));
                    };
                    let corrupt =
                        |e| StoreError::Corrupt(format!("stored event {}: {e}", event_id(&id)));
                    let mut record = StoredEventRecord::decode_bytes(&bytes)
                        .map_err(corrupt)
                        .or_else(abort)?;
                    let old = record.current().map_err(corrupt).or_else(abort)?;
                    if old == *event {
                        let unchanged = AmendOutcome::Amended {
                            event_id: event_id(&id),
                            revision: record.revision,
                            unchanged: true,
                        };
                        return Ok((unchanged, Deltas::default()));
                    }
                    let mut deltas = Deltas::default();
                    deltas.add(&old, -1);
                    deltas.add(event, 1);
                    deltas.apply(counters_tx)?;
                    record.amend(event, amended_at, reason);
                    events_tx.insert(id.clone(), record.encode_to_vec())?;
                    let amended = AmendOutcome::Amended {
                        event_id: event_id(&id),
                        revision: record.revision,
                        unchanged: false,
                    };
                    Ok((amended, deltas))
                },
            )?;
            self.rollup.apply(&deltas);
            Ok(outcome)
        })
    }
}
