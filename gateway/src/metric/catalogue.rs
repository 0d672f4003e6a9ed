//! The metric catalogue: named, versioned benchmark definitions (numerator filter, denominator,
//! multiplier), so adding a metric is a change to `gateway.toml`, not to code.
//!
//! The built-in metrics cover what PSOs publish most (falls, falls with harm, medication events
//! with harm, pressure injuries, surgical events, the reporting rate); a `[[metrics]]` entry
//! with a built-in id replaces that definition, any other id adds one. Values are written as in
//! the proto enums without their prefix, in any case (`categories = ["fall"]`,
//! `ncc_merp = ["E", "F"]`, `denominator = "patient_days"`), and checked when the config loads.

use psonet_core::pb;
use psonet_serve::config_file::ConfigError;
use psonet_serve::identity::check_name;
use serde::{Deserialize, Serialize};

/// One metric as written in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// Stable id, e.g. `falls` (lower-case letters, digits and dashes).
    pub id: String,
    /// Definition version; bump it whenever the definition changes.
    #[serde(default = "one")]
    pub version: u32,
    /// Display name.
    pub name: String,
    /// What it counts and why.
    #[serde(default)]
    pub description: String,
    /// The events counted.
    #[serde(default)]
    pub numerator: NumeratorConfig,
    /// The exposure: `patient_days`, `admissions`, `procedures`, `medication_doses`,
    /// `device_days`.
    pub denominator: String,
    /// Rates are events / exposure × multiplier.
    #[serde(default = "thousand")]
    pub multiplier: u32,
    /// Unit of a rate, e.g. "per 1,000 patient days".
    #[serde(default)]
    pub unit: String,
    /// True when a higher rate is better (reporting rates).
    #[serde(default)]
    pub higher_is_better: bool,
}

fn one() -> u32 {
    1
}

fn thousand() -> u32 {
    1000
}

/// The numerator filter: events matching any listed value of every listed field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumeratorConfig {
    /// Event categories (at most one: an event has several).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Event types (`incident`, `near_miss`, `unsafe_condition`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
    /// Harm levels (`no_harm`, `mild`, `moderate`, `severe`, `death`, `unknown`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub harms: Vec<String>,
    /// Unit types (also restricts the exposure).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unit_types: Vec<String>,
    /// NCC MERP categories (`A` … `I`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ncc_merp: Vec<String>,
}

/// The checked catalogue, in order: built-ins (possibly replaced) then additions.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricCatalogue {
    metrics: Vec<pb::Metric>,
}

impl MetricCatalogue {
    /// The built-in metrics with `extra` applied, each checked; errors name `metrics[i]`.
    pub fn build(extra: &[MetricConfig]) -> Result<Self, ConfigError> {
        let mut metrics = Vec::new();
        for (i, config) in builtin().iter().chain(extra).enumerate() {
            let metric = metric_from_config(config).map_err(|(field, why)| {
                let i = i.checked_sub(builtin().len()).unwrap_or(i);
                ConfigError::invalid(format!("metrics[{i}].{field}"), why)
            })?;
            match metrics
                .iter_mut()
                .find(|m: &&mut pb::Metric| m.id == metric.id)
            {
                Some(existing) => *existing = metric,
                None => metrics.push(metric),
            }
        }
        Ok(Self { metrics })
    }

    /// Every metric.
    pub fn metrics(&self) -> &[pb::Metric] {
        &self.metrics
    }

    /// The metric `id`.
    pub fn get(&self, id: &str) -> Option<&pb::Metric> {
        self.metrics.iter().find(|m| m.id == id)
    }

    /// The ids, comma-separated (for error messages).
    pub fn ids(&self) -> String {
        let ids: Vec<&str> = self.metrics.iter().map(|m| m.id.as_str()).collect();
        ids.join(", ")
    }
}

impl Default for MetricCatalogue {
    fn default() -> Self {
        Self::build(&[]).unwrap_or(Self {
            metrics: Vec::new(),
        })
    }
}

