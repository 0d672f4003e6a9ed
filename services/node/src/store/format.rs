//! The store's format version, kept in its metadata tree, and the migration of an older store
//! in place when it is opened.
//!
//! | format | written by | an event is |
//! | --- | --- | --- |
//! | 0 | releases before the version was recorded (up to commit `2e75e54`) | the API's `psonet.v1.GetEventResponse`, its id in field 1 |
//! | 1 | this release | a `StoredEventRecord` (see `record.rs`); its id is its key alone |
//!
//! A store without a version that holds events is in format 0. Opening it rewrites every event
//! in batches (logging progress on a large store), reading each back on the way so that a
//! record this release cannot read stops the upgrade with its id rather than failing later,
//! then flushes, and only then records the new version. A migration interrupted by a crash runs
//! again at the next start; events it had already rewritten are recognised and kept. Counters,
//! idempotency keys, exposure, the audit trail and the privacy ledger keep their layout.
//!
//! A store whose version is newer than this release's is refused, never rewritten.

use super::StoreError;
use super::keys::{decode_u64, format_id};
use crate::record::StoredEventRecord;
use prost::Message;
use sled::Tree;
use std::time::Instant;

/// The tree of the store's own metadata (its format version).
pub const META_TREE: &str = "meta";
/// The format this release writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The metadata key of the format version (a big-endian `u32`).
const VERSION_KEY: &[u8] = b"format_version";
/// Events rewritten per sled batch.
const BATCH: usize = 10_000;
/// Events between two progress lines.
const PROGRESS_EVERY: u64 = 100_000;

/// The one field of a format-0 record that format 1 dropped: fields 2–5 are format 1's.
#[derive(Clone, PartialEq, Message)]
struct Format0EventId {
    #[prost(string, tag = "1")]
    event_id: String,
}

/// The recorded format version; `None` in a store of format 0 or a new one.
pub(super) fn read_version(db: &sled::Db) -> Result<Option<u32>, StoreError> {
    let Some(bytes) = db.open_tree(META_TREE)?.get(VERSION_KEY)? else {
        return Ok(None);
    };
    let bytes: [u8; 4] = bytes
        .as_ref()
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("format version {:02x?}", bytes.as_ref())))?;
    Ok(Some(u32::from_be_bytes(bytes)))
}

/// Brings the store in `db` (whose events tree is `events`) to [`FORMAT_VERSION`].
pub(super) fn upgrade(db: &sled::Db, events: &Tree) -> Result<(), StoreError> {
    let version = match read_version(db)? {
        Some(version) => version,
        None if events.is_empty() => return write_version(db),
        None => 0,
    };
    match version {
        FORMAT_VERSION => Ok(()),
        0 => {
            migrate_from_0(events)?;
            db.flush()?;
            write_version(db)?;
            db.flush()?;
            Ok(())
        }
        found => Err(StoreError::NewerFormat {
            found,
            supported: FORMAT_VERSION,
        }),
    }
}

fn write_version(db: &sled::Db) -> Result<(), StoreError> {
    db.open_tree(META_TREE)?
        .insert(VERSION_KEY, &FORMAT_VERSION.to_be_bytes())?;
    Ok(())
}

/// Rewrites every format-0 event as a format-1 record; returns how many events there are.
fn migrate_from_0(events: &Tree) -> Result<u64, StoreError> {
    let started = Instant::now();
    let total = events.len() as u64;
    tracing::info!(
        events = total,
        from = 0,
        to = FORMAT_VERSION,
        "upgrading the store: every event is rewritten as the node's own record"
    );
    let mut batch = sled::Batch::default();
    let mut batched = 0;
    let mut done = 0u64;
    for item in events.iter() {
        let (key, bytes) = item?;
        if let Some(rewritten) = rewrite_from_0(decode_u64(&key), &bytes)? {
            batch.insert(key, rewritten);
            batched += 1;
        }
        if batched == BATCH {
            events.apply_batch(std::mem::take(&mut batch))?;
            batched = 0;
        }
        done += 1;
        if done.is_multiple_of(PROGRESS_EVERY) {
            tracing::info!(
                done,
                total,
                percent = done * 100 / total.max(1),
                "upgrading the store"
            );
        }
    }
    events.apply_batch(batch)?;
    tracing::info!(
        events = done,
        seconds = started.elapsed().as_secs_f64(),
        format = FORMAT_VERSION,
        "store upgraded"
    );
    Ok(done)
}

