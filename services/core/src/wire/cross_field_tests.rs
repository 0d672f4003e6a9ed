//! The cross-field rules of `proto/psonet/v1/event.proto`, one test per kind.

use super::event_from_wire;
use crate::event::{
    CommonFormatsVersion as Cf, ContributingFactor, EventCategory, EventType, HarmDuration,
    HarmLevel, NccMerpCategory as Merp, NearMissReason, Preventability, UnitType, YesNoUnknown,
};
use crate::month::Month;
use crate::pb;

fn now() -> Month {
    "2026-11".parse().unwrap()
}

fn incident() -> pb::Event {
    pb::Event {
        idempotency_key: "k".into(),
        event_type: EventType::Incident as i32,
        categories: vec![EventCategory::Medication as i32],
        harm: HarmLevel::Moderate as i32,
        discovery_month: "2026-02".into(),
        unit_type: UnitType::Medical as i32,
        ..Default::default()
    }
}

fn fields(wire: pb::Event) -> Vec<String> {
    match event_from_wire(wire, "event", now()) {
        Ok(_) => vec![],
        Err(v) => v.iter().map(|x| x.field.clone()).collect(),
    }
}

fn medication(merp: Merp) -> Option<pb::MedicationDetail> {
    Some(pb::MedicationDetail {
        ncc_merp: merp as i32,
        ..Default::default()
    })
}

#[test]
fn modules_need_their_category() {
    let fall = pb::Event {
        fall: Some(pb::FallDetail {
            injury: 3,
            ..Default::default()
        }),
        ..incident()
    };
    assert_eq!(fields(fall), ["event.fall"]);
    let bad_value = pb::Event {
        medication: Some(pb::MedicationDetail {
            process_stage: 77,
            ..Default::default()
        }),
        ..incident()
    };
    assert_eq!(fields(bad_value), ["event.medication.process_stage"]);
    let perinatal = pb::Event {
        categories: vec![EventCategory::Perinatal as i32],
        perinatal: Some(pb::PerinatalDetail {
            affected: 1,
            gestational_age_weeks: 12,
        }),
        ..incident()
    };
    assert_eq!(fields(perinatal), ["event.perinatal.gestational_age_weeks"]);
}

#[test]
fn ncc_merp_agrees_with_type_and_harm() {
    assert!(
        fields(pb::Event {
            medication: medication(Merp::E),
            ..incident()
        })
        .is_empty()
    );
    assert_eq!(
        fields(pb::Event {
            medication: medication(Merp::C),
            ..incident()
        }),
        ["event.medication.ncc_merp"]
    );
    assert_eq!(
        fields(pb::Event {
            medication: medication(Merp::I),
            ..incident()
        }),
        ["event.medication.ncc_merp"]
    );
    let near_miss = pb::Event {
        event_type: EventType::NearMiss as i32,
        harm: 0,
        ..incident()
    };
    assert_eq!(
        fields(pb::Event {
            medication: medication(Merp::E),
            ..near_miss.clone()
        }),
        ["event.medication.ncc_merp"]
    );
    let ok = event_from_wire(
        pb::Event {
            medication: medication(Merp::B),
            ..near_miss
        },
        "e",
        now(),
    )
    .unwrap();
    assert_eq!(ok.ncc_merp, Merp::B);
}

#[test]
fn incident_only_and_near_miss_only_elements() {
    let near_miss = pb::Event {
        event_type: EventType::NearMiss as i32,
        harm: 0,
        ..incident()
    };
    let wrong = pb::Event {
        preventability: Preventability::LikelyPreventable as i32,
        rescue_attempted: YesNoUnknown::Yes as i32,
        harm_duration: HarmDuration::Temporary as i32,
        ..near_miss.clone()
    };
    assert_eq!(
        fields(wrong),
        [
            "event.harm_duration",
            "event.preventability",
            "event.rescue_attempted"
        ]
    );
    let reason = NearMissReason::ActiveRecovery as i32;
    assert!(
        fields(pb::Event {
            near_miss_reason: reason,
            ..near_miss
        })
        .is_empty()
    );
    assert_eq!(
        fields(pb::Event {
            near_miss_reason: reason,
            ..incident()
        }),
        ["event.near_miss_reason"]
    );
    let no_harm_duration = pb::Event {
        harm: HarmLevel::NoHarm as i32,
        harm_duration: 2,
        ..incident()
    };
    assert_eq!(fields(no_harm_duration), ["event.harm_duration"]);
}

#[test]
fn categories_and_factors_follow_the_formats_version() {
    let v12 = pb::Event {
        cf_version: Cf::CferHV12 as i32,
        ..incident()
    };
    let split = pb::Event {
        categories: vec![EventCategory::Surgery as i32],
        ..v12.clone()
    };
    assert_eq!(fields(split), ["event.categories[0]"]);
    let joint = pb::Event {
        categories: vec![EventCategory::SurgeryOrAnesthesiaV12 as i32],
        ..v12.clone()
    };
    assert!(fields(joint.clone()).is_empty());
    assert_eq!(
        fields(pb::Event {
            cf_version: 0,
            ..joint
        }),
        ["event.categories[0]"]
    );
    let hit = pb::Event {
        contributing_factors: vec![ContributingFactor::HealthIt as i32],
        ..v12
    };
    assert_eq!(fields(hit), ["event.contributing_factors[0]"]);
    let twice = pb::Event {
        contributing_factors: vec![1, 1, 0],
        ..incident()
    };
    assert_eq!(
        fields(twice),
        [
            "event.contributing_factors[1]",
            "event.contributing_factors[2]"
        ]
    );
}
