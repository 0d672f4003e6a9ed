//! Events read back, as the node's own record ([`StoredEvent`]): by id, by idempotency key, or
//! all of them for a recount. Never used to answer the federation, which reads counters.

use super::keys::{event_id, format_id, parse_id};
use super::{Store, StoreError};
use crate::record::{StoredEvent, StoredEventRecord};

impl Store {
    /// Reads one stored event by node id.
    pub fn event_by_id(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        self.watched(|| {
            let Some(id) = parse_id(id) else {
                return Ok(None);
            };
            self.events
                .get(id.to_be_bytes())?
                .map(|bytes| read_event(id, &bytes))
                .transpose()
        })
    }

    /// Reads one stored event by idempotency key.
    pub fn event_by_key(&self, key: &str) -> Result<Option<StoredEvent>, StoreError> {
        self.watched(|| match self.keys.get(key.as_bytes())? {
            Some(id) => self.event_by_id(&event_id(&id)),
            None => Ok(None),
        })
    }

    /// Every stored event, for recounts and local export. Reads events, so never used to
    /// answer the federation.
    pub fn all_events(&self) -> impl Iterator<Item = Result<StoredEvent, StoreError>> {
        self.events.iter().map(|item| {
            let (key, bytes) = item?;
            read_event(super::keys::decode_u64(&key), &bytes)
        })
    }
}

/// The record stored under `id`, in domain types.
fn read_event(id: u64, bytes: &[u8]) -> Result<StoredEvent, StoreError> {
    let event_id = format_id(id);
    StoredEventRecord::decode_bytes(bytes)
        .and_then(|record| record.read(event_id.clone()))
        .map_err(|e| StoreError::Corrupt(format!("stored event {event_id}: {e}")))
}
