//! Aggregate queries: fixed buckets only.
//!
//! A query is a month range, a time grain (month, quarter, year), dimensions to group by and
//! fixed-value filters — never a free date range or an event-level predicate. It is planned onto
//! the smallest counter family that holds every dimension it uses, and answered by one range
//! scan of that family.

use crate::cube::{CounterKey, Family};
use crate::month::{Month, MonthRange};
use crate::pb::{self, Dimension};
use crate::violations::FieldViolations;
use crate::wire::month_range_from_wire;
use std::collections::BTreeMap;

/// The period a cell covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grain {
    /// Calendar months.
    Month,
    /// Calendar quarters.
    Quarter,
    /// Calendar years.
    Year,
}

/// A period of a grain, ordered in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: u32,
    /// Month 1-12, quarter 1-4, or 0 for a year.
    part: u32,
    grain: Grain,
}

impl Period {
    /// The period of `grain` that contains `month`.
    pub fn of(month: Month, grain: Grain) -> Self {
        let part = match grain {
            Grain::Month => month.month(),
            Grain::Quarter => (month.month() - 1) / 3 + 1,
            Grain::Year => 0,
        };
        Self {
            year: month.year(),
            part,
            grain,
        }
    }

    /// `YYYY-MM`, `YYYY-Qn` or `YYYY`.
    pub fn label(&self) -> String {
        match self.grain {
            Grain::Month => format!("{:04}-{:02}", self.year, self.part),
            Grain::Quarter => format!("{:04}-Q{}", self.year, self.part),
            Grain::Year => format!("{:04}", self.year),
        }
    }
}

/// Every groupable dimension, in cell order.
pub const DIMENSIONS: [Dimension; 9] = [
    Dimension::Category,
    Dimension::EventType,
    Dimension::Harm,
    Dimension::UnitType,
    Dimension::AgeBand,
    Dimension::Sex,
    Dimension::ContributingFactor,
    Dimension::Preventability,
    Dimension::NccMerp,
];

fn slot(d: Dimension) -> usize {
    DIMENSIONS.iter().position(|x| *x == d).unwrap_or(0)
}

/// Whether an event can hold several values of `d`.
pub fn is_multi_valued(d: Dimension) -> bool {
    matches!(d, Dimension::Category | Dimension::ContributingFactor)
}

/// The value of dimension `d` in a counter key.
pub fn value_of(key: &CounterKey, d: Dimension) -> u8 {
    let s = &key.single;
    match d {
        Dimension::Category => key.category,
        Dimension::ContributingFactor => key.factor,
        Dimension::EventType => s.event_type,
        Dimension::Harm => s.harm,
        Dimension::UnitType => s.unit_type,
        Dimension::AgeBand => s.age_band,
        Dimension::Sex => s.sex,
        Dimension::Preventability => s.preventability,
        Dimension::NccMerp => s.ncc_merp,
        Dimension::Unspecified => 0,
    }
}

/// The cell a counter adds to: a period and the grouped dimensions' values (0 elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    /// Period.
    pub period: Period,
    /// Values by [`DIMENSIONS`] position; 0 for dimensions not grouped by.
    pub values: [u8; 9],
}

impl CellKey {
    /// The wire cell with `count` (0 and `suppressed` when withheld).
    pub fn to_wire(&self, count: u64, suppressed: bool) -> pb::AggregateCell {
        let v = |d| i32::from(self.values[slot(d)]);
        pb::AggregateCell {
            period: self.period.label(),
            category: v(Dimension::Category),
            harm: v(Dimension::Harm),
            count,
            suppressed,
            event_type: v(Dimension::EventType),
            unit_type: v(Dimension::UnitType),
            age_band: v(Dimension::AgeBand),
            sex: v(Dimension::Sex),
            contributing_factor: v(Dimension::ContributingFactor),
            preventability: v(Dimension::Preventability),
            ncc_merp: v(Dimension::NccMerp),
        }
    }
}

/// A validated aggregate query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateQuery {
    /// Months covered.
    pub range: MonthRange,
    /// Period of each cell.
    pub grain: Grain,
    /// Dimensions grouped by, distinct.
    pub group_by: Vec<Dimension>,
    /// Allowed values per filtered dimension.
    pub filter: BTreeMap<Dimension, Vec<u8>>,
}