/// The format-1 bytes of the format-0 event stored under `id`, or `None` when an earlier,
/// interrupted migration already rewrote it. The record must read back either way.
fn rewrite_from_0(id: u64, bytes: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let event_id = format_id(id);
    let corrupt = |why: String| StoreError::Corrupt(format!("stored event {event_id}: {why}"));
    let stored_id = Format0EventId::decode(bytes)
        .map_err(|e| corrupt(e.to_string()))?
        .event_id;
    let record = StoredEventRecord::decode_bytes(bytes).map_err(|e| corrupt(e.to_string()))?;
    record
        .read(event_id.clone())
        .map_err(|e| corrupt(e.to_string()))?;
    if stored_id.is_empty() {
        Ok(None)
    } else if stored_id == event_id {
        Ok(Some(record.encode_to_vec()))
    } else {
        Err(corrupt(format!("it names itself {stored_id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use psonet_core::pb;
    use psonet_core::wire::{event_from_wire, event_to_wire};
    use std::time::SystemTime;

    fn event(key: &str) -> psonet_core::event::Event {
        let wire = pb::Event {
            idempotency_key: key.into(),
            event_type: pb::EventType::Incident as i32,
            categories: vec![pb::EventCategory::Fall as i32],
            harm: pb::HarmLevel::Mild as i32,
            discovery_month: "2026-01".into(),
            unit_type: pb::UnitType::Medical as i32,
            ..Default::default()
        };
        event_from_wire(wire, "event", "2026-11".parse().unwrap()).unwrap()
    }

    /// What the first release stored for an event: the API's answer.
    fn format_0(id: u64, named: u64, key: &str) -> Vec<u8> {
        pb::GetEventResponse {
            event_id: format_id(named),
            event: Some(event_to_wire(&event(key))),
            received_at: Some(prost_types::Timestamp {
                seconds: 1_780_000_000 + id as i64,
                nanos: 5,
            }),
            revision: 0,
            history: Vec::new(),
        }
        .encode_to_vec()
    }

    fn store_of_format_0(records: &[(u64, Vec<u8>)]) -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let events = db.open_tree("events").unwrap();
        for (id, bytes) in records {
            events.insert(id.to_be_bytes(), bytes.as_slice()).unwrap();
        }
        (dir, db)
    }

    #[test]
    fn an_interrupted_migration_finishes_at_the_next_open() {
        let rewritten = StoredEventRecord::new(&event("k2"), SystemTime::now()).encode_to_vec();
        let (dir, db) = store_of_format_0(&[(1, format_0(1, 1, "k1")), (2, rewritten)]);
        let store = Store::from_db(db, dir.path()).unwrap();
        assert_eq!(store.format_version().unwrap(), FORMAT_VERSION);
        let first = store.event_by_id(&format_id(1)).unwrap().unwrap();
        assert_eq!(first.event, event("k1"));
        let second = store.event_by_id(&format_id(2)).unwrap().unwrap();
        assert_eq!(second.event, event("k2"));
    }

    #[test]
    fn an_event_that_names_another_id_stops_the_upgrade() {
        let (dir, db) = store_of_format_0(&[(1, format_0(1, 7, "k1"))]);
        let e = Store::from_db(db.clone(), dir.path()).err().unwrap();
        assert_eq!(
            e.to_string(),
            "store is corrupt: stored event 0000000000000001: it names itself 0000000000000007"
        );
        assert_eq!(read_version(&db).unwrap(), None, "the version did not move");
    }

    #[test]
    fn a_store_of_a_newer_format_is_refused_untouched() {
        let (dir, db) = store_of_format_0(&[(1, format_0(1, 1, "k1"))]);
        db.open_tree(META_TREE)
            .unwrap()
            .insert(VERSION_KEY, &(FORMAT_VERSION + 1).to_be_bytes())
            .unwrap();
        let e = Store::from_db(db.clone(), dir.path()).err().unwrap();
        assert!(matches!(e, StoreError::NewerFormat { found, supported }
            if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION));
        let untouched = db
            .open_tree("events")
            .unwrap()
            .get(1u64.to_be_bytes())
            .unwrap();
        assert_eq!(untouched.unwrap().as_ref(), format_0(1, 1, "k1"));
    }

    #[test]
    fn a_new_store_starts_at_the_current_format() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        assert_eq!(store.format_version().unwrap(), FORMAT_VERSION);
    }
}
