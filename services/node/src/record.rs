//! The node's own record of a stored event: what the events tree holds under each id.
//!
//! A node keeps a facility's reports for ten years or more, while the API it serves will
//! change. So the store never holds API messages: it holds [`StoredEventRecord`], a protobuf
//! message defined here, and reads it back into domain types without the API's validation (an
//! event was checked when it arrived; a stricter rule added since must not make it unreadable).
//! The API's `GetEventResponse` is built from a [`StoredEvent`] only at the edge, in
//! `reporting.rs`.
//!
//! Protobuf (prost, with the messages below written by hand rather than generated) because it is
//! compact — varints, absent fields cost nothing — and because it evolves safely: a field added
//! later is skipped by older readers and defaults in newer ones, so most changes need no
//! migration. Field numbers here are the node's and are never reused. Fields 1–28 of
//! [`EventRecord`] and 2–5 of [`StoredEventRecord`] keep the numbers the first store format
//! wrote (the API's at the time), which is what lets `store/format.rs` read a store of that
//! format; enumerations are kept as their numbers, so the record never depends on the API's
//! names. The store's format version, in its metadata tree, says which layout a store holds.

use prost::Message;
use psonet_core::event::{Event, EventModules};
use psonet_core::month::Month;
use psonet_core::pb;
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

/// The encoded form of one version of an event. Enumerations are their numbers; `harm` is 0
/// when the event has none; the NCC MERP category is not kept apart, it is the medication
/// module's.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct EventRecord {
    #[prost(string, tag = "1")]
    pub idempotency_key: String,
    #[prost(int32, tag = "2")]
    pub cf_version: i32,
    #[prost(int32, tag = "3")]
    pub event_type: i32,
    #[prost(int32, repeated, tag = "4")]
    pub categories: Vec<i32>,
    #[prost(int32, tag = "5")]
    pub harm: i32,
    /// `YYYY-MM`.
    #[prost(string, tag = "6")]
    pub discovery_month: String,
    #[prost(int32, tag = "7")]
    pub unit_type: i32,
    #[prost(string, tag = "8")]
    pub narrative: String,
    #[prost(int32, tag = "9")]
    pub age_band: i32,
    #[prost(int32, tag = "10")]
    pub sex: i32,
    #[prost(int32, tag = "11")]
    pub harm_duration: i32,
    #[prost(int32, tag = "12")]
    pub preventability: i32,
    #[prost(int32, repeated, tag = "13")]
    pub contributing_factors: Vec<i32>,
    #[prost(int32, tag = "14")]
    pub reporter_type: i32,
    #[prost(int32, tag = "15")]
    pub handoff_involved: i32,
    #[prost(int32, tag = "16")]
    pub rescue_attempted: i32,
    #[prost(int32, tag = "17")]
    pub near_miss_reason: i32,
    #[prost(message, optional, tag = "20")]
    pub fall: Option<FallRecord>,
    #[prost(message, optional, tag = "21")]
    pub medication: Option<MedicationRecord>,
    #[prost(message, optional, tag = "22")]
    pub pressure_injury: Option<PressureInjuryRecord>,
    #[prost(message, optional, tag = "23")]
    pub surgery: Option<SurgeryRecord>,
    #[prost(message, optional, tag = "24")]
    pub anesthesia: Option<AnesthesiaRecord>,
    #[prost(message, optional, tag = "25")]
    pub blood: Option<BloodRecord>,
    #[prost(message, optional, tag = "26")]
    pub device: Option<DeviceRecord>,
    #[prost(message, optional, tag = "27")]
    pub perinatal: Option<PerinatalRecord>,
    #[prost(message, optional, tag = "28")]
    pub vte: Option<VteRecord>,
}

/// Declares the record of each category module, with its field numbers, and its conversions
/// from and to the domain's module (which keeps the validated detail as numbers too).
macro_rules! module_records {
    ($($record:ident <-> $detail:ident { $($field:ident: $ty:ident = $tag:literal),+ })+) => {$(
        #[doc = concat!("The stored `", stringify!($detail), "` module.")]
        #[derive(Clone, Copy, PartialEq, Eq, Message)]
        pub(crate) struct $record {
            $(
                #[prost($ty, tag = $tag)]
                pub $field: module_records!(@rust $ty),
            )+
        }

        impl From<pb::$detail> for $record {
            fn from(m: pb::$detail) -> Self {
                Self { $($field: m.$field),+ }
            }
        }

        impl From<$record> for pb::$detail {
            fn from(r: $record) -> Self {
                Self { $($field: r.$field),+ }
            }
        }
    )+};
    (@rust int32) => { i32 };
    (@rust uint32) => { u32 };
}