impl AggregateQuery {
    /// Validates a wire request.
    pub fn from_wire(req: &pb::AggregateRequest) -> Result<Self, FieldViolations> {
        let range =
            month_range_from_wire(&req.month_from, &req.month_to, ("month_from", "month_to"));
        let mut v = match &range {
            Ok(_) => FieldViolations::new(),
            Err(v) => v.clone(),
        };
        let grain = match pb::TimeGrain::try_from(req.time_grain) {
            Ok(pb::TimeGrain::Unspecified | pb::TimeGrain::Month) => Grain::Month,
            Ok(pb::TimeGrain::Quarter) => Grain::Quarter,
            Ok(pb::TimeGrain::Year) => Grain::Year,
            Err(_) => {
                v.add(
                    "time_grain",
                    format!("{} is not a known value", req.time_grain),
                );
                Grain::Month
            }
        };
        let mut group_by = Vec::new();
        for (i, raw) in req.group_by.iter().enumerate() {
            match Dimension::try_from(*raw) {
                Ok(Dimension::Unspecified) => v.add(format!("group_by[{i}]"), "must be set"),
                Ok(d) if group_by.contains(&d) => v.add(
                    format!("group_by[{i}]"),
                    format!("{} is listed twice", d.as_str_name()),
                ),
                Ok(d) => group_by.push(d),
                Err(_) => v.add(
                    format!("group_by[{i}]"),
                    format!("{raw} is not a known value"),
                ),
            }
        }
        let filter = filter_from_wire(req.filter.as_ref(), &group_by, &mut v);
        match range {
            Ok(range) if v.is_empty() => Ok(Self {
                range,
                grain,
                group_by,
                filter,
            }),
            _ => Err(v),
        }
    }

    /// Every dimension the query reads: grouped or filtered.
    fn used(&self) -> impl Iterator<Item = Dimension> + '_ {
        self.group_by
            .iter()
            .copied()
            .chain(self.filter.keys().copied())
    }

    /// The smallest counter family that holds every dimension the query uses.
    pub fn family(&self) -> Family {
        let uses = |d| self.used().any(|x| x == d);
        let (category, factor) = (
            uses(Dimension::Category),
            uses(Dimension::ContributingFactor),
        );
        let rollup_only = self.used().all(|d| {
            matches!(
                d,
                Dimension::Category | Dimension::EventType | Dimension::Harm
            )
        });
        match (category, factor) {
            (true, true) => Family::CategoryFactors,
            (false, true) => Family::Factors,
            (true, false) if rollup_only => Family::Rollup,
            (true, false) => Family::Categories,
            (false, false) if rollup_only => Family::EventRollup,
            (false, false) => Family::Events,
        }
    }

    /// The query for totals that count each event once: the same without the multi-valued
    /// groupings. `None` when nothing is grouped by a multi-valued dimension, or when a filter
    /// lists several values of one (its events could not be counted once).
    pub fn event_totals(&self) -> Option<AggregateQuery> {
        if !self.group_by.iter().any(|d| is_multi_valued(*d)) {
            return None;
        }
        if self
            .filter
            .iter()
            .any(|(d, values)| is_multi_valued(*d) && values.len() > 1)
        {
            return None;
        }
        Some(AggregateQuery {
            group_by: self
                .group_by
                .iter()
                .copied()
                .filter(|d| !is_multi_valued(*d))
                .collect(),
            ..self.clone()
        })
    }

    /// Adds `count` from counter `key` to its cell, if the key passes the filters.
    pub fn accumulate(&self, key: &CounterKey, count: u64, cells: &mut BTreeMap<CellKey, u64>) {
        if !self.range.contains(key.month) {
            return;
        }
        for (d, allowed) in &self.filter {
            if !allowed.contains(&value_of(key, *d)) {
                return;
            }
        }
        let mut values = [0u8; 9];
        for d in &self.group_by {
            values[slot(*d)] = value_of(key, *d);
        }
        let cell = CellKey {
            period: Period::of(key.month, self.grain),
            values,
        };
        *cells.entry(cell).or_default() += count;
    }
}

/// Whether `raw` is a known value of dimension `d` (zero, "not recorded", included).
pub fn known_value(d: Dimension, raw: i32) -> bool {
    match d {
        Dimension::Category => pb::EventCategory::try_from(raw).is_ok(),
        Dimension::EventType => pb::EventType::try_from(raw).is_ok(),
        Dimension::Harm => pb::HarmLevel::try_from(raw).is_ok(),
        Dimension::UnitType => pb::UnitType::try_from(raw).is_ok(),
        Dimension::AgeBand => pb::AgeBand::try_from(raw).is_ok(),
        Dimension::Sex => pb::Sex::try_from(raw).is_ok(),
        Dimension::ContributingFactor => pb::ContributingFactor::try_from(raw).is_ok(),
        Dimension::Preventability => pb::Preventability::try_from(raw).is_ok(),
        Dimension::NccMerp => pb::NccMerpCategory::try_from(raw).is_ok(),
        Dimension::Unspecified => false,
    }
}

