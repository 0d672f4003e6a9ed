//! Asking every node for one metric, in the shape a figure needs.
//!
//! Whole-range figures ask for calendar-year cells (the coarsest grain a node offers), so a
//! facility's count is split into as few cells as possible and is less often small enough to be
//! suppressed; trends ask for months; observed/expected asks for years by unit type. Only the
//! facilities in the peer group are asked. Each answer is checked once ([`crate::answer`]) and
//! read here as [`Counts`]: the metric's events and exposure per key.

use crate::answer::{Count, FacilityAnswer, NodeQuery, Tally};
use crate::coverage::AskContext;
use crate::network_sum::NetworkSum;
use psonet_core::event::UnitType;
use psonet_core::month::MonthRange;
use psonet_core::pb::{self, DenominatorType};
use psonet_core::query::{Grain, Period};
use std::collections::BTreeMap;

/// One facility's events and exposure of a metric keyed by `K` (nothing, a month, or a unit
/// type).
#[derive(Debug, Clone, PartialEq)]
pub struct Counts<K: Ord> {
    /// Events per key; a key absent here has zero events.
    pub events: BTreeMap<K, Count>,
    /// Exposure per key in the metric's denominator.
    pub exposure: BTreeMap<K, u64>,
}

/// Why a facility's count under some key cannot enter a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// No exposure in the metric's denominator: a rate would divide by zero, and a zero count
    /// would plant a false "good" figure.
    NoExposure,
    /// The count is withheld by small-cell suppression.
    Withheld,
}

impl<K: Ord + Copy> Counts<K> {
    /// `answer`'s events and `denominator` exposure, each cell and record keyed by `key`.
    pub fn of(
        answer: &FacilityAnswer,
        denominator: DenominatorType,
        key: impl Fn(Period, UnitType) -> K,
    ) -> Self {
        Self {
            events: answer
                .events_by(|c| key(c.period, c.unit_type))
                .into_iter()
                .map(|(k, tally)| (k, tally.count()))
                .collect(),
            exposure: answer.exposure_by(denominator, |e| key(e.period, e.unit_type)),
        }
    }

    /// The count of `key` (zero when the node sent no cell).
    pub fn count(&self, key: &K) -> Count {
        self.events.get(key).copied().unwrap_or(Count::Known(0))
    }

    /// The exposure of `key`.
    pub fn exposure_of(&self, key: &K) -> u64 {
        self.exposure.get(key).copied().unwrap_or(0)
    }

