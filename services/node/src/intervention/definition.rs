//! An intervention: a practice a facility put in place, from a month, on some units, aimed at
//! some metrics.

use psonet_core::event::UnitType;
use psonet_core::month::Month;

/// Longest intervention id, practice code or metric id, in characters.
pub const MAX_ID_CHARS: usize = 64;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest narrative, in characters.
pub const MAX_NARRATIVE_CHARS: usize = 20_000;
/// Most target metrics of one intervention.
pub const MAX_METRICS: usize = 32;

/// A practice the facility adopted, as the node keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervention {
    /// The facility's own id for it (the idempotency key).
    pub id: String,
    /// The practice, e.g. `fall-bundle-2026`.
    pub practice_code: String,
    /// Short title.
    pub title: String,
    /// First month in force.
    pub start: Month,
    /// Last month in force, when ended.
    pub end: Option<Month>,
    /// Unit types covered; empty means all.
    pub unit_types: Vec<UnitType>,
    /// Metric ids targeted; empty means any.
    pub metrics: Vec<String>,
    /// Free text that never leaves the node.
    pub narrative: String,
    /// 1 when recorded, +1 per amendment or end.
    pub revision: u32,
}

impl Intervention {
    /// Whether the intervention is aimed at metric `id` (it names it, or names none).
    pub fn targets(&self, metric_id: &str) -> bool {
        self.metrics.is_empty() || self.metrics.iter().any(|m| m == metric_id)
    }

    /// The same content, ignoring the revision (what idempotency compares).
    pub fn same_content(&self, other: &Intervention) -> bool {
        Intervention {
            revision: 0,
            ..self.clone()
        } == Intervention {
            revision: 0,
            ..other.clone()
        }
    }

    /// The unit-type filter of a series for this intervention and a metric whose own filter is
    /// `metric_units` (raw values, empty = all): the intersection, or `None` when it is empty
    /// (the intervention covers no unit the metric counts).
    pub fn unit_filter(&self, metric_units: &[i32]) -> Option<Vec<i32>> {
        let own: Vec<i32> = self.unit_types.iter().map(|u| *u as i32).collect();
        let out: Vec<i32> = match (own.is_empty(), metric_units.is_empty()) {
            (true, _) => metric_units.to_vec(),
            (false, true) => own,
            (false, false) => own
                .into_iter()
                .filter(|u| metric_units.contains(u))
                .collect(),
        };
        let disjoint = out.is_empty() && !(self.unit_types.is_empty() && metric_units.is_empty());
        (!disjoint).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(units: Vec<UnitType>) -> Intervention {
        Intervention {
            id: "i1".into(),
            practice_code: "fall-bundle".into(),
            title: "Fall bundle".into(),
            start: "2025-01".parse().unwrap(),
            end: None,
            unit_types: units,
            metrics: vec!["falls".into()],
            narrative: String::new(),
            revision: 1,
        }
    }

    #[test]
    fn unit_filters_intersect_and_an_empty_intersection_is_none() {
        let med_surg = UnitType::MedSurg as i32;
        let icu = UnitType::CriticalCareAdult as i32;
        assert_eq!(bundle(vec![]).unit_filter(&[]), Some(vec![]));
        assert_eq!(bundle(vec![]).unit_filter(&[icu]), Some(vec![icu]));
        assert_eq!(
            bundle(vec![UnitType::MedSurg]).unit_filter(&[]),
            Some(vec![med_surg])
        );
        assert_eq!(bundle(vec![UnitType::MedSurg]).unit_filter(&[icu]), None);
    }

    #[test]
    fn targets_its_metrics_or_any_when_it_names_none() {
        let mut i = bundle(vec![]);
        assert!(i.targets("falls"));
        assert!(!i.targets("pressure-injuries"));
        i.metrics.clear();
        assert!(i.targets("pressure-injuries"));
    }
}
