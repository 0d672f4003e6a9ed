//! The generic elements of an event beyond type, category, harm, month and unit: patient age
//! band and sex, harm duration, preventability, contributing factors, reporter, hand-off,
//! rescue and why a near miss did not reach the patient, with the rules that tie them to the
//! event type and harm.

use super::fields::{optional_enum, unknown_value};
use crate::event::{
    CommonFormatsVersion as Cf, ContributingFactor, EventType, HarmDuration, HarmLevel,
    MAX_CONTRIBUTING_FACTORS, NearMissReason, Preventability, YesNoUnknown,
};
use crate::pb;
use crate::violations::FieldViolations;

/// The generic elements beyond type, category, harm, month and unit.
pub(super) struct Generic {
    pub age_band: pb::AgeBand,
    pub sex: pb::Sex,
    pub harm_duration: HarmDuration,
    pub preventability: Preventability,
    pub contributing_factors: Vec<ContributingFactor>,
    pub reporter_type: pb::ReporterType,
    pub handoff_involved: YesNoUnknown,
    pub rescue_attempted: YesNoUnknown,
    pub near_miss_reason: NearMissReason,
}

/// The generic elements of `wire`, checked against its type, harm and formats version.
pub(super) fn generic_from_wire(
    wire: &pb::Event,
    event_type: Option<EventType>,
    harm: Option<HarmLevel>,
    cf: Cf,
    prefix: &str,
    v: &mut FieldViolations,
) -> Generic {
    let field = |name: &str| format!("{prefix}.{name}");
    let incident = event_type == Some(EventType::Incident);
    let g = Generic {
        age_band: optional_enum(wire.age_band, &field("age_band"), v),
        sex: optional_enum(wire.sex, &field("sex"), v),
        harm_duration: optional_enum(wire.harm_duration, &field("harm_duration"), v),
        preventability: optional_enum(wire.preventability, &field("preventability"), v),
        contributing_factors: factors_from_wire(
            &wire.contributing_factors,
            cf,
            &field("contributing_factors"),
            v,
        ),
        reporter_type: optional_enum(wire.reporter_type, &field("reporter_type"), v),
        handoff_involved: optional_enum(wire.handoff_involved, &field("handoff_involved"), v),
        rescue_attempted: optional_enum(wire.rescue_attempted, &field("rescue_attempted"), v),
        near_miss_reason: optional_enum(wire.near_miss_reason, &field("near_miss_reason"), v),
    };
    let harmed = matches!(
        harm,
        Some(HarmLevel::Mild | HarmLevel::Moderate | HarmLevel::Severe)
    );
    if g.harm_duration != HarmDuration::Unspecified && !harmed {
        v.add(
            field("harm_duration"),
            "only with a harm level of mild, moderate or severe",
        );
    }
    if event_type.is_some() && !incident {
        if g.preventability != Preventability::Unspecified {
            v.add(field("preventability"), "incidents only");
        }
        if g.rescue_attempted != YesNoUnknown::Unspecified {
            v.add(field("rescue_attempted"), "incidents only");
        }
    }
    if g.near_miss_reason != NearMissReason::Unspecified
        && event_type.is_some_and(|t| t != EventType::NearMiss)
    {
        v.add(field("near_miss_reason"), "near misses only");
    }
    g
}

fn factors_from_wire(
    values: &[i32],
    cf: Cf,
    field: &str,
    v: &mut FieldViolations,
) -> Vec<ContributingFactor> {
    if values.len() > MAX_CONTRIBUTING_FACTORS {
        v.add(
            field,
            format!(
                "{} factors; at most {MAX_CONTRIBUTING_FACTORS}",
                values.len()
            ),
        );
    }
    let mut out: Vec<ContributingFactor> = Vec::with_capacity(values.len());
    for (i, raw) in values.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match ContributingFactor::try_from(*raw) {
            Ok(ContributingFactor::Unspecified) => v.add(at, "must be set"),
            Ok(f) if out.contains(&f) => v.add(at, format!("{} is listed twice", f.as_str_name())),
            Ok(ContributingFactor::HealthIt) if cf == Cf::CferHV12 => {
                v.add(at, "HEALTH_IT is a contributing factor from CF V2.0 on (V1.2 records it in the device module)")
            }
            Ok(f) => out.push(f),
            Err(_) => v.add(at, unknown_value(*raw)),
        }
    }
    out.sort_unstable();
    out
}
