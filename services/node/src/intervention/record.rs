//! How the store keeps an intervention: a protobuf message defined here (never the API's), so
//! the API may change without stranding stored interventions. Field numbers are the node's and
//! are never reused; months are kept as their index, unit types as their numbers.

use super::definition::Intervention;
use crate::record::RecordError;
use prost::Message;
use psonet_core::event::UnitType;
use psonet_core::month::Month;

/// The encoded form of an intervention.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct InterventionRecord {
    /// Practice code.
    #[prost(string, tag = "1")]
    pub practice_code: String,
    /// Title.
    #[prost(string, tag = "2")]
    pub title: String,
    /// Start month's index.
    #[prost(uint32, tag = "3")]
    pub start: u32,
    /// End month's index, when ended.
    #[prost(uint32, optional, tag = "4")]
    pub end: Option<u32>,
    /// Unit types, as numbers.
    #[prost(int32, repeated, tag = "5")]
    pub unit_types: Vec<i32>,
    /// Metric ids.
    #[prost(string, repeated, tag = "6")]
    pub metrics: Vec<String>,
    /// Narrative.
    #[prost(string, tag = "7")]
    pub narrative: String,
    /// Revision.
    #[prost(uint32, tag = "8")]
    pub revision: u32,
    /// Why each amendment was made, oldest first.
    #[prost(string, repeated, tag = "9")]
    pub amendment_reasons: Vec<String>,
}

impl InterventionRecord {
    /// The record of `i`, with the amendment reasons so far.
    pub fn new(i: &Intervention, amendment_reasons: Vec<String>) -> Self {
        Self {
            practice_code: i.practice_code.clone(),
            title: i.title.clone(),
            start: i.start.index(),
            end: i.end.map(Month::index),
            unit_types: i.unit_types.iter().map(|u| *u as i32).collect(),
            metrics: i.metrics.clone(),
            narrative: i.narrative.clone(),
            revision: i.revision,
            amendment_reasons,
        }
    }

    /// Decodes stored bytes.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        Ok(Self::decode(bytes)?)
    }

    /// The intervention stored under `id`.
    pub fn read(&self, id: &str) -> Result<Intervention, RecordError> {
        let month = |index: u32, field| Month::from_index(index).ok_or(RecordError::Time(field));
        let unit_types = self
            .unit_types
            .iter()
            .map(|&value| {
                UnitType::try_from(value).map_err(|_| RecordError::Unknown {
                    field: "unit_types",
                    value,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Intervention {
            id: id.to_string(),
            practice_code: self.practice_code.clone(),
            title: self.title.clone(),
            start: month(self.start, "start")?,
            end: self.end.map(|e| month(e, "end")).transpose()?,
            unit_types,
            metrics: self.metrics.clone(),
            narrative: self.narrative.clone(),
            revision: self.revision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intervention_reads_back_as_written() {
        let i = Intervention {
            id: "falls-2025".into(),
            practice_code: "fall-bundle".into(),
            title: "Hourly rounding".into(),
            start: "2025-03".parse().unwrap(),
            end: Some("2025-12".parse().unwrap()),
            unit_types: vec![UnitType::MedSurg, UnitType::Medical],
            metrics: vec!["falls".into()],
            narrative: "Rounding every hour on nights.".into(),
            revision: 2,
        };
        let bytes = InterventionRecord::new(&i, vec!["typo".into()]).encode_to_vec();
        let back = InterventionRecord::decode_bytes(&bytes).unwrap();
        assert_eq!(back.read("falls-2025").unwrap(), i);
        assert_eq!(back.amendment_reasons, ["typo"]);
    }
}
