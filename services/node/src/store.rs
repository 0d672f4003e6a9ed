//! The node's store: events, idempotency keys, counters and exposure in one sled database.
//!
//! An event, its idempotency entry and its counter increments are written in one sled
//! transaction, and so is an amendment with the move of its counts, so a counter never
//! disagrees with the events even across a crash ([`Store::verify_counters`] checks it). Writes
//! are acknowledged only once [`Store::make_durable`] has flushed them (group commit).

use crate::group_commit::GroupCommit;
use prost::Message;
use psonet_core::cube::{CounterKey, Family};
use psonet_core::event::{Event, UnitType};
use psonet_core::month::{Month, MonthRange};
use psonet_core::pb;
use psonet_core::query::{AggregateQuery, CellKey, Grain, Period};
use psonet_core::wire::{event_from_wire, event_to_wire};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree, abort};
use sled::{Transactional, Tree};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, or another process holds the data directory).
    #[error("the store failed")]
    Sled(#[from] sled::Error),
    /// Stored bytes do not decode, or counters disagree with events.
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

impl StoreError {
    /// An I/O failure around the store (e.g. creating its directory).
    pub fn from_io(e: std::io::Error) -> Self {
        StoreError::Sled(sled::Error::Io(e))
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

/// One exposure record: a denominator count of a unit type in a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposure {
    /// Month.
    pub month: Month,
    /// Unit type.
    pub unit_type: UnitType,
    /// What is counted.
    pub denominator: pb::DenominatorType,
    /// The count.
    pub value: u64,
}

/// Exposure summed to a period, per unit type and denominator.
pub type ExposureCells = BTreeMap<(Period, UnitType, pb::DenominatorType), u64>;

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// The sled database of one facility.
pub struct Store {
    db: sled::Db,
    events: Tree,
    keys: Tree,
    counters: Tree,
    exposure: Tree,
    commits: GroupCommit,
    /// The rollup families of the counters mirrored in memory: the network benchmark's month ×
    /// category × harm query and its event totals read them without touching sled pages. Updated with exactly the
    /// deltas of each committed transaction. The detailed families stay on disk only: at a
    /// million events they hold about two million keys, which would cost more memory than a
    /// node's budget allows, and a range read of them costs milliseconds.
    rollup: RwLock<BTreeMap<[u8; CounterKey::LEN], u64>>,
    /// Every write holds it shared; a backup holds it exclusively, so the copy is one point in
    /// time (see [`Store::pause_writes`]).
    writes: RwLock<()>,
}

impl Store {
    /// Opens (or creates) the store in `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()?;
        Self::from_db(db)
    }

    /// The store in an open database (e.g. one just restored, which sled would not let this
    /// process open again until its background threads let go of it).
    pub fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        let counters = db.open_tree("counters")?;
        let rollup = read_rollups(&counters)?;
        crate::heap::release_freed();
        Ok(Self {
            events: db.open_tree("events")?,
            keys: db.open_tree("idempotency_keys")?,
            counters,
            exposure: db.open_tree("exposure")?,
            commits: GroupCommit::default(),
            rollup: RwLock::new(rollup),
            writes: RwLock::new(()),
            db,
        })
    }

    /// Stores `events` in one transaction: each new key gets an event and its counters, each
    /// known key (also one repeated within `events`) is a duplicate. Not yet durable.
    pub fn submit(&self, events: &[Event]) -> Result<Vec<SubmitOutcome>, StoreError> {
        let _writing = self.write_gate()?;
        let ids: Vec<u64> = events
            .iter()
            .map(|_| self.db.generate_id())
            .collect::<Result<_, _>>()?;
        let received_at = now_timestamp();
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
                    let record = pb::GetEventResponse {
                        event_id: format_id(*id),
                        event: Some(event_to_wire(event)),
                        received_at: Some(received_at),
                        revision: 0,
                        history: Vec::new(),
                    };
                    events_tx.insert(&id_bytes, record.encode_to_vec())?;
                    keys_tx.insert(event.idempotency_key.as_bytes(), &id_bytes)?;
                    deltas.add(event, 1);
                    outcomes.push(SubmitOutcome::Stored(format_id(*id)));
                }
                deltas.apply(counters_tx)?;
                Ok((outcomes, deltas))
            },
        )?;
        self.mirror(&deltas);
        Ok(outcomes)
    }

    /// Replaces the stored event with the same idempotency key by `event`, keeping the old
    /// version in its history and moving its counts, in one transaction. Not yet durable.
    pub fn amend(&self, event: &Event, reason: &str) -> Result<AmendOutcome, StoreError> {
        let _writing = self.write_gate()?;
        let amended_at = now_timestamp();
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
                let mut record = decode_record(&bytes).or_else(abort)?;
                let old = stored_event(&record).or_else(abort)?;
                if old == *event {
                    let unchanged = AmendOutcome::Amended {
                        event_id: record.event_id,
                        revision: record.revision,
                        unchanged: true,
                    };
                    return Ok((unchanged, Deltas::default()));
                }
                let mut deltas = Deltas::default();
                deltas.add(&old, -1);
                deltas.add(event, 1);
                deltas.apply(counters_tx)?;
                record.history.push(pb::EventRevision {
                    revision: record.revision,
                    event: record.event.take(),
                    amended_at: Some(amended_at),
                    reason: reason.to_string(),
                });
                record.revision += 1;
                record.event = Some(event_to_wire(event));
                events_tx.insert(id, record.encode_to_vec())?;
                let amended = AmendOutcome::Amended {
                    event_id: record.event_id,
                    revision: record.revision,
                    unchanged: false,
                };
                Ok((amended, deltas))
            },
        )?;
        self.mirror(&deltas);
        Ok(outcome)
    }

    /// Opens (or creates) another tree of this store, e.g. the audit trail or the privacy
    /// ledger; its writes become durable with [`Store::make_durable`].
    pub fn tree(&self, name: &str) -> Result<Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// Replaces the exposure of each record's (month, unit type, denominator), all or nothing.
    pub fn record_exposure(&self, records: &[Exposure]) -> Result<(), StoreError> {
        let _writing = self.write_gate()?;
        let mut batch = sled::Batch::default();
        for r in records {
            batch.insert(
                &exposure_key(r.month, r.unit_type, r.denominator),
                &r.value.to_be_bytes(),
            );
        }
        self.exposure.apply_batch(batch)?;
        Ok(())
    }

    /// Shared hold of the write gate, taken by every write for its whole duration.
    fn write_gate(&self) -> Result<RwLockReadGuard<'_, ()>, StoreError> {
        self.writes
            .read()
            .map_err(|_| StoreError::Corrupt("write gate poisoned".into()))
    }

    /// Waits for writes in progress to finish and holds every new one back until the guard is
    /// dropped, together with the database to read: what a backup copies while it holds the
    /// guard is one point in time.
    pub fn pause_writes(&self) -> Result<(RwLockWriteGuard<'_, ()>, &sled::Db), StoreError> {
        let guard = self
            .writes
            .write()
            .map_err(|_| StoreError::Corrupt("write gate poisoned".into()))?;
        Ok((guard, &self.db))
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

    /// The cells of `query`, read from one counter family (the rollups from memory, the others
    /// from sled), never from events.
    pub fn aggregate(&self, query: &AggregateQuery) -> Result<BTreeMap<CellKey, u64>, StoreError> {
        let mut cells = BTreeMap::new();
        let (start, end) = CounterKey::range(query.family(), query.range.from(), query.range.to());
        let mut add = |key: &[u8], count: u64| -> Result<(), StoreError> {
            let key = CounterKey::decode(key).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            query.accumulate(&key, count, &mut cells);
            Ok(())
        };
        if query.family().is_rollup() {
            let rollup = self.read_rollup()?;
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
    }

    fn read_rollup(
        &self,
    ) -> Result<std::sync::RwLockReadGuard<'_, BTreeMap<[u8; CounterKey::LEN], u64>>, StoreError>
    {
        self.rollup
            .read()
            .map_err(|_| StoreError::Corrupt("counter cache poisoned".into()))
    }

    /// Applies a committed transaction's rollup counter changes to the in-memory mirror.
    fn mirror(&self, deltas: &Deltas) {
        let Ok(mut cube) = self.rollup.write() else {
            return;
        };
        for (key, delta) in deltas.0.iter().filter(|(key, _)| is_rollup_key(key)) {
            let now = cube.get(key).copied().unwrap_or(0) as i64 + delta;
            if now > 0 {
                cube.insert(*key, now as u64);
            } else {
                cube.remove(key);
            }
        }
    }

    /// Exposure of `range` summed to `grain` periods, for the unit types in `units` (all when
    /// empty).
    pub fn exposure(
        &self,
        range: MonthRange,
        grain: Grain,
        units: &[u8],
    ) -> Result<ExposureCells, StoreError> {
        let start = range.from().index().to_be_bytes();
        let end = (range.to().index() + 1).to_be_bytes();
        let mut out = ExposureCells::new();
        for item in self.exposure.range(start..end) {
            let (key, value) = item?;
            let e = decode_exposure(&key, &value)?;
            if units.is_empty() || units.contains(&(e.unit_type as u8)) {
                *out.entry((Period::of(e.month, grain), e.unit_type, e.denominator))
                    .or_default() += e.value;
            }
        }
        Ok(out)
    }

    /// Every stored event, for recounts and local export. Reads events, so never used to
    /// answer the federation.
    pub fn all_events(&self) -> impl Iterator<Item = Result<pb::GetEventResponse, StoreError>> {
        self.events.iter().map(|item| decode_record(&item?.1))
    }

    /// Recounts every counter from the stored events and compares with the counters tree, and
    /// checks that events and idempotency keys index each other one to one; `Err` describes the
    /// first disagreement. Returns the number of events. A full scan: for tests and audits.
    pub fn verify_counters(&self) -> Result<u64, StoreError> {
        let mut expected: BTreeMap<[u8; CounterKey::LEN], u64> = BTreeMap::new();
        let mut events = 0;
        for record in self.all_events() {
            let record = record?;
            let event = stored_event(&record)?;
            let indexed = self
                .keys
                .get(event.idempotency_key.as_bytes())?
                .map(|id| event_id(&id));
            if indexed.as_deref() != Some(record.event_id.as_str()) {
                return Err(StoreError::Corrupt(format!(
                    "event {} is not indexed under its key {}",
                    record.event_id, event.idempotency_key
                )));
            }
            for key in CounterKey::for_event(&event) {
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
        let mirror = self.read_rollup()?;
        let stored_rollups: BTreeMap<_, _> = stored
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

/// Counter changes gathered over a transaction, applied once per key.
#[derive(Default, Clone)]
struct Deltas(HashMap<[u8; CounterKey::LEN], i64>);

impl Deltas {
    fn add(&mut self, event: &Event, delta: i64) {
        for key in CounterKey::for_event(event) {
            *self.0.entry(key.encode()).or_default() += delta;
        }
    }

    fn apply(&self, counters: &TransactionalTree) -> TxResult<()> {
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
fn read_counters(
    counters: &Tree,
    family: Option<Family>,
) -> Result<BTreeMap<[u8; CounterKey::LEN], u64>, StoreError> {
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

/// The rollup families' counters, which the store mirrors in memory.
fn read_rollups(counters: &Tree) -> Result<BTreeMap<[u8; CounterKey::LEN], u64>, StoreError> {
    let mut out = BTreeMap::new();
    for family in Family::ALL.into_iter().filter(|f| f.is_rollup()) {
        out.extend(read_counters(counters, Some(family))?);
    }
    Ok(out)
}

fn is_rollup_key(key: &[u8; CounterKey::LEN]) -> bool {
    Family::ALL
        .into_iter()
        .any(|f| f.is_rollup() && f.prefix() == key[0])
}

/// The domain event of a stored record (stored events were valid when written).
fn stored_event(record: &pb::GetEventResponse) -> Result<Event, StoreError> {
    let wire = record.event.clone().unwrap_or_default();
    event_from_wire(wire, "stored", Month::latest())
        .map_err(|v| StoreError::Corrupt(format!("stored event {}: {v}", record.event_id)))
}

fn exposure_key(month: Month, unit: UnitType, denominator: pb::DenominatorType) -> [u8; 6] {
    let m = month.index().to_be_bytes();
    [m[0], m[1], m[2], m[3], unit as u8, denominator as u8]
}

fn decode_exposure(key: &[u8], value: &[u8]) -> Result<Exposure, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("exposure key {key:02x?}"));
    let k: [u8; 6] = key.try_into().map_err(|_| corrupt())?;
    Ok(Exposure {
        month: Month::from_index(u32::from_be_bytes([k[0], k[1], k[2], k[3]]))
            .ok_or_else(corrupt)?,
        unit_type: UnitType::try_from(i32::from(k[4])).map_err(|_| corrupt())?,
        denominator: pb::DenominatorType::try_from(i32::from(k[5])).map_err(|_| corrupt())?,
        value: decode_u64(value),
    })
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