module_records! {
    FallRecord <-> FallDetail {
        assistance: int32 = "1", injury: int32 = "2", injury_level: int32 = "3",
        risk_assessed: int32 = "4"
    }
    MedicationRecord <-> MedicationDetail {
        ncc_merp: int32 = "1", error_type: int32 = "2", process_stage: int32 = "3"
    }
    PressureInjuryRecord <-> PressureInjuryDetail {
        stage: int32 = "1", present_on_admission: int32 = "2", device_related: int32 = "3"
    }
    SurgeryRecord <-> SurgeryDetail { event: int32 = "1" }
    AnesthesiaRecord <-> AnesthesiaDetail { event: int32 = "1" }
    BloodRecord <-> BloodDetail { product: int32 = "1" }
    DeviceRecord <-> DeviceDetail { kind: int32 = "1" }
    PerinatalRecord <-> PerinatalDetail { affected: int32 = "1", gestational_age_weeks: uint32 = "2" }
    VteRecord <-> VteDetail { kind: int32 = "1", prophylaxis_given: int32 = "2" }
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

impl From<&Event> for EventRecord {
    fn from(e: &Event) -> Self {
        let m = &e.modules;
        Self {
            idempotency_key: e.idempotency_key.clone(),
            cf_version: e.cf_version.into(),
            event_type: e.event_type.into(),
            categories: e.categories.iter().map(|c| (*c).into()).collect(),
            harm: e.harm.map_or(0, i32::from),
            discovery_month: e.discovery_month.to_string(),
            unit_type: e.unit_type.into(),
            narrative: e.narrative.clone(),
            age_band: e.age_band.into(),
            sex: e.sex.into(),
            harm_duration: e.harm_duration.into(),
            preventability: e.preventability.into(),
            contributing_factors: e.contributing_factors.iter().map(|f| (*f).into()).collect(),
            reporter_type: e.reporter_type.into(),
            handoff_involved: e.handoff_involved.into(),
            rescue_attempted: e.rescue_attempted.into(),
            near_miss_reason: e.near_miss_reason.into(),
            fall: m.fall.map(Into::into),
            medication: m.medication.map(Into::into),
            pressure_injury: m.pressure_injury.map(Into::into),
            surgery: m.surgery.map(Into::into),
            anesthesia: m.anesthesia.map(Into::into),
            blood: m.blood.map(Into::into),
            device: m.device.map(Into::into),
            perinatal: m.perinatal.map(Into::into),
            vte: m.vte.map(Into::into),
        }
    }
}

impl EventRecord {
    /// The domain event this version holds. Only decodes: numbers must name a value the
    /// domain knows and the month must be a month, but no rule of the API is applied.
    fn to_event(&self) -> Result<Event, RecordError> {
        let medication = self.medication.map(pb::MedicationDetail::from);
        Ok(Event {
            idempotency_key: self.idempotency_key.clone(),
            cf_version: known(self.cf_version, "cf_version")?,
            event_type: known(self.event_type, "event_type")?,
            categories: all_known(&self.categories, "categories")?,
            harm: match self.harm {
                0 => None,
                raw => Some(known(raw, "harm")?),
            },
            discovery_month: self
                .discovery_month
                .parse::<Month>()
                .map_err(|_| RecordError::Month(self.discovery_month.clone()))?,
            unit_type: known(self.unit_type, "unit_type")?,
            narrative: self.narrative.clone(),
            age_band: known(self.age_band, "age_band")?,
            sex: known(self.sex, "sex")?,
            harm_duration: known(self.harm_duration, "harm_duration")?,
            preventability: known(self.preventability, "preventability")?,
            contributing_factors: all_known(&self.contributing_factors, "contributing_factors")?,
            reporter_type: known(self.reporter_type, "reporter_type")?,
            handoff_involved: known(self.handoff_involved, "handoff_involved")?,
            rescue_attempted: known(self.rescue_attempted, "rescue_attempted")?,
            near_miss_reason: known(self.near_miss_reason, "near_miss_reason")?,
            ncc_merp: match medication {
                Some(m) => known(m.ncc_merp, "medication.ncc_merp")?,
                None => Default::default(),
            },
            modules: EventModules {
                fall: self.fall.map(Into::into),
                medication,
                pressure_injury: self.pressure_injury.map(Into::into),
                surgery: self.surgery.map(Into::into),
                anesthesia: self.anesthesia.map(Into::into),
                blood: self.blood.map(Into::into),
                device: self.device.map(Into::into),
                perinatal: self.perinatal.map(Into::into),
                vte: self.vte.map(Into::into),
            },
        })
    }
}

/// The domain value a stored enumeration number stands for.
fn known<E: TryFrom<i32>>(raw: i32, field: &'static str) -> Result<E, RecordError> {
    E::try_from(raw).map_err(|_| RecordError::Unknown { field, value: raw })
}

fn all_known<E: TryFrom<i32>>(raw: &[i32], field: &'static str) -> Result<Vec<E>, RecordError> {
    raw.iter().map(|r| known(*r, field)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use psonet_core::event::{
        CommonFormatsVersion, EventCategory, EventType, HarmLevel, NccMerpCategory, UnitType,
    };

    fn event() -> Event {
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

    #[test]
    fn reading_back_applies_no_api_rule() {
        // A fall module on an event without the fall category breaks an API rule, and a
        // discovery month far in the future another; a stored record still reads.
        let mut odd = EventRecord::from(&event());
        odd.fall = Some(FallRecord {
            injury: 3,
            ..Default::default()
        });
        odd.discovery_month = "2999-12".into();
        let read = odd.to_event().unwrap();
        assert_eq!(read.modules.fall.map(|f| f.injury), Some(3));
        assert_eq!(read.discovery_month.to_string(), "2999-12");
    }

    #[test]
    fn an_unknown_number_is_named_not_guessed() {
        let mut odd = EventRecord::from(&event());
        odd.unit_type = 999;
        let err = odd.to_event().unwrap_err();
        assert_eq!(err.to_string(), "unit_type holds 999, not a known value");
    }
}
