//! Peer groups from registry attributes: bed-size band, teaching status, facility type, census
//! region, urban/rural.
//!
//! Rates are only comparable among similar facilities (a critical access hospital is not a
//! 600-bed academic center), so every benchmark can be narrowed to a peer group. The attributes
//! live in the gateway's registry (`[facilities.peer]`), written as the proto enum names without
//! their prefix (`teaching = "major"`), and are checked at load.

use crate::metric::catalogue::enum_value;
use psonet_core::pb;
use psonet_core::violations::FieldViolations;
use serde::{Deserialize, Serialize};

/// Adds `key=value` — a registry attribute (`bed_size_band` or `beds`, `teaching`,
/// `facility_type` or `type`, `region`, `urbanicity`) and one of its values — to `group`: the
/// one reader of peer groups written as text, for `psonet --peer` flags and the `peer_group:`
/// line of guidance.
pub fn add_attribute(group: &mut pb::PeerGroup, key: &str, value: &str) -> Result<(), String> {
    let (list, parsed) = match key.trim() {
        "bed_size_band" | "beds" => (
            &mut group.bed_size_bands,
            enum_value(value, "BED_SIZE_BAND_", |s| {
                pb::BedSizeBand::from_str_name(s).map(|v| v as i32)
            }),
        ),
        "teaching" => (
            &mut group.teaching,
            enum_value(value, "TEACHING_STATUS_", |s| {
                pb::TeachingStatus::from_str_name(s).map(|v| v as i32)
            }),
        ),
        "facility_type" | "type" => (
            &mut group.facility_types,
            enum_value(value, "FACILITY_TYPE_", |s| {
                pb::FacilityType::from_str_name(s).map(|v| v as i32)
            }),
        ),
        "region" => (
            &mut group.regions,
            enum_value(value, "CENSUS_REGION_", |s| {
                pb::CensusRegion::from_str_name(s).map(|v| v as i32)
            }),
        ),
        "urbanicity" => (
            &mut group.urbanicity,
            enum_value(value, "URBANICITY_", |s| {
                pb::Urbanicity::from_str_name(s).map(|v| v as i32)
            }),
        ),
        other => {
            return Err(format!(
                "unknown attribute {other:?} (bed_size_band, teaching, facility_type, region, \
                 urbanicity)"
            ));
        }
    };
    match parsed.filter(|v| *v != 0) {
        Some(v) => {
            list.push(v);
            Ok(())
        }
        None => Err(format!("{}={}: unknown value", key.trim(), value.trim())),
    }
}

/// A facility's peer attributes as written in the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerAttributesConfig {
    /// Staffed beds (the band is derived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beds: Option<u32>,
    /// `major`, `graduate`, `undergraduate` or `non_teaching`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teaching: Option<String>,
    /// `general_acute`, `critical_access`, `childrens`, `long_term_acute`, `rehabilitation`,
    /// `psychiatric`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility_type: Option<String>,
    /// `northeast`, `midwest`, `south` or `west`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `urban` or `rural`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urbanicity: Option<String>,
}

/// Checked attributes (proto enum values; 0 = not recorded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerAttributes {
    bed_size_band: i32,
    teaching: i32,
    facility_type: i32,
    region: i32,
    urbanicity: i32,
}

/// NDNQI-style band of a bed count.
pub fn bed_size_band(beds: u32) -> pb::BedSizeBand {
    use pb::BedSizeBand as B;
    match beds {
        0..=99 => B::Under100,
        100..=199 => B::BedSizeBand100To199,
        200..=299 => B::BedSizeBand200To299,
        300..=399 => B::BedSizeBand300To399,
        400..=499 => B::BedSizeBand400To499,
        _ => B::BedSizeBand500Plus,
    }
}

fn attribute(
    text: &Option<String>,
    key: &str,
    prefix: &str,
    parse: impl Fn(&str) -> Option<i32>,
) -> Result<i32, (String, String)> {
    match text {
        None => Ok(0),
        Some(t) => enum_value(t, prefix, parse)
            .filter(|v| *v != 0)
            .ok_or((key.to_string(), format!("unknown value {t:?}"))),
    }
}

