//! A node's answer, checked once.
//!
//! Every figure the gateway serves starts from the nodes' `AggregateResponse`s, and none is
//! trusted as sent: a misconfigured or outdated node must not be able to push a small count, a
//! period nobody asked for or an unknown category into a network figure. So each answer is read
//! here, once, into a [`FacilityAnswer`] before any pipeline sees it — the category rows
//! ([`crate::category_rows`]) and the metric figures ([`crate::metric`]) alike:
//!
//! - every period is one the gateway asked for: a month (or a year) of the asked range;
//! - every dimension the query groups by holds a known value (category, harm level, unit type);
//! - every released cell passes the gateway's own small-cell rule again, and a withheld cell
//!   stays withheld: it is counted as withheld ([`Tally`]), never as zero, so a sum it belongs
//!   to is known to be incomplete rather than a silent lower bound;
//! - exposure is read in the same pass, by period, unit type and denominator.
//!
//! An answer that fails a check is unusable as a whole, and its facility's coverage row says why
//! ([`crate::coverage`]).
//!
//! This is the *per-facility* kind of answer: a node's own cells, released under its small-cell
//! rule. Per-facility figures (funnel points, a facility's own scorecard) are made of it, and so
//! are network figures on a gateway that sums node-suppressed answers ([`crate::network_sum`]).
//! The other kind is secure aggregation's ([`crate::secure`]): a masked vector per node that only
//! opens as the cohort's sum, which the network figures read by default.

use psonet_core::disclosure::primary::{CellRelease, SmallCellRule};
use psonet_core::event::{EventCategory, HarmLevel, UnitType};
use psonet_core::month::MonthRange;
use psonet_core::pb::{self, DenominatorType, Dimension};
use psonet_core::query::{Grain, Period};
use std::collections::{BTreeMap, HashMap};

/// A count the node released, or did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// The count (0 or at least k).
    Known(u64),
    /// 1..k-1 events, or a count the node withheld so that a total cannot reveal one: unknown.
    Withheld,
}

/// The sum of two counts: unknown when either is.
impl std::ops::Add for Count {
    type Output = Count;

    fn add(self, other: Count) -> Count {
        match (self, other) {
            (Count::Known(a), Count::Known(b)) => Count::Known(a + b),
            _ => Count::Withheld,
        }
    }
}

/// Cells of one answer summed under one key: the events of the released cells, and how many
/// cells were withheld (whose events are in no sum).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events of the released cells.
    pub released: u64,
    /// Cells withheld.
    pub withheld: u32,
}

impl Tally {
    /// A tally of one known count.
    pub fn known(events: u64) -> Self {
        Self {
            released: events,
            withheld: 0,
        }
    }

    fn absorb(&mut self, other: Tally) {
        self.released += other.released;
        self.withheld += other.withheld;
    }

    /// The tally as one count: unknown when any cell of it is withheld.
    pub fn count(&self) -> Count {
        if self.withheld > 0 {
            Count::Withheld
        } else {
            Count::Known(self.released)
        }
    }
}

/// One cell's count as a tally.
impl From<Count> for Tally {
    fn from(count: Count) -> Self {
        match count {
            Count::Known(n) => Tally::known(n),
            Count::Withheld => Tally {
                released: 0,
                withheld: 1,
            },
        }
    }
}

/// What the gateway asks the nodes, and so what their answers may hold: the request is built
/// from it and every answer is checked against it, so the two cannot disagree.
#[derive(Debug, Clone)]
pub struct NodeQuery {
    range: MonthRange,
    grain: Grain,
    group_by: Vec<Dimension>,
    filter: Option<pb::AggregateFilter>,
    /// The label of every period the range covers at `grain` ("2025-03", "2025").
    periods: HashMap<String, Period>,
}

impl NodeQuery {
    fn new(
        range: MonthRange,
        grain: Grain,
        group_by: Vec<Dimension>,
        filter: Option<pb::AggregateFilter>,
    ) -> Self {
        let periods = range
            .months()
            .map(|month| Period::of(month, grain))
            .map(|period| (period.label(), period))
            .collect();
        Self {
            range,
            grain,
            group_by,
            filter,
            periods,
        }
    }

    /// Monthly events by category, unfiltered: what category rows are made of on the secure
    /// path. Not by harm level as well: a row sums its month and category, and one lane per row
    /// gives each row its own count of contributing facilities.
    pub fn category_counts(range: MonthRange) -> Self {
        Self::new(range, Grain::Month, vec![Dimension::Category], None)
    }

