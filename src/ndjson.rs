//! Event files: NDJSON and CSV, one event or exposure record per line or row.
//!
//! Lines are the proto3 JSON form of `psonet.v1.Event` and `psonet.v1.ExposureRecord` (proto
//! field names), read through the API's own descriptors, so every element of the Common
//! Formats model — category modules included — is accepted without a hand-kept mapping. Two
//! conveniences on top: enum values may drop their prefix (`"FALL"` for
//! `"EVENT_CATEGORY_FALL"`), and an exposure line may say `"patient_days": N`. A CSV file has a
//! header of the same names (`fall.injury` for module fields) and `;` between list values.

use anyhow::{Context, Result, anyhow, bail};
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, SerializeOptions,
};
use psonet_core::pb;
use serde_json::{Map, Value};

/// One line of a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// Exposure of a unit type in a month.
    Exposure(pb::ExposureRecord),
    /// An event report (boxed: it is much larger than an exposure record).
    Event(Box<pb::Event>),
}

/// Reads and writes lines with the API's descriptors.
pub struct Codec {
    event: MessageDescriptor,
    exposure: MessageDescriptor,
}

impl Codec {
    /// A codec over the compiled `psonet.v1` descriptors.
    pub fn new() -> Result<Self> {
        let pool = DescriptorPool::decode(psonet_proto::FILE_DESCRIPTOR_SET)
            .context("decoding the API descriptors")?;
        let find = |name: &str| {
            pool.get_message_by_name(name)
                .ok_or_else(|| anyhow!("{name} missing from the API descriptors"))
        };
        Ok(Self {
            event: find("psonet.v1.Event")?,
            exposure: find("psonet.v1.ExposureRecord")?,
        })
    }

    /// Parses one NDJSON line.
    pub fn parse_json(&self, text: &str) -> Result<Line> {
        let value: Value = serde_json::from_str(text).context("not JSON")?;
        self.parse_value(value)
    }

    /// Parses one object (from JSON or a CSV row).
    pub fn parse_value(&self, value: Value) -> Result<Line> {
        let Value::Object(mut map) = value else {
            bail!("expected a JSON object");
        };
        if map.contains_key("discovery_month") || map.contains_key("idempotency_key") {
            normalize(&mut map, &self.event)?;
            Ok(Line::Event(Box::new(self.decode(map, &self.event)?)))
        } else if map.contains_key("month") {
            if let Some(days) = map.remove("patient_days") {
                map.insert("denominator".into(), "PATIENT_DAYS".into());
                map.insert("value".into(), days);
            }
            normalize(&mut map, &self.exposure)?;
            Ok(Line::Exposure(self.decode(map, &self.exposure)?))
        } else {
            bail!("neither an event (idempotency_key, discovery_month, …) nor exposure (month, …)")
        }
    }

    fn decode<T: prost::Message + Default>(
        &self,
        map: Map<String, Value>,
        desc: &MessageDescriptor,
    ) -> Result<T> {
        let options = DeserializeOptions::new().deny_unknown_fields(true);
        let message =
            DynamicMessage::deserialize_with_options(desc.clone(), Value::Object(map), &options)?;
        Ok(message.transcode_to()?)
    }

    /// The NDJSON line of an event, with short enum names and default fields left out.
    pub fn event_json(&self, event: &pb::Event) -> Result<String> {
        self.to_json(event, &self.event)
    }

    /// The NDJSON line of an exposure record.
    pub fn exposure_json(&self, record: &pb::ExposureRecord) -> Result<String> {
        self.to_json(record, &self.exposure)
    }

    fn to_json<T: prost::Message>(&self, message: &T, desc: &MessageDescriptor) -> Result<String> {
        let mut dynamic = DynamicMessage::new(desc.clone());
        dynamic.transcode_from(message)?;
        let options = SerializeOptions::new()
            .use_proto_field_name(true)
            .skip_default_fields(true);
        let mut value = dynamic.serialize_with_options(serde_json::value::Serializer, &options)?;
        if let Value::Object(map) = &mut value {
            shorten(map, desc);
        }
        Ok(serde_json::to_string(&value)?)
    }
}

/// The prefix every value of an enum shares (`EVENT_TYPE_` from `EVENT_TYPE_UNSPECIFIED`).
fn enum_prefix(e: &prost_reflect::EnumDescriptor) -> String {
    e.values()
        .next()
        .map(|v| v.name().trim_end_matches("UNSPECIFIED").to_string())
        .unwrap_or_default()
}

