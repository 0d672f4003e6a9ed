//! The node's own record of a stored event: what the events tree holds under each id.
//!
//! A node keeps a facility's reports for ten years or more, while the API it serves will
//! change. So the store never holds API messages: it holds `StoredEventRecord`, a protobuf
//! message defined here, and reads it back into domain types without the API's validation (an
//! event was checked when it arrived; a stricter rule added since must not make it unreadable).
//! The API's `GetEventResponse` is built from a [`StoredEvent`] only at the edge, in
//! `reporting.rs`.
//!
//! Protobuf (prost, with the messages below written by hand rather than generated) because it is
//! compact — varints, absent fields cost nothing — and because it evolves safely: a field added
//! later is skipped by older readers and defaults in newer ones, so most changes need no
//! migration. Field numbers here are the node's and are never reused. Fields 1–28 of
//! `EventRecord` and 2–5 of `StoredEventRecord` keep the numbers the first store format
//! wrote (the API's at the time), which is what lets `store/format.rs` read a store of that
//! format; enumerations are kept as their numbers, so the record never depends on the API's
//! names. The store's format version, in its metadata tree, says which layout a store holds.

mod event_record;

pub(crate) use event_record::EventRecord;
use prost::Message;
use psonet_core::event::Event;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a stored record could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not a record.
    #[error("undecodable record: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A field every record has is missing.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// An enumeration holds a number the domain does not know.
    #[error("{field} holds {value}, not a known value")]
    Unknown {
        /// The field.
        field: &'static str,
        /// Its stored number.
        value: i32,
    },
    /// The discovery month is not `YYYY-MM`.
    #[error("discovery_month {0:?} is not a month")]
    Month(String),
    /// A time outside what the node can represent.
    #[error("{0} is not a time")]
    Time(&'static str),
}

/// A stored event as the node reads it back: the current version, when it arrived, and the
/// versions it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The node's id of the event (16 hex digits).
    pub event_id: String,
    /// The current version.
    pub event: Event,
    /// When the node first stored it.
    pub received_at: SystemTime,
    /// 0 for the original, +1 per amendment.
    pub revision: u32,
    /// The versions amendments replaced, oldest first.
    pub history: Vec<EventRevision>,
}

/// A version of an event that an amendment replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRevision {
    /// The revision this version was.
    pub revision: u32,
    /// The event as it was.
    pub event: Event,
    /// When the amendment replaced it.
    pub amended_at: SystemTime,
    /// Why, as the facility said.
    pub reason: String,
}

/// The encoded form of a stored event (format 1). Field 1 is not used: format 0 kept the
/// event id there, which is the record's key.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct StoredEventRecord {
    /// The current version.
    #[prost(message, optional, tag = "2")]
    pub event: Option<EventRecord>,
    /// When the node first stored it.
    #[prost(message, optional, tag = "3")]
    pub received_at: Option<TimeRecord>,
    /// 0 for the original, +1 per amendment.
    #[prost(uint32, tag = "4")]
    pub revision: u32,
    /// The versions amendments replaced, oldest first.
    #[prost(message, repeated, tag = "5")]
    pub history: Vec<RevisionRecord>,
}

/// The encoded form of a replaced version.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct RevisionRecord {
    /// The revision this version was.
    #[prost(uint32, tag = "1")]
    pub revision: u32,
    /// The event as it was.
    #[prost(message, optional, tag = "2")]
    pub event: Option<EventRecord>,
    /// When the amendment replaced it.
    #[prost(message, optional, tag = "3")]
    pub amended_at: Option<TimeRecord>,
    /// Why.
    #[prost(string, tag = "4")]
    pub reason: String,
}

