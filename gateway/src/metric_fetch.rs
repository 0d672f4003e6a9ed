//! Asking every node for one metric, in the shape a figure needs.
//!
//! Whole-range figures ask for calendar-year cells (the coarsest grain a node offers), so a
//! facility's count is split into as few cells as possible and is less often small enough to be
//! suppressed; trends ask for months; observed/expected asks for years by unit type. Only the
//! facilities in the peer group are asked.

use crate::fanout::{NodeAnswer, fan_out_to};
use crate::merge::month_in_range;
use crate::metric_answer::{Counts, counts_from_wire};
use crate::registry::Registry;
use psonet_core::disclosure::primary::SmallCellRule;
use psonet_core::month::{Month, MonthRange};
use psonet_core::pb::{self, CoverageStatus};
use std::time::Duration;

/// Where a fetch goes and what it re-checks.
pub struct FetchContext<'a> {
    /// The facilities.
    pub registry: &'a Registry,
    /// Per-node deadline.
    pub deadline: Duration,
    /// The gateway's small-cell re-check.
    pub small_cells: &'a SmallCellRule,
    /// The partner or facility asking, whose policy and budget the nodes apply.
    pub querier: &'a str,
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

fn request(
    ctx: &FetchContext<'_>,
    metric: &pb::Metric,
    range: MonthRange,
    grain: pb::TimeGrain,
    by_unit: bool,
) -> pb::AggregateRequest {
    pb::AggregateRequest {
        month_from: range.from().to_string(),
        month_to: range.to().to_string(),
        time_grain: grain as i32,
        group_by: if by_unit {
            vec![pb::Dimension::UnitType as i32]
        } else {
            Vec::new()
        },
        filter: metric.numerator.clone(),
        querier: ctx.querier.to_string(),
    }
}

/// The coverage row of one node answer, with `usable` overriding an OK status that could not be
/// used.
pub fn coverage_row(answer: &NodeAnswer, usable: Result<(), String>) -> pb::FacilityCoverage {
    let (status, detail) = match usable {
        Ok(()) => (answer.status, answer.detail.clone()),
        Err(why) => (CoverageStatus::Error, format!("unusable answer: {why}")),
    };
    pb::FacilityCoverage {
        facility_id: answer.facility_id.clone(),
        status: status as i32,
        detail,
        latency_ms: answer.latency.as_millis().min(u128::from(u32::MAX)) as u32,
    }
}

async fn fetch<K: Ord + Copy>(
    ctx: &FetchContext<'_>,
    request: pb::AggregateRequest,
    denominator: i32,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
    key: impl Fn(&str, i32) -> Result<K, String>,
) -> Fetched<K> {
    let answers = fan_out_to(ctx.registry, request, ctx.deadline, in_scope).await;
    let mut fetched = Fetched {
        facilities: Vec::new(),
        coverage: Vec::new(),
    };
    for answer in &answers {
        let parsed = answer
            .response
            .as_ref()
            .map(|r| counts_from_wire(r, denominator, ctx.small_cells, &key));
        let usable = match parsed {
            Some(Ok(counts)) => {
                fetched.facilities.push(FacilityCounts {
                    id: answer.facility_id.clone(),
                    counts,
                });
                Ok(())
            }
            Some(Err(why)) => Err(why),
            None => Ok(()),
        };
        fetched.coverage.push(coverage_row(answer, usable));
    }
    fetched
}

fn year_in(range: MonthRange, period: &str) -> Result<(), String> {
    let year: u32 = period
        .parse()
        .map_err(|_| format!("{period:?} is not a year"))?;
    if (range.from().year()..=range.to().year()).contains(&year) {
        Ok(())
    } else {
        Err(format!("answer holds {year}, outside the asked range"))
    }
}

/// Whole-range counts (one key) of the metric per facility.
pub async fn range_totals(
    ctx: &FetchContext<'_>,
    metric: &pb::Metric,
    range: MonthRange,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Fetched<()> {
    let req = request(ctx, metric, range, pb::TimeGrain::Year, false);
    fetch(ctx, req, metric.denominator, in_scope, |p, _| {
        year_in(range, p)
    })
    .await
}

/// Monthly counts of the metric per facility.
pub async fn monthly(
    ctx: &FetchContext<'_>,
    metric: &pb::Metric,
    range: MonthRange,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Fetched<Month> {
    let req = request(ctx, metric, range, pb::TimeGrain::Month, false);
    fetch(ctx, req, metric.denominator, in_scope, |p, _| {
        month_in_range(p, range)
    })
    .await
}

/// Whole-range counts of the metric by unit type per facility.
pub async fn by_unit_type(
    ctx: &FetchContext<'_>,
    metric: &pb::Metric,
    range: MonthRange,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Fetched<i32> {
    let req = request(ctx, metric, range, pb::TimeGrain::Year, true);
    fetch(ctx, req, metric.denominator, in_scope, |p, unit| {
        year_in(range, p).map(|()| unit)
    })
    .await
}
