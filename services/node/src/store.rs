//! The node's store: events, idempotency keys, counters and exposure in one sled database.
//!
//! An event, its idempotency entry and its counter increments are written in one sled
//! transaction, so a counter never disagrees with the events even across a crash. Writes are
//! acknowledged only once [`Store::make_durable`] has flushed them (group commit).

use crate::group_commit::GroupCommit;
use prost::Message;
use psonet_core::cube::{CounterKey, MonthCategoryHarmCube};
use psonet_core::event::{Event, UnitType};
use psonet_core::month::{Month, MonthRange};
use psonet_core::pb;
use psonet_core::wire::event_to_wire;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};
use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, or another process holds the data directory).
    #[error("the store failed")]
    Sled(#[from] sled::Error),
    /// Stored bytes do not decode.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

/// What happened to one submitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Newly stored under this id.
    Stored(String),
    /// Its idempotency key was already stored under this id; nothing was written.
    Duplicate(String),
}

/// One exposure record: patient days of a unit type in a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposure {
    /// Month.
    pub month: Month,
    /// Unit type.
    pub unit_type: UnitType,
    /// Patient days.
    pub patient_days: u64,
}

/// The sled database of one facility.
pub struct Store {
    db: sled::Db,
    events: Tree,
    keys: Tree,
    counters: Tree,
    exposure: Tree,
    commits: GroupCommit,
}

impl Store {
    /// Opens (or creates) the store in `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()?;
        Ok(Self {
            events: db.open_tree("events")?,
            keys: db.open_tree("idempotency_keys")?,
            counters: db.open_tree("counters")?,
            exposure: db.open_tree("exposure")?,
            commits: GroupCommit::default(),
            db,
        })
    }

    /// Stores `events` in one transaction: each new key gets an event and its counters, each
    /// known key (also one repeated within `events`) is a duplicate. Not yet durable.
    pub fn submit(&self, events: &[Event]) -> Result<Vec<SubmitOutcome>, StoreError> {
        let ids: Vec<u64> = events
            .iter()
            .map(|_| self.db.generate_id())
            .collect::<Result<_, _>>()?;
        let received_at = now_timestamp();
        let outcomes = (&self.events, &self.keys, &self.counters).transaction(
            |(events_tx, keys_tx, counters_tx)| {
                let mut outcomes = Vec::with_capacity(events.len());
                let mut deltas: HashMap<[u8; CounterKey::LEN], u64> = HashMap::new();
                for (event, id) in events.iter().zip(&ids) {
                    if let Some(existing) = keys_tx.get(event.idempotency_key.as_bytes())? {
                        outcomes.push(SubmitOutcome::Duplicate(event_id(&existing)));
                        continue;
                    }
                    let id_bytes = id.to_be_bytes();
                    let record = stored_record(event, *id, received_at);
                    events_tx.insert(&id_bytes, record)?;
                    keys_tx.insert(event.idempotency_key.as_bytes(), &id_bytes)?;
                    for key in CounterKey::for_event(event) {
                        *deltas.entry(key.encode()).or_default() += 1;
                    }
                    outcomes.push(SubmitOutcome::Stored(format_id(*id)));
                }
                for (key, delta) in deltas {
                    let now = counters_tx.get(key)?.map_or(0, |v| decode_u64(&v));
                    counters_tx.insert(&key, &(now + delta).to_be_bytes())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(outcomes)
            },
        )?;
        Ok(outcomes)
    }

    /// Replaces the exposure of each record's (month, unit type), all or nothing.
    pub fn record_exposure(&self, records: &[Exposure]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for r in records {
            batch.insert(
                &exposure_key(r.month, r.unit_type),
                &r.patient_days.to_be_bytes(),
            );
        }
        self.exposure.apply_batch(batch)?;
        Ok(())
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
    }

    /// Reads one stored event by node id.
    pub fn event_by_id(&self, id: &str) -> Result<Option<pb::GetEventResponse>, StoreError> {
        let Some(id) = parse_id(id) else {
            return Ok(None);
        };
        self.events
            .get(id.to_be_bytes())?
            .map(|bytes| decode_record(&bytes))
            .transpose()
    }

    /// Reads one stored event by idempotency key.
    pub fn event_by_key(&self, key: &str) -> Result<Option<pb::GetEventResponse>, StoreError> {
        match self.keys.get(key.as_bytes())? {
            Some(id) => self.event_by_id(&event_id(&id)),
            None => Ok(None),
        }
    }

    /// Event counts of `range`, projected onto month x category x harm, from counters only.
    pub fn month_category_harm(
        &self,
        range: MonthRange,
    ) -> Result<MonthCategoryHarmCube, StoreError> {
        let mut cube = MonthCategoryHarmCube::default();
        let (start, end) = month_bounds(range);
        for item in self.counters.range(start..end) {
            let (key, value) = item?;
            let key = CounterKey::decode(&key).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            cube.add(&key, decode_u64(&value));
        }
        Ok(cube)
    }

    /// Exposure records of `range`, in month then unit-type order.
    pub fn exposure(&self, range: MonthRange) -> Result<Vec<Exposure>, StoreError> {
        let (start, end) = month_bounds(range);
        self.exposure
            .range(start..end)
            .map(|item| {
                let (key, value) = item?;
                decode_exposure(&key, &value)
            })
            .collect()
    }

    /// Every stored event, for recounts and local export. Reads events, so never used to
    /// answer the federation.
    pub fn all_events(&self) -> impl Iterator<Item = Result<pb::GetEventResponse, StoreError>> {
        self.events.iter().map(|item| decode_record(&item?.1))
    }
}

fn month_bounds(range: MonthRange) -> ([u8; 4], [u8; 4]) {
    (
        CounterKey::month_start(range.from()),
        (range.to().index() + 1).to_be_bytes(),
    )
}

fn exposure_key(month: Month, unit: UnitType) -> [u8; 5] {
    let m = month.index().to_be_bytes();
    [m[0], m[1], m[2], m[3], unit as u8]
}

fn decode_exposure(key: &[u8], value: &[u8]) -> Result<Exposure, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("exposure key {key:02x?}"));
    let k: [u8; 5] = key.try_into().map_err(|_| corrupt())?;
    Ok(Exposure {
        month: Month::from_index(u32::from_be_bytes([k[0], k[1], k[2], k[3]]))
            .ok_or_else(corrupt)?,
        unit_type: UnitType::try_from(i32::from(k[4])).map_err(|_| corrupt())?,
        patient_days: decode_u64(value),
    })
}

fn stored_record(event: &Event, id: u64, received_at: prost_types::Timestamp) -> Vec<u8> {
    pb::GetEventResponse {
        event_id: format_id(id),
        event: Some(event_to_wire(event)),
        received_at: Some(received_at),
    }
    .encode_to_vec()
}

fn decode_record(bytes: &[u8]) -> Result<pb::GetEventResponse, StoreError> {
    pb::GetEventResponse::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// Node event ids are the sled-generated number in 16 hex digits.
fn format_id(id: u64) -> String {
    format!("{id:016x}")
}

fn parse_id(id: &str) -> Option<u64> {
    (id.len() == 16)
        .then(|| u64::from_str_radix(id, 16).ok())
        .flatten()
}

fn event_id(id_bytes: &[u8]) -> String {
    format_id(decode_u64(id_bytes))
}

fn now_timestamp() -> prost_types::Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

impl StoreError {
    /// An I/O failure around the store (e.g. creating its directory).
    pub fn from_io(e: std::io::Error) -> Self {
        StoreError::Sled(sled::Error::Io(e))
    }
}