type FieldError = (&'static str, String);

fn metric_from_config(c: &MetricConfig) -> Result<pb::Metric, FieldError> {
    check_name(&c.id).map_err(|e| ("id", e.to_string()))?;
    if c.name.trim().is_empty() {
        return Err(("name", "must not be empty".into()));
    }
    if c.multiplier == 0 {
        return Err(("multiplier", "must be at least 1".into()));
    }
    let denominator = enum_value(&c.denominator, "DENOMINATOR_TYPE_", |s| {
        pb::DenominatorType::from_str_name(s).map(|v| v as i32)
    })
    .filter(|v| *v != 0)
    .ok_or((
        "denominator",
        format!("unknown denominator {:?}", c.denominator),
    ))?;
    Ok(pb::Metric {
        id: c.id.clone(),
        version: c.version,
        name: c.name.clone(),
        description: c.description.clone(),
        numerator: Some(filter_from_config(&c.numerator)?),
        denominator,
        multiplier: f64::from(c.multiplier),
        unit: c.unit.clone(),
        higher_is_better: c.higher_is_better,
    })
}

fn filter_from_config(n: &NumeratorConfig) -> Result<pb::AggregateFilter, FieldError> {
    if n.categories.len() > 1 {
        return Err((
            "numerator.categories",
            "at most one category (an event can have several, so a list would count it twice)"
                .into(),
        ));
    }
    Ok(pb::AggregateFilter {
        categories: values(
            &n.categories,
            "numerator.categories",
            "EVENT_CATEGORY_",
            |s| pb::EventCategory::from_str_name(s).map(|v| v as i32),
        )?,
        event_types: values(
            &n.event_types,
            "numerator.event_types",
            "EVENT_TYPE_",
            |s| pb::EventType::from_str_name(s).map(|v| v as i32),
        )?,
        harms: values(&n.harms, "numerator.harms", "HARM_LEVEL_", |s| {
            pb::HarmLevel::from_str_name(s).map(|v| v as i32)
        })?,
        unit_types: values(&n.unit_types, "numerator.unit_types", "UNIT_TYPE_", |s| {
            pb::UnitType::from_str_name(s).map(|v| v as i32)
        })?,
        ncc_merp: values(
            &n.ncc_merp,
            "numerator.ncc_merp",
            "NCC_MERP_CATEGORY_",
            |s| pb::NccMerpCategory::from_str_name(s).map(|v| v as i32),
        )?,
        ..Default::default()
    })
}

/// A metric's denominator in words ("patient days"), for messages and axis labels.
pub fn denominator_label(metric: &pb::Metric) -> String {
    pb::DenominatorType::try_from(metric.denominator)
        .map(|d| {
            d.as_str_name()
                .trim_start_matches("DENOMINATOR_TYPE_")
                .to_lowercase()
        })
        .unwrap_or_default()
        .replace('_', " ")
}

/// `text` (e.g. `near_miss`) as the value of the proto enum whose names start with `prefix`.
pub fn enum_value(text: &str, prefix: &str, parse: impl Fn(&str) -> Option<i32>) -> Option<i32> {
    let upper = text.trim().to_uppercase().replace(['-', ' '], "_");
    parse(&upper).or_else(|| parse(&format!("{prefix}{upper}")))
}

fn values(
    texts: &[String],
    field: &'static str,
    prefix: &str,
    parse: impl Fn(&str) -> Option<i32>,
) -> Result<Vec<i32>, FieldError> {
    texts
        .iter()
        .map(|t| {
            enum_value(t, prefix, &parse)
                .filter(|v| *v != 0)
                .ok_or((field, format!("unknown value {t:?}")))
        })
        .collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

fn per_patient_days(id: &str, name: &str, description: &str, n: NumeratorConfig) -> MetricConfig {
    MetricConfig {
        id: id.into(),
        version: 1,
        name: name.into(),
        description: description.into(),
        numerator: n,
        denominator: "patient_days".into(),
        multiplier: 1000,
        unit: "per 1,000 patient days".into(),
        higher_is_better: false,
    }
}

/// The built-in metrics.
pub fn builtin() -> Vec<MetricConfig> {
    let harm = strings(&["mild", "moderate", "severe", "death"]);
    vec![
        per_patient_days(
            "falls",
            "Falls",
            "Patient falls per 1,000 patient days (NDNQI total falls; NQF #0141).",
            NumeratorConfig {
                categories: strings(&["fall"]),
                ..Default::default()
            },
        ),
        per_patient_days(
            "falls-with-injury",
            "Falls with injury",
            "Falls that reached the patient with harm (AHRQ harm mild or worse) per 1,000 patient days \
             (NDNQI injurious falls; NQF #0202).",
            NumeratorConfig {
                categories: strings(&["fall"]),
                harms: harm,
                ..Default::default()
            },
        ),
        per_patient_days(
            "medication-harm",
            "Medication events with harm",
            "Medication events in NCC MERP categories E to I (harm or death) per 1,000 patient days.",
            NumeratorConfig {
                categories: strings(&["medication"]),
                ncc_merp: strings(&["E", "F", "G", "H", "I"]),
                ..Default::default()
            },
        ),
        per_patient_days(
            "pressure-injuries",
            "Pressure injuries",
            "Hospital-acquired pressure injuries, all stages, per 1,000 patient days. Stage 2+ needs \
             a pressure-injury stage dimension at the nodes, which aggregates do not have yet.",
            NumeratorConfig {
                categories: strings(&["pressure_injury"]),
                ..Default::default()
            },
        ),
        MetricConfig {
            id: "surgical-events".into(),
            version: 1,
            name: "Surgical events".into(),
            description: "Surgery events (incl. invasive procedures) per 100 procedures.".into(),
            numerator: NumeratorConfig {
                categories: strings(&["surgery"]),
                ..Default::default()
            },
            denominator: "procedures".into(),
            multiplier: 100,
            unit: "per 100 procedures".into(),
            higher_is_better: false,
        },
        MetricConfig {
            higher_is_better: true,
            ..per_patient_days(
                "reporting-rate",
                "Event reporting rate",
                "Every report (incidents, near misses, unsafe conditions) per 1,000 patient days: a \
                 safety-culture indicator where more reporting is better.",
                NumeratorConfig::default(),
            )
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load_and_config_entries_replace_or_add() {
        let catalogue = MetricCatalogue::build(&[]).unwrap();
        assert_eq!(catalogue.metrics().len(), builtin().len());
        let falls = catalogue.get("falls").unwrap();
        assert_eq!(
            falls.numerator.as_ref().unwrap().categories,
            [pb::EventCategory::Fall as i32]
        );
        let mut changed = builtin()[0].clone();
        changed.version = 2;
        let added = MetricConfig {
            id: "vte".into(),
            name: "VTE".into(),
            numerator: NumeratorConfig {
                categories: strings(&["VTE"]),
                ..Default::default()
            },
            ..builtin()[0].clone()
        };
        let catalogue = MetricCatalogue::build(&[changed, added]).unwrap();
        assert_eq!(catalogue.get("falls").unwrap().version, 2);
        assert_eq!(catalogue.metrics().len(), builtin().len() + 1);
    }

    #[test]
    fn bad_entries_name_their_field() {
        let bad = MetricConfig {
            denominator: "bed_days".into(),
            ..builtin()[0].clone()
        };
        let err = MetricCatalogue::build(&[bad]).unwrap_err().to_string();
        assert!(err.starts_with("metrics[0].denominator"), "{err}");
        let two = MetricConfig {
            numerator: NumeratorConfig {
                categories: strings(&["fall", "medication"]),
                ..Default::default()
            },
            ..builtin()[0].clone()
        };
        let err = MetricCatalogue::build(&[two]).unwrap_err().to_string();
        assert!(err.starts_with("metrics[0].numerator.categories"), "{err}");
    }
}
