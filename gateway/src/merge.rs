//! Merging facility aggregates into network figures.
//!
//! Each node's answer is checked before it counts: months must lie in the asked range,
//! categories must be known, and every cell passes the gateway's own small-cell rule again, so a
//! misconfigured node cannot push a small count into a network figure. Each network row then
//! passes the network release rule (`psonet_core::network_release`): at least `min_facilities`
//! facilities contribute to it (a facility with events, withheld cells or patient days in that
//! month) and none holds more than `max_share` of its events; otherwise the row is withheld,
//! with the reason, and no figure of it leaves the gateway.

use psonet_core::disclosure::primary::{CellRelease, SmallCellRule};
use psonet_core::event::EventCategory;
use psonet_core::month::{Month, MonthRange};
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb;
use std::collections::{BTreeMap, HashMap};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One facility's usable figures for a range.
#[derive(Debug, Default)]
pub struct FacilityFigures {
    /// Released events per (month, category), summed over harm levels.
    events: HashMap<(Month, EventCategory), u64>,
    /// Withheld cells per (month, category).
    suppressed: HashMap<(Month, EventCategory), u32>,
    /// Patient days per month, all unit types.
    patient_days: HashMap<Month, u64>,
}

impl FacilityFigures {
    /// Checks a node's answer for `range` and re-applies `rule`; `Err` says why it is unusable.
    pub fn from_wire(
        answer: &pb::AggregateResponse,
        range: MonthRange,
        rule: &SmallCellRule,
    ) -> Result<Self, String> {
        let mut figures = FacilityFigures::default();
        for cell in &answer.cells {
            let month = month_in_range(&cell.period, range)?;
            let category = EventCategory::try_from(cell.category)
                .ok()
                .filter(|c| *c != EventCategory::Unspecified)
                .ok_or_else(|| format!("unknown category {}", cell.category))?;
            let released = if cell.suppressed {
                CellRelease::Suppressed
            } else {
                rule.release(cell.count)
            };
            match released {
                CellRelease::Released(n) => {
                    *figures.events.entry((month, category)).or_default() += n
                }
                CellRelease::Suppressed => {
                    *figures.suppressed.entry((month, category)).or_default() += 1
                }
            }
        }
        let patient_days = pb::DenominatorType::PatientDays as i32;
        for exposure in answer
            .exposure
            .iter()
            .filter(|e| e.denominator == patient_days)
        {
            let month = month_in_range(&exposure.period, range)?;
            *figures.patient_days.entry(month).or_default() += exposure.value;
        }
        Ok(figures)
    }
}

/// The month `text` of an answer, refused outside `range`.
pub(crate) fn month_in_range(text: &str, range: MonthRange) -> Result<Month, String> {
    let month: Month = text
        .parse()
        .map_err(|e| format!("bad month in answer: {e}"))?;
    if range.contains(month) {
        Ok(month)
    } else {
        Err(format!("answer holds {month}, outside the asked range"))
    }
}

#[derive(Debug, Default, Clone)]
struct RowTotals {
    events: u64,
    contributing: u32,
    suppressed_cells: u32,
    /// Released events of each facility in the row, by the order facilities were added.
    by_facility: BTreeMap<usize, u64>,
}

/// Network figures summed over the facilities that answered.
#[derive(Debug, Default)]
pub struct NetworkFigures {
    rows: BTreeMap<(Month, EventCategory), RowTotals>,
    patient_days: BTreeMap<Month, u64>,
    /// Facilities with patient days, per month.
    with_exposure: BTreeMap<Month, Vec<usize>>,
    facilities: usize,
}

impl NetworkFigures {
    /// Adds one facility's figures.
    pub fn add(&mut self, facility: &FacilityFigures) {
        let id = self.facilities;
        self.facilities += 1;
        for (key, events) in &facility.events {
            let row = self.rows.entry(*key).or_default();
            row.events += events;
            row.contributing += u32::from(*events > 0);
            *row.by_facility.entry(id).or_default() += events;
        }
        for (key, n) in &facility.suppressed {
            let row = self.rows.entry(*key).or_default();
            row.suppressed_cells += n;
            row.by_facility.entry(id).or_default();
        }
        for (month, days) in &facility.patient_days {
            *self.patient_days.entry(*month).or_default() += days;
            self.with_exposure.entry(*month).or_default().push(id);
        }
    }

    /// Each contributing facility's released events in a row: those with events or withheld
    /// cells in it, and those with patient days but no events that month (a zero).
    fn contributions(&self, month: &Month, row: &RowTotals) -> Vec<u64> {
        let mut by_facility = row.by_facility.clone();
        for id in self.with_exposure.get(month).into_iter().flatten() {
            by_facility.entry(*id).or_default();
        }
        by_facility.into_values().collect()
    }

    /// Rows for `categories` (all when empty), in month then category order, each released
    /// only if `rule` allows it; a withheld row carries no figure, only the reason.
    pub fn rows(
        &self,
        categories: &[EventCategory],
        rule: &NetworkReleaseRule,
    ) -> Vec<pb::BenchmarkRow> {
        self.rows
            .iter()
            .filter(|((_, c), _)| categories.is_empty() || categories.contains(c))
            .filter(|(_, t)| t.events > 0 || t.suppressed_cells > 0)
            .map(|((month, category), t)| {
                let patient_days = self.patient_days.get(month).copied().unwrap_or(0);
                let row = pb::BenchmarkRow {
                    month: month.to_string(),
                    category: *category as i32,
                    events: t.events,
                    patient_days,
                    rate_per_1000_patient_days: (patient_days > 0)
                        .then(|| t.events as f64 * 1000.0 / patient_days as f64),
                    contributing_facilities: t.contributing,
                    suppressed_cells: t.suppressed_cells,
                    withheld: false,
                    withheld_reason: String::new(),
                };
                match rule.check(&self.contributions(month, t)) {
                    Ok(()) => row,
                    Err(why) => withheld(row, why.to_string()),
                }
            })
            .collect()
    }
}