    /// Monthly events by category and harm level, unfiltered: what category rows are made of
    /// on the node-suppressed path.
    pub fn categories_by_month(range: MonthRange) -> Self {
        Self::new(
            range,
            Grain::Month,
            vec![Dimension::Category, Dimension::Harm],
            None,
        )
    }

    /// The events `metric` counts over `range` at `grain`, by unit type when `by_unit_type`.
    pub fn metric(
        metric: &pb::Metric,
        range: MonthRange,
        grain: Grain,
        by_unit_type: bool,
    ) -> Self {
        let group_by = if by_unit_type {
            vec![Dimension::UnitType]
        } else {
            Vec::new()
        };
        Self::new(range, grain, group_by, metric.numerator.clone())
    }

    /// The request on the wire, asked on behalf of `querier`.
    pub fn request(&self, querier: &str) -> pb::AggregateRequest {
        let time_grain = match self.grain {
            Grain::Month => pb::TimeGrain::Month,
            Grain::Quarter => pb::TimeGrain::Quarter,
            Grain::Year => pb::TimeGrain::Year,
        };
        pb::AggregateRequest {
            month_from: self.range.from().to_string(),
            month_to: self.range.to().to_string(),
            time_grain: time_grain as i32,
            group_by: self.group_by.iter().map(|d| *d as i32).collect(),
            filter: self.filter.clone(),
            querier: querier.to_string(),
        }
    }

    fn groups_by(&self, dimension: Dimension) -> bool {
        self.group_by.contains(&dimension)
    }

    fn period(&self, text: &str) -> Result<Period, String> {
        self.periods.get(text).copied().ok_or_else(|| {
            format!(
                "answer holds period {text:?}, outside the asked range {}..{}",
                self.range.from(),
                self.range.to()
            )
        })
    }

    /// `value` of a grouped dimension, refused unless `known` accepts it; `Unspecified` (the
    /// wire's zero) when the query does not group by it.
    fn grouped<T: Default>(
        &self,
        dimension: Dimension,
        value: i32,
        known: impl Fn(i32) -> Option<T>,
        what: &str,
    ) -> Result<T, String> {
        if !self.groups_by(dimension) {
            return Ok(T::default());
        }
        known(value).ok_or_else(|| format!("unknown {what} {value}"))
    }

    fn check_cell(
        &self,
        cell: &pb::AggregateCell,
        rule: &SmallCellRule,
    ) -> Result<AnswerCell, String> {
        let period = self.period(&cell.period)?;
        let category = self.grouped(
            Dimension::Category,
            cell.category,
            |v| {
                EventCategory::try_from(v)
                    .ok()
                    .filter(|c| *c != EventCategory::Unspecified)
            },
            "category",
        )?;
        // Zero is a harm level too: "not recorded" (a near miss has none).
        self.grouped(
            Dimension::Harm,
            cell.harm,
            |v| HarmLevel::try_from(v).ok(),
            "harm level",
        )?;
        let unit_type = self.grouped(
            Dimension::UnitType,
            cell.unit_type,
            known_unit_type,
            "unit type",
        )?;
        let count = if cell.suppressed {
            Count::Withheld
        } else {
            match rule.release(cell.count) {
                CellRelease::Released(n) => Count::Known(n),
                CellRelease::Suppressed => Count::Withheld,
            }
        };
        Ok(AnswerCell {
            period,
            category,
            unit_type,
            events: Tally::from(count),
        })
    }

    /// An exposure record, or `None` for a denominator this gateway does not know (no figure
    /// reads it, and a newer node may record more kinds than this gateway).
    fn check_exposure(
        &self,
        exposure: &pb::ExposureCell,
    ) -> Result<Option<AnswerExposure>, String> {
        let period = self.period(&exposure.period)?;
        let unit_type = self.grouped(
            Dimension::UnitType,
            exposure.unit_type,
            known_unit_type,
            "unit type",
        )?;
        let Some(denominator) = DenominatorType::try_from(exposure.denominator)
            .ok()
            .filter(|d| *d != DenominatorType::Unspecified)
        else {
            return Ok(None);
        };
        Ok(Some(AnswerExposure {
            period,
            unit_type,
            denominator,
            value: exposure.value,
        }))
    }
}

fn known_unit_type(value: i32) -> Option<UnitType> {
    UnitType::try_from(value)
        .ok()
        .filter(|u| *u != UnitType::Unspecified)
}

