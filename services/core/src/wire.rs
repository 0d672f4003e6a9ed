//! Conversions between wire messages and domain types: where `INVALID_ARGUMENT` is born.
//!
//! Every rule is checked and every violation is reported with its field path, so a partner
//! developer fixes a rejected event in one round trip.

use crate::event::{
    CommonFormatsVersion, Event, EventCategory, EventType, HarmLevel, MAX_CATEGORIES,
    MAX_IDEMPOTENCY_KEY_LEN, MAX_NARRATIVE_LEN, UnitType,
};
use crate::month::{Month, MonthRange};
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
    let cf_version = match CommonFormatsVersion::try_from(wire.cf_version) {
        Ok(CommonFormatsVersion::Unspecified) => CommonFormatsVersion::CferHV20,
        Ok(version) => version,
        Err(_) => {
            v.add(field("cf_version"), unknown_value(wire.cf_version));
            CommonFormatsVersion::CferHV20
        }
    };
    let event_type = required_enum::<EventType>(wire.event_type, &field("event_type"), &mut v);
    let categories = categories_from_wire(&wire.categories, &field("categories"), &mut v);
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
        }),
        _ => Err(v),
    }
}

/// The wire form of a stored event, for reading it back locally.
pub fn event_to_wire(event: &Event) -> pb::Event {
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
    }
}

/// A `YYYY-MM` month field, or a violation naming it.
pub fn month_from_wire(text: &str, field: &str, v: &mut FieldViolations) -> Option<Month> {
    if text.is_empty() {
        v.add(field, "required: a month as YYYY-MM");
        return None;
    }
    text.parse().map_err(|e| v.add(field, format!("{e}"))).ok()
}

/// A month range from two `YYYY-MM` fields, or violations naming them.
pub fn month_range_from_wire(
    from: &str,
    to: &str,
    fields: (&str, &str),
) -> Result<MonthRange, FieldViolations> {
    let mut v = FieldViolations::new();
    let from = month_from_wire(from, fields.0, &mut v);
    let to = month_from_wire(to, fields.1, &mut v);
    if let (Some(from), Some(to)) = (from, to) {
        match MonthRange::new(from, to) {
            Ok(range) => return Ok(range),
            Err(e) => v.add(fields.1, e.to_string()),
        }
    }
    Err(v)
}

