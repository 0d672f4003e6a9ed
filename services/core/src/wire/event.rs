//! An event from its wire form, part by part, and back: the idempotency key, the formats
//! version, type, categories, harm, discovery month, unit and narrative are checked here; the
//! generic elements and the category modules by their own files.

use super::fields::{
    category_list_from_wire, month_from_wire, optional_enum, required_enum, unknown_value,
};
use super::generic::generic_from_wire;
use super::modules::{merp_from_wire, modules_from_wire};
use crate::event::{
    CommonFormatsVersion as Cf, Event, EventCategory as C, EventType, HarmLevel, MAX_CATEGORIES,
    MAX_IDEMPOTENCY_KEY_LEN, MAX_NARRATIVE_LEN, UnitType,
};
use crate::month::Month;
use crate::pb;
use crate::violations::FieldViolations;

/// Turns a wire event into a domain event, or lists every field that is wrong. `prefix` is the
/// path of the event in the request (e.g. `event`); `now` is the latest acceptable month.
pub fn event_from_wire(
    wire: pb::Event,
    prefix: &str,
    now: Month,
) -> Result<Event, FieldViolations> {
    let mut v = FieldViolations::new();
    let field = |name: &str| format!("{prefix}.{name}");
    check_idempotency_key(&wire.idempotency_key, &field("idempotency_key"), &mut v);
    let cf_version = match optional_enum::<Cf>(wire.cf_version, &field("cf_version"), &mut v) {
        Cf::Unspecified => Cf::CferHV20,
        version => version,
    };
    let event_type = required_enum::<EventType>(wire.event_type, &field("event_type"), &mut v);
    let categories =
        categories_from_wire(&wire.categories, cf_version, &field("categories"), &mut v);
    let harm = harm_from_wire(wire.harm, event_type, &field("harm"), &mut v);
    let discovery_month = month_from_wire(&wire.discovery_month, &field("discovery_month"), &mut v);
    if let Some(m) = discovery_month.filter(|m| *m > now) {
        v.add(
            field("discovery_month"),
            format!("{m} is in the future (now is {now})"),
        );
    }
    let unit_type = required_enum::<UnitType>(wire.unit_type, &field("unit_type"), &mut v);
    if wire.narrative.len() > MAX_NARRATIVE_LEN {
        v.add(
            field("narrative"),
            format!(
                "{} bytes; at most {MAX_NARRATIVE_LEN} are accepted",
                wire.narrative.len()
            ),
        );
    }
    let generic = generic_from_wire(&wire, event_type, harm, cf_version, prefix, &mut v);
    let modules = modules_from_wire(&wire, &categories, prefix, &mut v);
    let ncc_merp = merp_from_wire(&modules, event_type, harm, prefix, &mut v);
    match (event_type, discovery_month, unit_type, v.is_empty()) {
        (Some(event_type), Some(discovery_month), Some(unit_type), true) => Ok(Event {
            idempotency_key: wire.idempotency_key,
            cf_version,
            event_type,
            categories,
            harm,
            discovery_month,
            unit_type,
            narrative: wire.narrative,
            age_band: generic.age_band,
            sex: generic.sex,
            harm_duration: generic.harm_duration,
            preventability: generic.preventability,
            contributing_factors: generic.contributing_factors,
            reporter_type: generic.reporter_type,
            handoff_involved: generic.handoff_involved,
            rescue_attempted: generic.rescue_attempted,
            near_miss_reason: generic.near_miss_reason,
            ncc_merp,
            modules,
        }),
        _ => Err(v),
    }
}

/// The wire form of a stored event, for reading it back locally.
pub fn event_to_wire(event: &Event) -> pb::Event {
    let m = &event.modules;
    pb::Event {
        idempotency_key: event.idempotency_key.clone(),
        cf_version: event.cf_version as i32,
        event_type: event.event_type as i32,
        categories: event.categories.iter().map(|c| *c as i32).collect(),
        harm: event
            .harm
            .map_or(HarmLevel::Unspecified as i32, |h| h as i32),
        discovery_month: event.discovery_month.to_string(),
        unit_type: event.unit_type as i32,
        narrative: event.narrative.clone(),
        age_band: event.age_band as i32,
        sex: event.sex as i32,
        harm_duration: event.harm_duration as i32,
        preventability: event.preventability as i32,
        contributing_factors: event
            .contributing_factors
            .iter()
            .map(|f| *f as i32)
            .collect(),
        reporter_type: event.reporter_type as i32,
        handoff_involved: event.handoff_involved as i32,
        rescue_attempted: event.rescue_attempted as i32,
        near_miss_reason: event.near_miss_reason as i32,
        fall: m.fall,
        medication: m.medication,
        pressure_injury: m.pressure_injury,
        surgery: m.surgery,
        anesthesia: m.anesthesia,
        blood: m.blood,
        device: m.device,
        perinatal: m.perinatal,
        vte: m.vte,
    }
}

fn check_idempotency_key(key: &str, field: &str, v: &mut FieldViolations) {
    if key.is_empty() {
        v.add(field, "required: a client-chosen key, unique per event");
    } else if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        v.add(
            field,
            format!("{} bytes; at most {MAX_IDEMPOTENCY_KEY_LEN}", key.len()),
        );
    } else if !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        v.add(field, "only printable ASCII characters are accepted");
    }
}

fn categories_from_wire(values: &[i32], cf: Cf, field: &str, v: &mut FieldViolations) -> Vec<C> {
    if values.is_empty() {
        v.add(field, "at least one category is required");
    } else if values.len() > MAX_CATEGORIES {
        v.add(
            field,
            format!("{} categories; at most {MAX_CATEGORIES}", values.len()),
        );
    }
    let categories = category_list_from_wire(values, field, v);
    for (i, c) in values.iter().enumerate() {
        let wrong_version = match C::try_from(*c) {
            Ok(C::SurgeryOrAnesthesiaV12) => cf != Cf::CferHV12,
            Ok(C::Surgery | C::Anesthesia) => cf == Cf::CferHV12,
            _ => false,
        };
        if wrong_version {
            v.add(
                format!("{field}[{i}]"),
                "V1.2 reports use SURGERY_OR_ANESTHESIA_V12; V2.0 reports use SURGERY or ANESTHESIA",
            );
        }
    }
    categories
}

fn harm_from_wire(
    raw: i32,
    event_type: Option<EventType>,
    field: &str,
    v: &mut FieldViolations,
) -> Option<HarmLevel> {
    let harm = match HarmLevel::try_from(raw) {
        Ok(HarmLevel::Unspecified) => None,
        Ok(h) => Some(h),
        Err(_) => {
            v.add(field, unknown_value(raw));
            return None;
        }
    };
    match (event_type, harm) {
        (Some(EventType::Incident), None) => {
            v.add(
                field,
                "an incident needs a harm level (HARM_LEVEL_UNKNOWN if not assessed)",
            );
        }
        (Some(t @ (EventType::NearMiss | EventType::UnsafeCondition)), Some(_)) => {
            v.add(
                field,
                format!("a {} carries no harm level", t.as_str_name()),
            );
        }
        _ => {}
    }
    harm
}