impl PeerAttributesConfig {
    /// True when no attribute is recorded.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The checked attributes; `Err((key, why))` for an unknown value.
    pub fn check(&self) -> Result<PeerAttributes, (String, String)> {
        Ok(PeerAttributes {
            bed_size_band: self.beds.map_or(0, |b| bed_size_band(b) as i32),
            teaching: attribute(&self.teaching, "teaching", "TEACHING_STATUS_", |s| {
                pb::TeachingStatus::from_str_name(s).map(|v| v as i32)
            })?,
            facility_type: attribute(
                &self.facility_type,
                "facility_type",
                "FACILITY_TYPE_",
                |s| pb::FacilityType::from_str_name(s).map(|v| v as i32),
            )?,
            region: attribute(&self.region, "region", "CENSUS_REGION_", |s| {
                pb::CensusRegion::from_str_name(s).map(|v| v as i32)
            })?,
            urbanicity: attribute(&self.urbanicity, "urbanicity", "URBANICITY_", |s| {
                pb::Urbanicity::from_str_name(s).map(|v| v as i32)
            })?,
        })
    }
}

/// A checked peer group: which attribute values qualify (empty = any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerGroup {
    bed_size_bands: Vec<i32>,
    teaching: Vec<i32>,
    facility_types: Vec<i32>,
    regions: Vec<i32>,
    urbanicity: Vec<i32>,
}

fn listed(
    values: &[i32],
    field: String,
    known: impl Fn(i32) -> bool,
    v: &mut FieldViolations,
) -> Vec<i32> {
    for (i, value) in values.iter().enumerate() {
        if *value == 0 || !known(*value) {
            v.add(
                format!("{field}[{i}]"),
                format!("{value} is not a known value"),
            );
        }
    }
    values.to_vec()
}

impl PeerGroup {
    /// The group a request asks for; unknown values are field violations under `field`.
    pub fn from_wire(wire: Option<&pb::PeerGroup>, field: &str, v: &mut FieldViolations) -> Self {
        let Some(g) = wire else {
            return Self::default();
        };
        let f = |name: &str| format!("{field}.{name}");
        Self {
            bed_size_bands: listed(
                &g.bed_size_bands,
                f("bed_size_bands"),
                |x| pb::BedSizeBand::try_from(x).is_ok(),
                v,
            ),
            teaching: listed(
                &g.teaching,
                f("teaching"),
                |x| pb::TeachingStatus::try_from(x).is_ok(),
                v,
            ),
            facility_types: listed(
                &g.facility_types,
                f("facility_types"),
                |x| pb::FacilityType::try_from(x).is_ok(),
                v,
            ),
            regions: listed(
                &g.regions,
                f("regions"),
                |x| pb::CensusRegion::try_from(x).is_ok(),
                v,
            ),
            urbanicity: listed(
                &g.urbanicity,
                f("urbanicity"),
                |x| pb::Urbanicity::try_from(x).is_ok(),
                v,
            ),
        }
    }

    /// Whether a facility with `attributes` belongs to the group.
    pub fn contains(&self, a: &PeerAttributes) -> bool {
        let fits = |wanted: &[i32], value: i32| wanted.is_empty() || wanted.contains(&value);
        fits(&self.bed_size_bands, a.bed_size_band)
            && fits(&self.teaching, a.teaching)
            && fits(&self.facility_types, a.facility_type)
            && fits(&self.regions, a.region)
            && fits(&self.urbanicity, a.urbanicity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_match_on_every_listed_attribute() {
        let small_rural = PeerAttributesConfig {
            beds: Some(80),
            urbanicity: Some("rural".into()),
            teaching: Some("non-teaching".into()),
            ..Default::default()
        }
        .check()
        .unwrap();
        let mut v = FieldViolations::new();
        let wire = pb::PeerGroup {
            bed_size_bands: vec![pb::BedSizeBand::Under100 as i32],
            urbanicity: vec![pb::Urbanicity::Rural as i32],
            ..Default::default()
        };
        let group = PeerGroup::from_wire(Some(&wire), "peer_group", &mut v);
        assert!(v.is_empty());
        assert!(group.contains(&small_rural));
        assert!(!group.contains(&PeerAttributes::default()));
        assert!(PeerGroup::default().contains(&PeerAttributes::default()));
        let bad = pb::PeerGroup {
            regions: vec![99],
            ..Default::default()
        };
        PeerGroup::from_wire(Some(&bad), "peer_group", &mut v);
        assert_eq!(v.iter().next().unwrap().field, "peer_group.regions[0]");
        assert!(
            PeerAttributesConfig {
                region: Some("mars".into()),
                ..Default::default()
            }
            .check()
            .is_err()
        );
    }
}