    /// Every key with events or exposure.
    pub fn keys(&self) -> Vec<K> {
        let mut keys: Vec<K> = self
            .events
            .keys()
            .chain(self.exposure.keys())
            .copied()
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The sum over every key: withheld when any part is.
    pub fn total(&self) -> (Count, u64) {
        let count = self
            .events
            .values()
            .fold(Count::Known(0), |sum, c| sum + *c);
        (count, self.exposure.values().sum())
    }

    /// The known count and the exposure of `key`, when both can enter a figure.
    pub fn usable(&self, key: &K) -> Result<(u64, u64), Unusable> {
        let exposure = self.exposure_of(key);
        match self.count(key) {
            _ if exposure == 0 => Err(Unusable::NoExposure),
            Count::Withheld => Err(Unusable::Withheld),
            Count::Known(events) => Ok((events, exposure)),
        }
    }
}

/// One usable facility answer.
#[derive(Debug, Clone)]
pub struct FacilityCounts<K: Ord> {
    /// Facility id (never sent to anyone but the facility itself).
    pub id: String,
    /// Its counts.
    pub counts: Counts<K>,
}

/// The usable answers of the facilities in scope, and the coverage of all in scope.
#[derive(Debug)]
pub struct Fetched<K: Ord> {
    /// Usable answers, in registry order.
    pub facilities: Vec<FacilityCounts<K>>,
    /// Every facility in scope and whether it answered usably.
    pub coverage: Vec<pb::FacilityCoverage>,
}

/// The network's sum of `key` over `facilities`: those whose count there is known and who
/// recorded exposure; a facility with a withheld count or none is left out, never a zero.
pub fn network_sum<K: Ord + Copy>(facilities: &[FacilityCounts<K>], key: &K) -> NetworkSum {
    facilities
        .iter()
        .filter_map(|f| f.counts.usable(key).ok())
        .map(|(events, exposure)| (Tally::known(events), exposure))
        .collect()
}

async fn fetch<K: Ord + Copy>(
    ctx: &AskContext<'_>,
    metric: &pb::Metric,
    query: NodeQuery,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
    key: impl Fn(Period, UnitType) -> K,
) -> Fetched<K> {
    let answers = ctx.ask(&query, in_scope).await;
    let denominator = DenominatorType::try_from(metric.denominator).unwrap_or_default();
    Fetched {
        facilities: answers
            .usable
            .iter()
            .map(|answer| FacilityCounts {
                id: answer.facility_id.clone(),
                counts: Counts::of(answer, denominator, &key),
            })
            .collect(),
        coverage: answers.coverage,
    }
}

/// Whole-range counts (one key) of the metric per facility.
pub async fn range_totals(
    ctx: &AskContext<'_>,
    metric: &pb::Metric,
    range: MonthRange,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Fetched<()> {
    let query = NodeQuery::metric(metric, range, Grain::Year, false);
    fetch(ctx, metric, query, in_scope, |_, _| ()).await
}

/// Monthly counts of the metric per facility.
pub async fn monthly(
    ctx: &AskContext<'_>,
    metric: &pb::Metric,
    range: MonthRange,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Fetched<Period> {
    let query = NodeQuery::metric(metric, range, Grain::Month, false);
    fetch(ctx, metric, query, in_scope, |period, _| period).await
}

/// Whole-range counts of the metric by unit type per facility.
pub async fn by_unit_type(
    ctx: &AskContext<'_>,
    metric: &pb::Metric,
    range: MonthRange,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Fetched<UnitType> {
    let query = NodeQuery::metric(metric, range, Grain::Year, true);
    fetch(ctx, metric, query, in_scope, |_, unit_type| unit_type).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use psonet_core::disclosure::primary::SmallCellRule;

    #[test]
    fn a_withheld_part_makes_the_total_unknown() {
        let answer = pb::AggregateResponse {
            cells: vec![
                pb::AggregateCell {
                    period: "2025".into(),
                    count: 30,
                    unit_type: 1,
                    ..Default::default()
                },
                pb::AggregateCell {
                    period: "2025".into(),
                    count: 4,
                    unit_type: 2,
                    ..Default::default()
                },
            ],
            exposure: vec![pb::ExposureCell {
                period: "2025".into(),
                unit_type: 1,
                denominator: 1,
                value: 9000,
            }],
            ..Default::default()
        };
        let metric = pb::Metric::default();
        let range =
            MonthRange::new("2025-01".parse().unwrap(), "2025-12".parse().unwrap()).unwrap();
        let query = NodeQuery::metric(&metric, range, Grain::Year, true);
        let rule = SmallCellRule::default();
        let checked = FacilityAnswer::check("f", &answer, &query, &rule).unwrap();
        let by_unit = Counts::of(&checked, DenominatorType::PatientDays, |_, u| u);
        let (critical, paediatric) = (UnitType::CriticalCareAdult, UnitType::CriticalCarePediatric);
        assert_eq!(by_unit.count(&critical), Count::Known(30));
        // A node that forgot to suppress 4 events: the gateway withholds them.
        assert_eq!(by_unit.count(&paediatric), Count::Withheld);
        assert_eq!(by_unit.total(), (Count::Withheld, 9000));
        assert_eq!(by_unit.usable(&critical), Ok((30, 9000)));
        assert_eq!(by_unit.usable(&paediatric), Err(Unusable::NoExposure));
        let outside = NodeQuery::metric(
            &metric,
            MonthRange::new("2024-01".parse().unwrap(), "2024-12".parse().unwrap()).unwrap(),
            Grain::Year,
            true,
        );
        assert!(FacilityAnswer::check("f", &answer, &outside, &rule).is_err());
    }
}
