//! The API edge of interventions: a wire `Intervention` checked into the domain type, with every
//! bad field named, and the domain type back to the wire.

use super::definition::{
    Intervention, MAX_ID_CHARS, MAX_METRICS, MAX_NARRATIVE_CHARS, MAX_TITLE_CHARS,
};
use psonet_core::event::UnitType;
use psonet_core::month::Month;
use psonet_core::pb;
use psonet_core::violations::FieldViolations;
use psonet_core::wire::month_from_wire;

/// Whether `s` is a usable id: 1 to 64 letters, digits, `-`, `_` or `.`.
fn check_id(s: &str, field: &str, v: &mut FieldViolations) {
    if s.is_empty() {
        v.add(field, "required");
    } else if s.chars().count() > MAX_ID_CHARS {
        v.add(field, format!("at most {MAX_ID_CHARS} characters"));
    } else if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        v.add(field, "only letters, digits, '-', '_' and '.'");
    }
}

fn check_text(s: &str, max: usize, field: &str, v: &mut FieldViolations) {
    if s.chars().count() > max {
        v.add(field, format!("at most {max} characters"));
    }
}

/// The intervention id of a request, checked.
pub fn id_from_wire(id: &str, field: &str) -> Result<String, FieldViolations> {
    let mut v = FieldViolations::new();
    check_id(id, field, &mut v);
    v.into_result(id.to_string())
}

/// A month field that must be set, checked.
pub fn required_month(text: &str, field: &str) -> Result<Month, FieldViolations> {
    let mut v = FieldViolations::new();
    let month = month_from_wire(text, field, &mut v);
    match month {
        Some(m) if v.is_empty() => Ok(m),
        _ => Err(v),
    }
}

fn unit_types(raw: &[i32], prefix: &str, v: &mut FieldViolations) -> Vec<UnitType> {
    let mut out = Vec::new();
    for (i, value) in raw.iter().enumerate() {
        match UnitType::try_from(*value) {
            Ok(UnitType::Unspecified) => v.add(format!("{prefix}.unit_types[{i}]"), "must be set"),
            Ok(u) if out.contains(&u) => v.add(format!("{prefix}.unit_types[{i}]"), "listed twice"),
            Ok(u) => out.push(u),
            Err(_) => v.add(
                format!("{prefix}.unit_types[{i}]"),
                format!("{value} is not a known value"),
            ),
        }
    }
    out
}

fn metrics(raw: &[String], prefix: &str, v: &mut FieldViolations) -> Vec<String> {
    if raw.len() > MAX_METRICS {
        v.add(
            format!("{prefix}.target_metric_ids"),
            format!("at most {MAX_METRICS}"),
        );
    }
    for (i, id) in raw.iter().enumerate() {
        check_id(id, &format!("{prefix}.target_metric_ids[{i}]"), v);
    }
    raw.to_vec()
}

/// Checks a wire intervention (field paths under `prefix`); its revision is ignored.
pub fn intervention_from_wire(
    wire: Option<pb::Intervention>,
    prefix: &str,
) -> Result<Intervention, FieldViolations> {
    let mut v = FieldViolations::new();
    let Some(w) = wire else {
        v.add(prefix, "required");
        return Err(v);
    };
    check_id(
        &w.intervention_id,
        &format!("{prefix}.intervention_id"),
        &mut v,
    );
    check_id(&w.practice_code, &format!("{prefix}.practice_code"), &mut v);
    if w.title.trim().is_empty() {
        v.add(format!("{prefix}.title"), "required");
    }
    check_text(
        &w.title,
        MAX_TITLE_CHARS,
        &format!("{prefix}.title"),
        &mut v,
    );
    check_text(
        &w.narrative,
        MAX_NARRATIVE_CHARS,
        &format!("{prefix}.narrative"),
        &mut v,
    );
    let start = month_from_wire(&w.start_month, &format!("{prefix}.start_month"), &mut v);
    let end = if w.end_month.is_empty() {
        None
    } else {
        month_from_wire(&w.end_month, &format!("{prefix}.end_month"), &mut v)
    };
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        v.add(
            format!("{prefix}.end_month"),
            format!("{e} is before the start month {s}"),
        );
    }
    let unit_types = unit_types(&w.unit_types, prefix, &mut v);
    let metrics = metrics(&w.target_metric_ids, prefix, &mut v);
    match start {
        Some(start) if v.is_empty() => Ok(Intervention {
            id: w.intervention_id,
            practice_code: w.practice_code,
            title: w.title,
            start,
            end,
            unit_types,
            metrics,
            narrative: w.narrative,
            revision: 0,
        }),
        _ => Err(v),
    }
}

/// The wire form of a stored intervention (for the facility's own systems only).
pub fn intervention_to_wire(i: &Intervention) -> pb::Intervention {
    pb::Intervention {
        intervention_id: i.id.clone(),
        practice_code: i.practice_code.clone(),
        title: i.title.clone(),
        start_month: i.start.to_string(),
        end_month: i.end.map(|m| m.to_string()).unwrap_or_default(),
        unit_types: i.unit_types.iter().map(|u| *u as i32).collect(),
        target_metric_ids: i.metrics.clone(),
        narrative: i.narrative.clone(),
        revision: i.revision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire() -> pb::Intervention {
        pb::Intervention {
            intervention_id: "bundle-1".into(),
            practice_code: "fall-bundle".into(),
            title: "Fall bundle".into(),
            start_month: "2025-01".into(),
            unit_types: vec![UnitType::MedSurg as i32],
            target_metric_ids: vec!["falls".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_good_intervention_round_trips() {
        let i = intervention_from_wire(Some(wire()), "intervention").unwrap();
        assert_eq!(intervention_to_wire(&i), wire());
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = pb::Intervention {
            intervention_id: "has space".into(),
            practice_code: String::new(),
            title: " ".into(),
            start_month: "2025-13".into(),
            end_month: "2024-01".into(),
            unit_types: vec![0, 99],
            target_metric_ids: vec!["".into()],
            ..Default::default()
        };
        let v = intervention_from_wire(Some(bad), "intervention").unwrap_err();
        let fields: Vec<&str> = v.iter().map(|x| x.field.as_str()).collect();
        for f in [
            "intervention.intervention_id",
            "intervention.practice_code",
            "intervention.title",
            "intervention.start_month",
            "intervention.unit_types[0]",
            "intervention.unit_types[1]",
            "intervention.target_metric_ids[0]",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        let mut backwards = wire();
        backwards.end_month = "2024-12".into();
        let v = intervention_from_wire(Some(backwards), "intervention").unwrap_err();
        assert_eq!(v.iter().next().unwrap().field, "intervention.end_month");
    }
}
