//! The NDJSON file format of `psonet submit`: one JSON object a line, an event or an exposure
//! record. Enum values are the proto names with or without their prefix (`"FALL"` or
//! `"EVENT_CATEGORY_FALL"`), so files written by hand and by grpcurl both work.

use anyhow::{Context, Result, anyhow};
use psonet_core::pb;
use serde::{Deserialize, Serialize};

/// One line of an NDJSON file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Line {
    /// Patient days of a unit type in a month.
    Exposure(ExposureLine),
    /// An event report.
    Event(EventLine),
}

/// An event as written in a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLine {
    /// Client-chosen key, unique per event.
    pub idempotency_key: String,
    /// `INCIDENT`, `NEAR_MISS` or `UNSAFE_CONDITION`.
    pub event_type: String,
    /// Categories, e.g. `["FALL"]`.
    pub categories: Vec<String>,
    /// Harm level (incidents only), e.g. `MILD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harm: Option<String>,
    /// `YYYY-MM`.
    pub discovery_month: String,
    /// Unit type, e.g. `MED_SURG`.
    pub unit_type: String,
    /// Free text (stays on the node).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub narrative: String,
    /// `CFER_H_V1_2` or `CFER_H_V2_0` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cf_version: Option<String>,
}

/// An exposure record as written in a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposureLine {
    /// `YYYY-MM`.
    pub month: String,
    /// Unit type, e.g. `MED_SURG`.
    pub unit_type: String,
    /// Patient days.
    pub patient_days: u64,
}

fn enum_value(prefix: &str, text: &str, parse: fn(&str) -> Option<i32>) -> Result<i32> {
    let full = if text.starts_with(prefix) {
        text.to_string()
    } else {
        format!("{prefix}{text}")
    };
    parse(&full).ok_or_else(|| anyhow!("{text:?} is not a known {}", prefix.trim_end_matches('_')))
}

fn event_type(s: &str) -> Result<i32> {
    enum_value("EVENT_TYPE_", s, |n| {
        pb::EventType::from_str_name(n).map(|v| v as i32)
    })
}
fn category(s: &str) -> Result<i32> {
    enum_value("EVENT_CATEGORY_", s, |n| {
        pb::EventCategory::from_str_name(n).map(|v| v as i32)
    })
}
fn harm(s: &str) -> Result<i32> {
    enum_value("HARM_LEVEL_", s, |n| {
        pb::HarmLevel::from_str_name(n).map(|v| v as i32)
    })
}
fn unit(s: &str) -> Result<i32> {
    enum_value("UNIT_TYPE_", s, |n| {
        pb::UnitType::from_str_name(n).map(|v| v as i32)
    })
}
fn cf_version(s: &str) -> Result<i32> {
    enum_value("COMMON_FORMATS_VERSION_", s, |n| {
        pb::CommonFormatsVersion::from_str_name(n).map(|v| v as i32)
    })
}

fn short(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_string()
}

impl EventLine {
    /// The wire event; unknown enum names are errors naming the field.
    pub fn to_wire(&self) -> Result<pb::Event> {
        Ok(pb::Event {
            idempotency_key: self.idempotency_key.clone(),
            cf_version: self
                .cf_version
                .as_deref()
                .map(cf_version)
                .transpose()
                .context("cf_version")?
                .unwrap_or(0),
            event_type: event_type(&self.event_type).context("event_type")?,
            categories: self
                .categories
                .iter()
                .map(|c| category(c))
                .collect::<Result<_>>()
                .context("categories")?,
            harm: self
                .harm
                .as_deref()
                .map(harm)
                .transpose()
                .context("harm")?
                .unwrap_or(0),
            discovery_month: self.discovery_month.clone(),
            unit_type: unit(&self.unit_type).context("unit_type")?,
            narrative: self.narrative.clone(),
        })
    }

    /// The file form of a wire event.
    pub fn from_wire(e: &pb::Event) -> Self {
        let name =
            |v: Option<&'static str>, prefix: &str| short(v.unwrap_or("UNSPECIFIED"), prefix);
        Self {
            idempotency_key: e.idempotency_key.clone(),
            event_type: name(
                pb::EventType::try_from(e.event_type)
                    .ok()
                    .map(|v| v.as_str_name()),
                "EVENT_TYPE_",
            ),
            categories: e
                .categories
                .iter()
                .map(|c| {
                    name(
                        pb::EventCategory::try_from(*c)
                            .ok()
                            .map(|v| v.as_str_name()),
                        "EVENT_CATEGORY_",
                    )
                })
                .collect(),
            harm: (e.harm != 0).then(|| {
                name(
                    pb::HarmLevel::try_from(e.harm)
                        .ok()
                        .map(|v| v.as_str_name()),
                    "HARM_LEVEL_",
                )
            }),
            discovery_month: e.discovery_month.clone(),
            unit_type: name(
                pb::UnitType::try_from(e.unit_type)
                    .ok()
                    .map(|v| v.as_str_name()),
                "UNIT_TYPE_",
            ),
            narrative: e.narrative.clone(),
            cf_version: None,
        }
    }
}

impl ExposureLine {
    /// The wire record.
    pub fn to_wire(&self) -> Result<pb::ExposureRecord> {
        Ok(pb::ExposureRecord {
            month: self.month.clone(),
            unit_type: unit(&self.unit_type).context("unit_type")?,
            patient_days: self.patient_days,
        })
    }

    /// The file form of a wire record.
    pub fn from_wire(r: &pb::ExposureRecord) -> Self {
        let unit = pb::UnitType::try_from(r.unit_type).map_or("UNSPECIFIED", |u| u.as_str_name());
        Self {
            month: r.month.clone(),
            unit_type: short(unit, "UNIT_TYPE_"),
            patient_days: r.patient_days,
        }
    }
}

/// Parses one line (1-based `number` for messages).
pub fn parse_line(number: usize, text: &str) -> Result<Line> {
    serde_json::from_str(text)
        .with_context(|| format!("line {number}: not an event or exposure record"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_short_or_full_enum_names() {
        let e = parse_line(1, r#"{"idempotency_key":"a","event_type":"INCIDENT","categories":["FALL","EVENT_CATEGORY_MEDICATION"],"harm":"MILD","discovery_month":"2026-01","unit_type":"MED_SURG"}"#).unwrap();
        let Line::Event(e) = e else {
            panic!("not an event")
        };
        let wire = e.to_wire().unwrap();
        assert_eq!(wire.categories, [3, 5]);
        assert_eq!(
            EventLine::from_wire(&wire).categories,
            ["FALL", "MEDICATION"]
        );
        let x = parse_line(
            2,
            r#"{"month":"2026-01","unit_type":"ICU","patient_days":5}"#,
        )
        .unwrap();
        let Line::Exposure(x) = x else {
            panic!("not exposure")
        };
        assert!(x.to_wire().is_err());
        assert!(parse_line(3, r#"{"month":"2026-01"}"#).is_err());
    }
}
