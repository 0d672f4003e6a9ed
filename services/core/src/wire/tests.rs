//! An event round trip, and every single-field rule named by its field.

use super::{event_from_wire, event_to_wire, month_range_from_wire};
use crate::event::{
    CommonFormatsVersion, EventCategory, EventType, HarmLevel, MAX_IDEMPOTENCY_KEY_LEN,
    MAX_NARRATIVE_LEN, UnitType,
};
use crate::month::Month;
use crate::pb;
use crate::violations::FieldViolations;

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
        ..Default::default()
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
        categories: (1..=9).chain([11, 12]).collect(),
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