/// Makes hand-written and CSV values proto3 JSON: full enum names, lists from `a;b`, numbers
/// from digit strings, empty values dropped.
fn normalize(map: &mut Map<String, Value>, desc: &MessageDescriptor) -> Result<()> {
    map.retain(|_, v| !matches!(v, Value::String(s) if s.is_empty()) && !v.is_null());
    for (name, value) in map.iter_mut() {
        let Some(field) = desc
            .get_field_by_name(name)
            .or_else(|| desc.get_field_by_json_name(name))
        else {
            continue; // deny_unknown_fields reports it
        };
        if field.is_list()
            && let Value::String(s) = value
        {
            *value = Value::Array(
                s.split(';')
                    .map(|x| Value::String(x.trim().to_string()))
                    .collect(),
            );
        }
        let items: Vec<&mut Value> = match value {
            Value::Array(items) => items.iter_mut().collect(),
            other => vec![other],
        };
        for item in items {
            match (field.kind(), &mut *item) {
                (Kind::Enum(e), Value::String(s)) => {
                    let prefix = enum_prefix(&e);
                    let upper = s.to_uppercase();
                    *s = if upper.starts_with(&prefix) {
                        upper
                    } else {
                        format!("{prefix}{upper}")
                    };
                }
                (Kind::Uint32 | Kind::Uint64 | Kind::Int32 | Kind::Int64, Value::String(s)) => {
                    let n: u64 = s
                        .trim()
                        .parse()
                        .with_context(|| format!("{name}: {s:?} is not a number"))?;
                    *item = Value::from(n);
                }
                (Kind::Message(m), Value::Object(inner)) => {
                    normalize(inner, &m).with_context(|| name.clone())?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Strips enum prefixes for output (the inverse of [`normalize`]'s enum step).
fn shorten(map: &mut Map<String, Value>, desc: &MessageDescriptor) {
    for (name, value) in map.iter_mut() {
        let Some(field) = desc.get_field_by_name(name) else {
            continue;
        };
        let items: Vec<&mut Value> = match value {
            Value::Array(items) => items.iter_mut().collect(),
            other => vec![other],
        };
        for item in items {
            match (field.kind(), item) {
                (Kind::Enum(e), Value::String(s)) => {
                    let prefix = enum_prefix(&e);
                    if let Some(short) = s.strip_prefix(&prefix) {
                        *s = short.to_string();
                    }
                }
                (Kind::Message(m), Value::Object(inner)) => shorten(inner, &m),
                _ => {}
            }
        }
    }
}

/// Turns a CSV row into the object [`Codec::parse_value`] takes: `a.b` headers nest.
pub fn csv_row(headers: &csv::StringRecord, row: &csv::StringRecord) -> Value {
    let mut map = Map::new();
    for (header, cell) in headers.iter().zip(row.iter()) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        match header.split_once('.') {
            Some((outer, inner)) => {
                let entry = map
                    .entry(outer.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = entry {
                    m.insert(inner.to_string(), Value::String(cell.to_string()));
                }
            }
            None => {
                map.insert(header.to_string(), Value::String(cell.to_string()));
            }
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_short_or_full_enum_names_and_modules() {
        let codec = Codec::new().unwrap();
        let line = r#"{"idempotency_key":"a","event_type":"INCIDENT","categories":["FALL","EVENT_CATEGORY_MEDICATION"],"harm":"MILD","discovery_month":"2026-01","unit_type":"MED_SURG","fall":{"injury":"FRACTURE"},"contributing_factors":["HANDOFF"]}"#;
        let Line::Event(e) = codec.parse_json(line).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(e.categories, [3, 5]);
        assert_eq!(e.fall.unwrap().injury, pb::FallInjury::Fracture as i32);
        let back = codec.event_json(&e).unwrap();
        assert!(
            back.contains(r#""categories":["FALL","MEDICATION"]"#),
            "{back}"
        );
        let Line::Event(again) = codec.parse_json(&back).unwrap() else {
            panic!()
        };
        assert_eq!(again, e);

        let Line::Exposure(x) = codec
            .parse_json(r#"{"month":"2026-01","unit_type":"MED_SURG","patient_days":5}"#)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (x.denominator, x.value),
            (pb::DenominatorType::PatientDays as i32, 5)
        );
        assert!(
            codec
                .parse_json(r#"{"month":"2026-01","unit_type":"ICU","patient_days":5}"#)
                .is_err()
        );
        assert!(
            codec
                .parse_json(r#"{"idempotency_key":"a","colour":"red"}"#)
                .is_err()
        );
        assert!(codec.parse_json(r#"{"something":"else"}"#).is_err());
    }

    #[test]
    fn csv_rows_nest_modules_and_split_lists() {
        let codec = Codec::new().unwrap();
        let headers = csv::StringRecord::from(vec![
            "idempotency_key",
            "event_type",
            "categories",
            "harm",
            "discovery_month",
            "unit_type",
            "perinatal.gestational_age_weeks",
        ]);
        let row = csv::StringRecord::from(vec![
            "p1",
            "INCIDENT",
            "PERINATAL;OTHER",
            "NO_HARM",
            "2026-02",
            "LABOR_DELIVERY",
            "38",
        ]);
        let Line::Event(e) = codec.parse_value(csv_row(&headers, &row)).unwrap() else {
            panic!()
        };
        assert_eq!(e.categories, [6, 12]);
        assert_eq!(e.perinatal.unwrap().gestational_age_weeks, 38);
    }
}
