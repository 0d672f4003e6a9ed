//! The store's format version, kept in its metadata tree, and the migration of an older store
//! in place when it is opened.
//!
//! | format | written by | an event is |
//! | --- | --- | --- |
//! | 0 | releases before the version was recorded (up to commit `2e75e54`) | the API's `psonet.v1.GetEventResponse`, its id in field 1 |
//! | 1 | this release | a [`StoredEventRecord`] (see `record.rs`); its id is its key alone |
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
        if done % PROGRESS_EVERY == 0 {
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
