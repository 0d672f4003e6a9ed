//! The stored form of one version of an event: every element of the domain event, with
//! enumerations kept as their numbers and the category modules as records of their own.

use super::RecordError;
use prost::Message;
use psonet_core::event::{Event, EventModules};
use psonet_core::month::Month;
use psonet_core::pb;

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
    pub fn to_event(&self) -> Result<Event, RecordError> {
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
    use crate::record::tests::event;

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