/// A time as seconds and nanoseconds since the Unix epoch (the layout of
/// `google.protobuf.Timestamp`, which format 0 wrote).
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub(crate) struct TimeRecord {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl StoredEventRecord {
    /// The record of a newly stored event.
    pub fn new(event: &Event, received_at: SystemTime) -> Self {
        Self {
            event: Some(EventRecord::from(event)),
            received_at: Some(TimeRecord::from(received_at)),
            revision: 0,
            history: Vec::new(),
        }
    }

    /// Decodes stored bytes.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        Ok(Self::decode(bytes)?)
    }

    /// The current version as a domain event.
    pub fn current(&self) -> Result<Event, RecordError> {
        self.event
            .as_ref()
            .ok_or(RecordError::Missing("event"))?
            .to_event()
    }

    /// Makes `event` the current version, keeping the replaced one in the history.
    pub fn amend(&mut self, event: &Event, amended_at: SystemTime, reason: &str) {
        self.history.push(RevisionRecord {
            revision: self.revision,
            event: self.event.take(),
            amended_at: Some(TimeRecord::from(amended_at)),
            reason: reason.to_string(),
        });
        self.revision += 1;
        self.event = Some(EventRecord::from(event));
    }

    /// The whole record in domain types, under the id it is stored at.
    pub fn read(&self, event_id: String) -> Result<StoredEvent, RecordError> {
        let history = self
            .history
            .iter()
            .map(|r| {
                Ok(EventRevision {
                    revision: r.revision,
                    event: r
                        .event
                        .as_ref()
                        .ok_or(RecordError::Missing("history.event"))?
                        .to_event()?,
                    amended_at: r
                        .amended_at
                        .ok_or(RecordError::Missing("history.amended_at"))?
                        .to_time("history.amended_at")?,
                    reason: r.reason.clone(),
                })
            })
            .collect::<Result<_, RecordError>>()?;
        Ok(StoredEvent {
            event_id,
            event: self.current()?,
            received_at: self
                .received_at
                .ok_or(RecordError::Missing("received_at"))?
                .to_time("received_at")?,
            revision: self.revision,
            history,
        })
    }
}

impl From<SystemTime> for TimeRecord {
    fn from(t: SystemTime) -> Self {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            seconds: since.as_secs() as i64,
            nanos: since.subsec_nanos() as i32,
        }
    }
}

impl TimeRecord {
    fn to_time(self, field: &'static str) -> Result<SystemTime, RecordError> {
        let seconds = u64::try_from(self.seconds).map_err(|_| RecordError::Time(field))?;
        let nanos = u32::try_from(self.nanos)
            .ok()
            .filter(|n| *n < 1_000_000_000)
            .ok_or(RecordError::Time(field))?;
        UNIX_EPOCH
            .checked_add(Duration::new(seconds, nanos))
            .ok_or(RecordError::Time(field))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use psonet_core::event::{
        CommonFormatsVersion, EventCategory, EventModules, EventType, HarmLevel, NccMerpCategory,
        UnitType,
    };
    use psonet_core::pb;

    /// An incident with two categories and two modules.
    pub fn event() -> Event {
        Event {
            idempotency_key: "IR-1".into(),
            cf_version: CommonFormatsVersion::CferHV20,
            event_type: EventType::Incident,
            categories: vec![EventCategory::Fall, EventCategory::Medication],
            harm: Some(HarmLevel::Mild),
            discovery_month: "2026-03".parse().unwrap(),
            unit_type: UnitType::MedSurg,
            narrative: "Slipped after a sedative dose.".into(),
            age_band: Default::default(),
            sex: Default::default(),
            harm_duration: Default::default(),
            preventability: Default::default(),
            contributing_factors: Vec::new(),
            reporter_type: Default::default(),
            handoff_involved: Default::default(),
            rescue_attempted: Default::default(),
            near_miss_reason: Default::default(),
            ncc_merp: NccMerpCategory::E,
            modules: EventModules {
                medication: Some(pb::MedicationDetail {
                    ncc_merp: NccMerpCategory::E as i32,
                    ..Default::default()
                }),
                perinatal: Some(pb::PerinatalDetail {
                    affected: 1,
                    gestational_age_weeks: 38,
                }),
                ..Default::default()
            },
        }
    }

    #[test]
    fn a_record_reads_back_as_written_with_its_history() {
        let t0 = UNIX_EPOCH + Duration::new(1_780_000_000, 123_456_789);
        let t1 = t0 + Duration::from_secs(3600);
        let mut record = StoredEventRecord::new(&event(), t0);
        let reassessed = Event {
            harm: Some(HarmLevel::Moderate),
            ..event()
        };
        record.amend(&reassessed, t1, "reassessed");
        let bytes = record.encode_to_vec();
        let read = StoredEventRecord::decode_bytes(&bytes)
            .unwrap()
            .read("0000000000000001".into())
            .unwrap();
        assert_eq!(read.event, reassessed);
        assert_eq!((read.received_at, read.revision), (t0, 1));
        assert_eq!(read.history.len(), 1);
        let old = &read.history[0];
        assert_eq!((old.revision, old.amended_at), (0, t1));
        assert_eq!((&old.event, old.reason.as_str()), (&event(), "reassessed"));
    }
}