/// The checked cells of one period, category and unit type. A dimension the query did not
/// group by is `Unspecified`; the harm level is checked but not kept, as no figure reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerCell {
    /// A period of the asked range.
    pub period: Period,
    /// Its category, when grouped by category.
    pub category: EventCategory,
    /// Its unit type, when grouped by unit type.
    pub unit_type: UnitType,
    /// Its events after the gateway's small-cell rule.
    pub events: Tally,
}

impl AnswerCell {
    fn same_place(&self, other: &AnswerCell) -> bool {
        (self.period, self.category, self.unit_type)
            == (other.period, other.category, other.unit_type)
    }
}

/// One checked exposure record. The unit type is `Unspecified` unless the query grouped by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerExposure {
    /// A period of the asked range.
    pub period: Period,
    /// Its unit type, when grouped by unit type.
    pub unit_type: UnitType,
    /// What it counts.
    pub denominator: DenominatorType,
    /// Patient days, admissions, procedures, …
    pub value: u64,
}

/// One facility's answer after every check: all any figure reads of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FacilityAnswer {
    /// Facility id (never sent to anyone but the facility itself).
    pub facility_id: String,
    cells: Vec<AnswerCell>,
    exposure: Vec<AnswerExposure>,
}

impl FacilityAnswer {
    /// Checks `response`, from `facility_id`'s node, against `query` and re-applies `rule`;
    /// `Err` says why the answer is unusable.
    pub fn check(
        facility_id: &str,
        response: &pb::AggregateResponse,
        query: &NodeQuery,
        rule: &SmallCellRule,
    ) -> Result<Self, String> {
        // Nodes send cells in period then dimension order, so the harm levels of one period,
        // category and unit type arrive together and are summed as they arrive.
        let mut cells: Vec<AnswerCell> = Vec::new();
        for wire in &response.cells {
            let cell = query.check_cell(wire, rule)?;
            match cells.last_mut() {
                Some(last) if last.same_place(&cell) => last.events.absorb(cell.events),
                _ => cells.push(cell),
            }
        }
        let mut exposure = Vec::with_capacity(response.exposure.len());
        for record in &response.exposure {
            exposure.extend(query.check_exposure(record)?);
        }
        Ok(Self {
            facility_id: facility_id.to_string(),
            cells,
            exposure,
        })
    }

    /// The cells summed under `key`; a key no cell has is absent (zero events).
    pub fn events_by<K: Ord>(&self, key: impl Fn(&AnswerCell) -> K) -> BTreeMap<K, Tally> {
        let mut tallies: BTreeMap<K, Tally> = BTreeMap::new();
        for cell in &self.cells {
            tallies.entry(key(cell)).or_default().absorb(cell.events);
        }
        tallies
    }

