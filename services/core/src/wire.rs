//! Conversions between wire messages and domain types: where `INVALID_ARGUMENT` is born.
//!
//! Every rule is checked and every violation is reported with its field path, so a partner
//! developer fixes a rejected event in one round trip. The cross-field rules are written down
//! in `proto/psonet/v1/event.proto`; this file is their one implementation.

use crate::event::{
    CommonFormatsVersion as Cf, ContributingFactor, Event, EventCategory as C, EventModules,
    EventType, HarmDuration, HarmLevel, MAX_CATEGORIES, MAX_CONTRIBUTING_FACTORS,
    MAX_IDEMPOTENCY_KEY_LEN, MAX_NARRATIVE_LEN, NccMerpCategory as Merp, NearMissReason,
    Preventability, UnitType, YesNoUnknown,
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

/// The generic elements beyond type, category, harm, month and unit.
struct Generic {
    age_band: pb::AgeBand,
    sex: pb::Sex,
    harm_duration: HarmDuration,
    preventability: Preventability,
    contributing_factors: Vec<ContributingFactor>,
    reporter_type: pb::ReporterType,
    handoff_involved: YesNoUnknown,
    rescue_attempted: YesNoUnknown,
    near_miss_reason: NearMissReason,
}

fn generic_from_wire(
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

/// A module field to check: its name, raw value, and whether the value is acceptable.
type ModuleField<'a> = (&'a str, i32, fn(i32) -> bool);

/// Checks each module: its enum fields are known, and its category is on the event.
fn modules_from_wire(
    wire: &pb::Event,
    categories: &[C],
    prefix: &str,
    v: &mut FieldViolations,
) -> EventModules {
    let mut check = |present: bool, name: &str, category: C, values: &[ModuleField]| {
        if !present {
            return;
        }
        if !categories.contains(&category) {
            v.add(
                format!("{prefix}.{name}"),
                format!("only on events with category {}", category.as_str_name()),
            );
        }
        for (sub, raw, known) in values {
            if !known(*raw) {
                let why = if *sub == "gestational_age_weeks" {
                    "20 to 45 completed weeks, or 0 when not recorded".to_string()
                } else {
                    unknown_value(*raw)
                };
                v.add(format!("{prefix}.{name}.{sub}"), why);
            }
        }
    };
    fn ok<E: TryFrom<i32>>(raw: i32) -> bool {
        E::try_from(raw).is_ok()
    }
    if let Some(m) = &wire.fall {
        check(
            true,
            "fall",
            C::Fall,
            &[
                ("assistance", m.assistance, ok::<pb::FallAssistance>),
                ("injury", m.injury, ok::<pb::FallInjury>),
                ("injury_level", m.injury_level, ok::<pb::FallInjuryLevel>),
                ("risk_assessed", m.risk_assessed, ok::<YesNoUnknown>),
            ],
        );
    }
    if let Some(m) = &wire.medication {
        check(
            true,
            "medication",
            C::Medication,
            &[
                ("ncc_merp", m.ncc_merp, ok::<Merp>),
                ("error_type", m.error_type, ok::<pb::MedicationErrorType>),
                ("process_stage", m.process_stage, ok::<pb::MedicationStage>),
            ],
        );
    }
    if let Some(m) = &wire.pressure_injury {
        check(
            true,
            "pressure_injury",
            C::PressureInjury,
            &[
                ("stage", m.stage, ok::<pb::PressureInjuryStage>),
                (
                    "present_on_admission",
                    m.present_on_admission,
                    ok::<pb::PresentOnAdmission>,
                ),
                ("device_related", m.device_related, ok::<YesNoUnknown>),
            ],
        );
    }
    if let Some(m) = &wire.surgery {
        check(
            true,
            "surgery",
            C::Surgery,
            &[("event", m.event, ok::<pb::SurgeryEvent>)],
        );
    }
    if let Some(m) = &wire.anesthesia {
        check(
            true,
            "anesthesia",
            C::Anesthesia,
            &[("event", m.event, ok::<pb::AnesthesiaEvent>)],
        );
    }
    if let Some(m) = &wire.blood {
        check(
            true,
            "blood",
            C::Blood,
            &[("product", m.product, ok::<pb::BloodProduct>)],
        );
    }
    if let Some(m) = &wire.device {
        check(
            true,
            "device",
            C::Device,
            &[("kind", m.kind, ok::<pb::DeviceKind>)],
        );
    }
    if let Some(m) = &wire.perinatal {
        check(
            true,
            "perinatal",
            C::Perinatal,
            &[
                ("affected", m.affected, ok::<pb::PerinatalAffected>),
                (
                    "gestational_age_weeks",
                    m.gestational_age_weeks as i32,
                    |w| w == 0 || (20..=45).contains(&w),
                ),
            ],
        );
    }
    if let Some(m) = &wire.vte {
        check(
            true,
            "vte",
            C::Vte,
            &[
                ("kind", m.kind, ok::<pb::VteKind>),
                ("prophylaxis_given", m.prophylaxis_given, ok::<YesNoUnknown>),
            ],
        );
    }
    EventModules {
        fall: wire.fall,
        medication: wire.medication,
        pressure_injury: wire.pressure_injury,
        surgery: wire.surgery,
        anesthesia: wire.anesthesia,
        blood: wire.blood,
        device: wire.device,
        perinatal: wire.perinatal,
        vte: wire.vte,
    }
}

/// The NCC MERP category, checked against the event type and harm it implies.
fn merp_from_wire(
    modules: &EventModules,
    event_type: Option<EventType>,
    harm: Option<HarmLevel>,
    prefix: &str,
    v: &mut FieldViolations,
) -> Merp {
    let merp = modules
        .medication
        .and_then(|m| Merp::try_from(m.ncc_merp).ok())
        .unwrap_or(Merp::Unspecified);
    let field = format!("{prefix}.medication.ncc_merp");
    let expected_type = match merp {
        Merp::Unspecified => return merp,
        Merp::A => EventType::UnsafeCondition,
        Merp::B => EventType::NearMiss,
        _ => EventType::Incident,
    };
    if event_type.is_some_and(|t| t != expected_type) {
        v.add(
            &field,
            format!(
                "NCC MERP category {} means event_type {}",
                merp_letter(merp),
                expected_type.as_str_name()
            ),
        );
        return merp;
    }
    use HarmLevel as H;
    let allowed: &[H] = match merp {
        Merp::C | Merp::D => &[H::NoHarm, H::Unknown],
        Merp::E | Merp::F | Merp::G | Merp::H => &[H::Mild, H::Moderate, H::Severe, H::Unknown],
        Merp::I => &[H::Death],
        _ => return merp,
    };
    if let Some(h) = harm.filter(|h| !allowed.contains(h)) {
        v.add(
            &field,
            format!(
                "category {} does not agree with harm {}",
                merp_letter(merp),
                h.as_str_name()
            ),
        );
    }
    merp
}

fn merp_letter(m: Merp) -> &'static str {
    m.as_str_name().trim_start_matches("NCC_MERP_CATEGORY_")
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
pub fn category_list_from_wire(values: &[i32], field: &str, v: &mut FieldViolations) -> Vec<C> {
    let mut out: Vec<C> = Vec::with_capacity(values.len());
    for (i, raw) in values.iter().enumerate() {
        match C::try_from(*raw) {
            Ok(C::Unspecified) => v.add(format!("{field}[{i}]"), "must be set"),
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
                format!("event_type {} carries no harm level", t.as_str_name()),
            );
        }
        _ => {}
    }
    harm
}