/// A list of distinct, known categories (used by events and by query filters).
pub fn category_list_from_wire(
    values: &[i32],
    field: &str,
    v: &mut FieldViolations,
) -> Vec<EventCategory> {
    let mut out: Vec<EventCategory> = Vec::with_capacity(values.len());
    for (i, raw) in values.iter().enumerate() {
        match EventCategory::try_from(*raw) {
            Ok(EventCategory::Unspecified) => v.add(format!("{field}[{i}]"), "must be set"),
            Ok(c) if out.contains(&c) => v.add(
                format!("{field}[{i}]"),
                format!("{} is listed twice", c.as_str_name()),
            ),
            Ok(c) => out.push(c),
            Err(_) => v.add(format!("{field}[{i}]"), unknown_value(*raw)),
        }
    }
    out.sort_unstable();
    out
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

fn categories_from_wire(
    values: &[i32],
    field: &str,
    v: &mut FieldViolations,
) -> Vec<EventCategory> {
    if values.is_empty() {
        v.add(field, "at least one category is required");
    } else if values.len() > MAX_CATEGORIES {
        v.add(
            field,
            format!("{} categories; at most {MAX_CATEGORIES}", values.len()),
        );
    }
    category_list_from_wire(values, field, v)
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

/// A required enum field: known and not the `*_UNSPECIFIED` zero value.
fn required_enum<E>(raw: i32, field: &str, v: &mut FieldViolations) -> Option<E>
where
    E: TryFrom<i32> + Copy + Into<i32>,
{
    match E::try_from(raw) {
        Ok(e) if Into::<i32>::into(e) != 0 => Some(e),
        Ok(_) => {
            v.add(field, "required");
            None
        }
        Err(_) => {
            v.add(field, unknown_value(raw));
            None
        }
    }
}

fn unknown_value(raw: i32) -> String {
    format!("{raw} is not a known value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Month {
        "2026-11".parse().unwrap()
    }

    fn valid() -> pb::Event {
        pb::Event {
            idempotency_key: "IR-2026-0001".into(),
            cf_version: 0,
            event_type: EventType::Incident as i32,
            categories: vec![EventCategory::Medication as i32, EventCategory::Fall as i32],
            harm: HarmLevel::Mild as i32,
            discovery_month: "2026-03".into(),
            unit_type: UnitType::MedSurg as i32,
            narrative: "Patient slipped after a sedative dose.".into(),
        }
    }

    fn fields(err: FieldViolations) -> Vec<String> {
        err.iter().map(|v| v.field.clone()).collect()
    }

    #[test]
    fn a_valid_event_round_trips() {
        let event = event_from_wire(valid(), "event", now()).unwrap();
        assert_eq!(
            event.categories,
            [EventCategory::Fall, EventCategory::Medication]
        );
        assert_eq!(event.harm, Some(HarmLevel::Mild));
        assert_eq!(event.cf_version, CommonFormatsVersion::CferHV20);
        let back = event_from_wire(event_to_wire(&event), "event", now()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn every_broken_field_is_named() {
        let wire = pb::Event {
            idempotency_key: String::new(),
            event_type: 0,
            categories: vec![3, 3, 0, 99],
            harm: 42,
            discovery_month: "2026-3".into(),
            unit_type: 77,
            ..valid()
        };
        let err = event_from_wire(wire, "event", now()).unwrap_err();
        assert_eq!(
            fields(err),
            [
                "event.idempotency_key",
                "event.event_type",
                "event.categories[1]",
                "event.categories[2]",
                "event.categories[3]",
                "event.harm",
                "event.discovery_month",
                "event.unit_type",
            ]
        );
    }

    #[test]
    fn harm_follows_the_event_type() {
        let incident_without_harm = pb::Event { harm: 0, ..valid() };
        let err = event_from_wire(incident_without_harm, "event", now()).unwrap_err();
        assert_eq!(fields(err), ["event.harm"]);
        let near_miss_with_harm = pb::Event {
            event_type: EventType::NearMiss as i32,
            ..valid()
        };
        let err = event_from_wire(near_miss_with_harm, "event", now()).unwrap_err();
        assert_eq!(fields(err), ["event.harm"]);
        let near_miss = pb::Event {
            event_type: EventType::NearMiss as i32,
            harm: 0,
            ..valid()
        };
        assert_eq!(event_from_wire(near_miss, "e", now()).unwrap().harm, None);
    }

    #[test]
    fn future_months_and_oversized_fields_are_refused() {
        let wire = pb::Event {
            discovery_month: "2027-01".into(),
            narrative: "x".repeat(MAX_NARRATIVE_LEN + 1),
            idempotency_key: "k".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1),
            categories: (1..=11).collect(),
            ..valid()
        };
        let err = event_from_wire(wire, "event", now()).unwrap_err();
        assert_eq!(
            fields(err),
            [
                "event.idempotency_key",
                "event.categories",
                "event.discovery_month",
                "event.narrative"
            ]
        );
    }

    #[test]
    fn month_ranges_name_their_fields() {
        let err = month_range_from_wire("2026-05", "2026-01", ("from", "to")).unwrap_err();
        assert_eq!(fields(err), ["to"]);
        let err = month_range_from_wire("", "2026-01", ("from", "to")).unwrap_err();
        assert_eq!(fields(err), ["from"]);
        assert!(month_range_from_wire("2025-01", "2025-12", ("from", "to")).is_ok());
    }
}