    /// The exposure in `denominator` summed under `key`; a key no record has is absent.
    pub fn exposure_by<K: Ord>(
        &self,
        denominator: DenominatorType,
        key: impl Fn(&AnswerExposure) -> K,
    ) -> BTreeMap<K, u64> {
        let mut sums: BTreeMap<K, u64> = BTreeMap::new();
        for record in self
            .exposure
            .iter()
            .filter(|e| e.denominator == denominator)
        {
            *sums.entry(key(record)).or_default() += record.value;
        }
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psonet_core::month::Month;

    fn month(text: &str) -> Month {
        text.parse().unwrap()
    }

    fn range() -> MonthRange {
        MonthRange::new(month("2025-01"), month("2025-03")).unwrap()
    }

    fn cell(
        period: &str,
        category: EventCategory,
        count: u64,
        suppressed: bool,
    ) -> pb::AggregateCell {
        pb::AggregateCell {
            period: period.into(),
            category: category as i32,
            harm: HarmLevel::Mild as i32,
            count,
            suppressed,
            ..Default::default()
        }
    }

    fn exposure(
        period: &str,
        unit_type: UnitType,
        denominator: DenominatorType,
        value: u64,
    ) -> pb::ExposureCell {
        pb::ExposureCell {
            period: period.into(),
            unit_type: unit_type as i32,
            denominator: denominator as i32,
            value,
        }
    }

    #[test]
    fn small_cells_are_withheld_again_and_withheld_cells_stay_withheld() {
        let response = pb::AggregateResponse {
            cells: vec![
                cell("2025-01", EventCategory::Fall, 20, false),
                cell("2025-01", EventCategory::Fall, 0, true),
                // A node that forgot to suppress: the gateway withholds it.
                cell("2025-01", EventCategory::Fall, 4, false),
                cell("2025-02", EventCategory::Fall, 12, false),
            ],
            exposure: vec![
                exposure(
                    "2025-01",
                    UnitType::Medical,
                    DenominatorType::PatientDays,
                    1000,
                ),
                exposure(
                    "2025-01",
                    UnitType::Surgical,
                    DenominatorType::PatientDays,
                    500,
                ),
                exposure(
                    "2025-01",
                    UnitType::Medical,
                    DenominatorType::Admissions,
                    77,
                ),
                // A denominator this gateway does not know is not read.
                pb::ExposureCell {
                    denominator: 99,
                    ..exposure(
                        "2025-01",
                        UnitType::Medical,
                        DenominatorType::PatientDays,
                        5,
                    )
                },
            ],
            ..Default::default()
        };
        let query = NodeQuery::categories_by_month(range());
        let answer =
            FacilityAnswer::check("f", &response, &query, &SmallCellRule::default()).unwrap();
        let events = answer.events_by(|c| c.period);
        let january = Period::of(month("2025-01"), Grain::Month);
        let february = Period::of(month("2025-02"), Grain::Month);
        assert_eq!(
            events[&january],
            Tally {
                released: 20,
                withheld: 2
            }
        );
        assert_eq!(events[&january].count(), Count::Withheld);
        assert_eq!(events[&february].count(), Count::Known(12));
        let days = answer.exposure_by(DenominatorType::PatientDays, |e| e.period);
        assert_eq!(days, BTreeMap::from([(january, 1500)]));
    }

    #[test]
    fn periods_outside_the_range_and_unknown_values_make_an_answer_unusable() {
        let rule = SmallCellRule::default();
        let query = NodeQuery::categories_by_month(range());
        let unusable = |response: pb::AggregateResponse| {
            FacilityAnswer::check("f", &response, &query, &rule).unwrap_err()
        };
        let outside = pb::AggregateResponse {
            cells: vec![cell("2024-12", EventCategory::Fall, 20, false)],
            ..Default::default()
        };
        assert!(unusable(outside).contains("outside the asked range"));
        let a_year = pb::AggregateResponse {
            exposure: vec![exposure(
                "2025",
                UnitType::Medical,
                DenominatorType::PatientDays,
                9,
            )],
            ..Default::default()
        };
        assert!(unusable(a_year).contains("\"2025\""));
        let no_category = pb::AggregateResponse {
            cells: vec![cell("2025-01", EventCategory::Unspecified, 20, false)],
            ..Default::default()
        };
        assert_eq!(unusable(no_category), "unknown category 0");
        let unknown_harm = pb::AggregateResponse {
            cells: vec![pb::AggregateCell {
                harm: 99,
                ..cell("2025-01", EventCategory::Fall, 20, false)
            }],
            ..Default::default()
        };
        assert_eq!(unusable(unknown_harm), "unknown harm level 99");
    }

    #[test]
    fn a_metric_query_reads_years_and_unit_types() {
        let metric = pb::Metric {
            numerator: Some(pb::AggregateFilter::default()),
            ..Default::default()
        };
        let range = MonthRange::new(month("2024-07"), month("2025-06")).unwrap();
        let query = NodeQuery::metric(&metric, range, Grain::Year, true);
        let request = query.request("spiffe://net/partner/acme");
        assert_eq!(request.time_grain, pb::TimeGrain::Year as i32);
        assert_eq!(request.group_by, [Dimension::UnitType as i32]);
        let by_unit = |unit_type: i32| pb::AggregateResponse {
            cells: vec![pb::AggregateCell {
                period: "2025".into(),
                unit_type,
                count: 30,
                ..Default::default()
            }],
            ..Default::default()
        };
        let rule = SmallCellRule::default();
        let answer =
            FacilityAnswer::check("f", &by_unit(UnitType::Medical as i32), &query, &rule).unwrap();
        assert_eq!(
            answer.events_by(|c| c.unit_type),
            BTreeMap::from([(UnitType::Medical, Tally::known(30))])
        );
        let unknown = FacilityAnswer::check("f", &by_unit(0), &query, &rule).unwrap_err();
        assert_eq!(unknown, "unknown unit type 0");
        let outside = pb::AggregateResponse {
            cells: vec![pb::AggregateCell {
                period: "2023".into(),
                ..by_unit(UnitType::Medical as i32).cells[0].clone()
            }],
            ..Default::default()
        };
        assert!(FacilityAnswer::check("f", &outside, &query, &rule).is_err());
    }
}
