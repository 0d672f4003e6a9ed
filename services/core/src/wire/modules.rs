//! The category modules (fall, medication, pressure injury, surgery, anesthesia, blood, device,
//! perinatal, VTE): each only on an event with its category, each field a known value; and
//! the NCC MERP category of the medication module, which must agree with the event's type and
//! harm.

use super::fields::unknown_value;
use crate::event::{
    EventCategory as C, EventModules, EventType, HarmLevel, NccMerpCategory as Merp,
};
use crate::pb;
use crate::violations::FieldViolations;

/// A module field to check: its name, raw value, and why the value is refused, if it is.
type ModuleField = (&'static str, i32, fn(i32) -> Result<(), String>);

/// A module as sent: its field name in the event, the category it belongs to, and its fields
/// when it is present.
type Module = (&'static str, C, Option<Vec<ModuleField>>);

/// Accepts exactly the numbers of the enumeration `E`.
fn known<E: TryFrom<i32>>(raw: i32) -> Result<(), String> {
    E::try_from(raw).map(drop).map_err(|_| unknown_value(raw))
}

fn gestational_age(weeks: i32) -> Result<(), String> {
    if weeks == 0 || (20..=45).contains(&weeks) {
        Ok(())
    } else {
        Err("20 to 45 completed weeks, or 0 when not recorded".into())
    }
}

/// Every module of the event in the order of its fields, with what to check in each. Kept as
/// a table (one row per module field), so it is not reflowed.
#[rustfmt::skip]
fn modules_of(wire: &pb::Event) -> [Module; 9] {
    use pb::*;
    [
        ("fall", C::Fall, wire.fall.map(|m| vec![
            field("assistance", m.assistance, known::<FallAssistance>),
            field("injury", m.injury, known::<FallInjury>),
            field("injury_level", m.injury_level, known::<FallInjuryLevel>),
            field("risk_assessed", m.risk_assessed, known::<YesNoUnknown>),
        ])),
        ("medication", C::Medication, wire.medication.map(|m| vec![
            field("ncc_merp", m.ncc_merp, known::<Merp>),
            field("error_type", m.error_type, known::<MedicationErrorType>),
            field("process_stage", m.process_stage, known::<MedicationStage>),
        ])),
        ("pressure_injury", C::PressureInjury, wire.pressure_injury.map(|m| vec![
            field("stage", m.stage, known::<PressureInjuryStage>),
            field("present_on_admission", m.present_on_admission, known::<PresentOnAdmission>),
            field("device_related", m.device_related, known::<YesNoUnknown>),
        ])),
        ("surgery", C::Surgery, wire.surgery.map(|m| vec![
            field("event", m.event, known::<SurgeryEvent>),
        ])),
        ("anesthesia", C::Anesthesia, wire.anesthesia.map(|m| vec![
            field("event", m.event, known::<AnesthesiaEvent>),
        ])),
        ("blood", C::Blood, wire.blood.map(|m| vec![
            field("product", m.product, known::<BloodProduct>),
        ])),
        ("device", C::Device, wire.device.map(|m| vec![
            field("kind", m.kind, known::<DeviceKind>),
        ])),
        ("perinatal", C::Perinatal, wire.perinatal.map(|m| vec![
            field("affected", m.affected, known::<PerinatalAffected>),
            field("gestational_age_weeks", m.gestational_age_weeks as i32, gestational_age),
        ])),
        ("vte", C::Vte, wire.vte.map(|m| vec![
            field("kind", m.kind, known::<VteKind>),
            field("prophylaxis_given", m.prophylaxis_given, known::<YesNoUnknown>),
        ])),
    ]
}

/// One row of the table: a field's name, its value, and its check.
fn field(name: &'static str, raw: i32, check: fn(i32) -> Result<(), String>) -> ModuleField {
    (name, raw, check)
}

/// Checks each module: its category is on the event, and its fields hold acceptable values.
pub(super) fn modules_from_wire(
    wire: &pb::Event,
    categories: &[C],
    prefix: &str,
    v: &mut FieldViolations,
) -> EventModules {
    for (name, category, fields) in modules_of(wire) {
        let Some(fields) = fields else {
            continue;
        };
        if !categories.contains(&category) {
            v.add(
                format!("{prefix}.{name}"),
                format!("only on events with category {}", category.as_str_name()),
            );
        }
        for (field, raw, check) in fields {
            if let Err(why) = check(raw) {
                v.add(format!("{prefix}.{name}.{field}"), why);
            }
        }
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
pub(super) fn merp_from_wire(
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
                "category {} means a {}",
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