fn filter_from_wire(
    filter: Option<&pb::AggregateFilter>,
    group_by: &[Dimension],
    v: &mut FieldViolations,
) -> BTreeMap<Dimension, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Some(f) = filter else {
        return out;
    };
    let lists: [(Dimension, &str, &[i32]); 9] = [
        (Dimension::Category, "categories", &f.categories),
        (Dimension::EventType, "event_types", &f.event_types),
        (Dimension::Harm, "harms", &f.harms),
        (Dimension::UnitType, "unit_types", &f.unit_types),
        (Dimension::AgeBand, "age_bands", &f.age_bands),
        (Dimension::Sex, "sexes", &f.sexes),
        (
            Dimension::ContributingFactor,
            "contributing_factors",
            &f.contributing_factors,
        ),
        (
            Dimension::Preventability,
            "preventabilities",
            &f.preventabilities,
        ),
        (Dimension::NccMerp, "ncc_merp", &f.ncc_merp),
    ];
    for (d, name, values) in lists {
        if values.is_empty() {
            continue;
        }
        let mut allowed = Vec::with_capacity(values.len());
        for (i, raw) in values.iter().enumerate() {
            if known_value(d, *raw) {
                allowed.push(*raw as u8);
            } else {
                v.add(
                    format!("filter.{name}[{i}]"),
                    format!("{raw} is not a known value"),
                );
            }
        }
        allowed.sort_unstable();
        allowed.dedup();
        if is_multi_valued(d) && allowed.len() > 1 && !group_by.contains(&d) {
            v.add(
                format!("filter.{name}"),
                format!(
                    "several values would count an event once per value; group by {} too, or filter on one value",
                    d.as_str_name()
                ),
            );
        }
        out.insert(d, allowed);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(group_by: &[Dimension], filter: pb::AggregateFilter) -> pb::AggregateRequest {
        pb::AggregateRequest {
            month_from: "2025-01".into(),
            month_to: "2025-12".into(),
            time_grain: 0,
            group_by: group_by.iter().map(|d| *d as i32).collect(),
            filter: Some(filter),
            querier: String::new(),
        }
    }

    #[test]
    fn queries_plan_onto_the_smallest_family() {
        use Dimension as D;
        let plan = |g: &[D], f| AggregateQuery::from_wire(&request(g, f)).unwrap().family();
        let none = pb::AggregateFilter::default;
        assert_eq!(plan(&[D::Category, D::Harm], none()), Family::Rollup);
        assert_eq!(
            plan(&[D::Category, D::UnitType], none()),
            Family::Categories
        );
        assert_eq!(plan(&[D::Harm], none()), Family::EventRollup);
        assert_eq!(plan(&[D::Harm, D::UnitType], none()), Family::Events);
        assert_eq!(plan(&[D::ContributingFactor], none()), Family::Factors);
        assert_eq!(
            plan(&[D::ContributingFactor, D::Category], none()),
            Family::CategoryFactors
        );
        let fall = pb::AggregateFilter {
            categories: vec![3],
            ..none()
        };
        assert_eq!(plan(&[D::Harm], fall), Family::Rollup);
    }

    #[test]
    fn several_values_of_a_multi_valued_filter_need_its_grouping() {
        let two = pb::AggregateFilter {
            categories: vec![3, 5],
            ..Default::default()
        };
        let err = AggregateQuery::from_wire(&request(&[Dimension::Harm], two.clone())).unwrap_err();
        assert_eq!(err.iter().next().unwrap().field, "filter.categories");
        let q = AggregateQuery::from_wire(&request(&[Dimension::Category], two)).unwrap();
        assert_eq!(q.event_totals(), None);
        let q = AggregateQuery::from_wire(&request(
            &[Dimension::Category, Dimension::Harm],
            Default::default(),
        ))
        .unwrap();
        assert_eq!(q.event_totals().unwrap().group_by, [Dimension::Harm]);
    }

    #[test]
    fn periods_label_by_grain() {
        let m: Month = "2025-08".parse().unwrap();
        assert_eq!(Period::of(m, Grain::Month).label(), "2025-08");
        assert_eq!(Period::of(m, Grain::Quarter).label(), "2025-Q3");
        assert_eq!(Period::of(m, Grain::Year).label(), "2025");
    }

    #[test]
    fn bad_dimensions_and_values_are_named() {
        let req = pb::AggregateRequest {
            group_by: vec![0, 3, 3, 42],
            filter: Some(pb::AggregateFilter {
                harms: vec![99],
                ..Default::default()
            }),
            ..request(&[], Default::default())
        };
        let err = AggregateQuery::from_wire(&req).unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "group_by[0]",
                "group_by[2]",
                "group_by[3]",
                "filter.harms[0]"
            ]
        );
    }
}