/// A row with every figure removed, saying why.
fn withheld(row: pb::BenchmarkRow, reason: String) -> pb::BenchmarkRow {
    pb::BenchmarkRow {
        month: row.month,
        category: row.category,
        withheld: true,
        withheld_reason: reason,
        ..Default::default()
    }
}

/// Refuses a query whose scope is too small for any figure to leave.
pub fn check_scope(rule: &NetworkReleaseRule, facilities: usize) -> Result<(), Status> {
    rule.check_scope(facilities).map_err(|why| {
        let details = ErrorDetails::with_precondition_failure_violation(
            "PEER_GROUP_TOO_SMALL",
            "facilities",
            why.to_string(),
        );
        Status::with_error_details(
            Code::FailedPrecondition,
            format!("no figure can be released for this scope: {why}"),
            details,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> MonthRange {
        MonthRange::new("2025-01".parse().unwrap(), "2025-03".parse().unwrap()).unwrap()
    }

    fn cell(
        month: &str,
        category: EventCategory,
        harm: i32,
        count: u64,
        suppressed: bool,
    ) -> pb::AggregateCell {
        pb::AggregateCell {
            period: month.into(),
            category: category as i32,
            harm,
            count,
            suppressed,
            ..Default::default()
        }
    }

    fn pd(period: &str, unit_type: i32, value: u64) -> pb::ExposureCell {
        pb::ExposureCell {
            period: period.into(),
            unit_type,
            denominator: 1,
            value,
        }
    }

    #[test]
    fn sums_released_cells_and_counts_withheld_ones() {
        let rule = SmallCellRule::default();
        let a = pb::AggregateResponse {
            cells: vec![
                cell("2025-01", EventCategory::Fall, 1, 20, false),
                cell("2025-01", EventCategory::Fall, 2, 0, true),
                // A node that forgot to suppress: the gateway withholds it.
                cell("2025-01", EventCategory::Fall, 3, 4, false),
            ],
            // Admissions are not patient days: only the first counts.
            exposure: vec![
                pd("2025-01", 5, 1000),
                pb::ExposureCell {
                    denominator: 2,
                    ..pd("2025-01", 5, 77)
                },
            ],
            min_cell_count: 11,
            event_totals: vec![],
        };
        let b = pb::AggregateResponse {
            cells: vec![cell("2025-01", EventCategory::Fall, 1, 30, false)],
            exposure: vec![pd("2025-01", 6, 4000)],
            min_cell_count: 11,
            event_totals: vec![],
        };
        let mut net = NetworkFigures::default();
        for answer in [&a, &b] {
            net.add(&FacilityFigures::from_wire(answer, range(), &rule).unwrap());
        }
        let rows = net.rows(&[], &NetworkReleaseRule::new(3, 1.0).unwrap());
        assert_eq!(
            rows[0].withheld_reason,
            "2 facilities contribute; a network figure needs at least 3"
        );
        let exposure_only = pb::AggregateResponse {
            exposure: vec![pd("2025-01", 5, 500)],
            ..Default::default()
        };
        net.add(&FacilityFigures::from_wire(&exposure_only, range(), &rule).unwrap());
        let rows = net.rows(&[], &NetworkReleaseRule::new(3, 1.0).unwrap());
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(
            (
                row.events,
                row.patient_days,
                row.contributing_facilities,
                row.suppressed_cells
            ),
            (50, 5500, 2, 2)
        );
        assert!(!row.withheld);
        assert_eq!(row.rate_per_1000_patient_days, Some(50.0 * 1000.0 / 5500.0));
        let rule = NetworkReleaseRule::new(3, 1.0).unwrap();
        assert!(net.rows(&[EventCategory::Medication], &rule).is_empty());
    }

    #[test]
    fn a_dominated_or_thin_row_is_withheld_without_figures() {
        let rule = SmallCellRule::default();
        let answer = |n| pb::AggregateResponse {
            cells: vec![cell("2025-01", EventCategory::Fall, 1, n, false)],
            exposure: vec![pd("2025-01", 5, 1000)],
            ..Default::default()
        };
        let mut net = NetworkFigures::default();
        for n in [400, 20, 20, 20, 20] {
            net.add(&FacilityFigures::from_wire(&answer(n), range(), &rule).unwrap());
        }
        let rows = net.rows(&[], &NetworkReleaseRule::default());
        assert!(rows[0].withheld);
        assert_eq!((rows[0].events, rows[0].patient_days), (0, 0));
        assert_eq!(rows[0].rate_per_1000_patient_days, None);
        assert!(
            rows[0].withheld_reason.contains("83%"),
            "{}",
            rows[0].withheld_reason
        );
        net.add(&FacilityFigures::from_wire(&answer(100), range(), &rule).unwrap());
        let rows = net.rows(&[], &NetworkReleaseRule::default());
        assert!(!rows[0].withheld, "400 of 580 is 69%");
        assert_eq!(rows[0].events, 580);
    }

    #[test]
    fn answers_outside_the_range_are_unusable() {
        let answer = pb::AggregateResponse {
            cells: vec![cell("2024-12", EventCategory::Fall, 1, 20, false)],
            ..Default::default()
        };
        assert!(FacilityFigures::from_wire(&answer, range(), &SmallCellRule::default()).is_err());
    }
}