/// An optional enum field: any known value, `Unspecified` (the default) included.
fn optional_enum<E>(raw: i32, field: &str, v: &mut FieldViolations) -> E
where
    E: TryFrom<i32> + Default,
{
    E::try_from(raw).unwrap_or_else(|_| {
        v.add(field, unknown_value(raw));
        E::default()
    })
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
    use crate::event::{CommonFormatsVersion, EventCategory};

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
        // On main: "a EVENT_TYPE_NEAR_MISS carries no harm level".
        let descriptions: Vec<&str> = err.iter().map(|v| v.description.as_str()).collect();
        assert_eq!(
            descriptions,
            ["event_type EVENT_TYPE_NEAR_MISS carries no harm level"]
        );
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
}

#[cfg(test)]
mod cross_field_tests {
    use super::*;
    use crate::event::EventCategory;

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
    fn an_ncc_merp_category_names_the_event_type_it_needs() {
        let wire = pb::Event {
            medication: medication(Merp::B),
            ..incident()
        };
        let err = event_from_wire(wire, "event", now()).unwrap_err();
        let descriptions: Vec<&str> = err.iter().map(|v| v.description.as_str()).collect();
        // On main: "category B means a EVENT_TYPE_NEAR_MISS".
        assert_eq!(
            descriptions,
            ["NCC MERP category B means event_type EVENT_TYPE_NEAR_MISS"]
        );
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
}
