//! Category rows: the network's events per month and category, with patient days and a rate.
//!
//! Two sources, one row shape:
//!
//! - **the secure sum** ([`secure_rows`]), the default: the nodes answer
//!   [`NodeQuery::category_counts`](crate::answer::NodeQuery::category_counts) by secure
//!   aggregation, and the gateway receives only the cohort's exact count of each month and
//!   category, each month's event total (each event once), patient days, and per cell the number
//!   of facilities that contributed to it. The table — the rows with each month's total as
//!   their margin — is released under the network cell rule
//!   (`psonet_core::disclosure::network_cell`): a row is released when it has at least k events
//!   and at least `min_facilities` facilities contributed, and withheld rows get complements so
//!   that no withheld row can be recovered from a month's total (which the reporting-rate metric
//!   releases). Rows are exact: nothing was suppressed before the sum.
//! - **node-suppressed answers** ([`CategoryRows::sum`]), kept for networks that run
//!   `disclosure.network_sums = "node_suppressed"` (nodes not yet upgraded, and the comparison of
//!   `psonet bench-fanout`). Each facility's answer has been checked once ([`crate::answer`]):
//!   months in the asked range, known categories, every cell through the gateway's own small-cell
//!   rule. A row sums, per month and category, the released events of every facility that
//!   contributes to it into a [`NetworkSum`], which then passes the plain path's release rule
//!   (`psonet_core::network_release`): at least `min_facilities` facilities contribute and none
//!   holds more than `max_share` of its events. Cells a node withheld are in no sum, so such a row
//!   is a lower bound and says how many cells it lacks.

use crate::answer::{FacilityAnswer, Tally};
use crate::network_sum::NetworkSum;
use psonet_core::disclosure::margins_of;
use psonet_core::disclosure::network_cell::{NetworkCell, NetworkCellRule};
use psonet_core::event::EventCategory;
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb::{self, Dimension};
use psonet_core::query::{DIMENSIONS, Period};
use psonet_core::secagg::lanes::{LaneDomain, LaneSums};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A row's key: a month and a category.
type RowKey = (Period, EventCategory);

/// One network sum per month and category, over the facilities that answered usably.
#[derive(Debug, Default)]
pub struct CategoryRows {
    sums: BTreeMap<RowKey, NetworkSum>,
}

/// One facility's answer as the rows read it.
struct FacilityRows {
    events: BTreeMap<RowKey, Tally>,
    patient_days: BTreeMap<Period, u64>,
}

impl FacilityRows {
    fn of(answer: &FacilityAnswer) -> Self {
        Self {
            events: answer.events_by(|cell| (cell.period, cell.category)),
            patient_days: answer.exposure_by(pb::DenominatorType::PatientDays, |e| e.period),
        }
    }

    /// Adds the facility's part to every row it contributes to: each row it has cells in, and
    /// each row of a month it recorded patient days in (a zero). `sums` holds the row keys of
    /// every facility, in order, so the facility's own rows are met in one walk.
    fn add_parts(&self, sums: &mut [(RowKey, NetworkSum)]) {
        let mut events = self.events.iter().peekable();
        for (key, sum) in sums {
            let tally = events.next_if(|(k, _)| *k == key).map(|(_, t)| *t);
            let days = self.patient_days.get(&key.0).copied();
            if tally.is_some() || days.is_some() {
                sum.add(tally.unwrap_or_default(), days.unwrap_or(0));
            }
        }
    }
}

impl CategoryRows {
    /// Sums `answers` (to [`NodeQuery::categories_by_month`](crate::answer::NodeQuery)) per
    /// month and category over the facilities that contribute to each row; a row's patient
    /// days are its month's, all unit types.
    pub fn sum(answers: &[FacilityAnswer]) -> Self {
        let facilities: Vec<FacilityRows> = answers.iter().map(FacilityRows::of).collect();
        let keys: BTreeSet<RowKey> = facilities
            .iter()
            .flat_map(|f| f.events.keys().copied())
            .collect();
        let mut sums: Vec<(RowKey, NetworkSum)> = keys
            .into_iter()
            .map(|key| (key, NetworkSum::default()))
            .collect();
        for facility in &facilities {
            facility.add_parts(&mut sums);
        }
        Self {
            sums: sums.into_iter().collect(),
        }
    }

    /// Rows for `categories` (all when empty), in month then category order, each released
    /// only if `rule` allows it; a withheld row carries no figure, only the reason.
    pub fn rows(
        &self,
        categories: &[EventCategory],
        rule: &NetworkReleaseRule,
    ) -> Vec<pb::BenchmarkRow> {
        self.sums
            .iter()
            .filter(|((_, c), _)| categories.is_empty() || categories.contains(c))
            .filter(|(_, sum)| sum.events > 0 || sum.withheld_cells > 0)
            .map(|((month, category), sum)| {
                let row = pb::BenchmarkRow {
                    month: month.label(),
                    category: *category as i32,
                    events: sum.events,
                    patient_days: sum.exposure,
                    rate_per_1000_patient_days: (sum.exposure > 0)
                        .then(|| sum.events as f64 * 1000.0 / sum.exposure as f64),
                    contributing_facilities: sum.with_events(),
                    suppressed_cells: sum.withheld_cells,
                    withheld: false,
                    withheld_reason: String::new(),
                };
                match sum.release(rule) {
                    Ok(()) => row,
                    Err(why) => withheld(row, why.to_string()),
                }
            })
            .collect()
    }
}

/// The rows for `categories` (all when empty) of the opened secure sum of
/// [`NodeQuery::category_counts`](crate::answer::NodeQuery::category_counts), whose lanes
/// `domain` describes, in month then category order. A row with no events is left out (absent
/// means zero); a withheld row carries no figure, only the reason.
pub fn secure_rows(
    domain: &LaneDomain,
    sums: &LaneSums,
    categories: &[EventCategory],
    rule: &NetworkCellRule,
) -> Vec<pb::BenchmarkRow> {
    let mut counts = sums.counts.clone();
    counts.extend_from_slice(&sums.totals);
    // The whole table is released at once, whichever categories are shown, so that asking for
    // fewer categories never releases a row that the whole table withholds.
    let cells = rule.table(&counts, &margins_of(&domain.cells, &domain.totals));
    let patient_days: HashMap<Period, NetworkCell> = domain
        .exposure
        .iter()
        .zip(&sums.exposure)
        .filter(|(key, _)| key.denominator == pb::DenominatorType::PatientDays)
        .map(|(key, sum)| (key.period, rule.exposure(*sum)))
        .collect();
    let slot = DIMENSIONS
        .iter()
        .position(|d| *d == Dimension::Category)
        .unwrap_or(0);
    domain
        .cells
        .iter()
        .zip(&cells)
        .filter_map(|(key, cell)| {
            let category = EventCategory::try_from(i32::from(key.values[slot])).ok()?;
            if !(categories.is_empty() || categories.contains(&category)) {
                return None;
            }
            let row = pb::BenchmarkRow {
                month: key.period.label(),
                category: category as i32,
                ..Default::default()
            };
            match cell {
                NetworkCell::Released { value: 0, .. } => None,
                NetworkCell::Released {
                    value,
                    contributors,
                } => {
                    let days = match patient_days.get(&key.period) {
                        Some(NetworkCell::Released { value, .. }) => *value,
                        _ => 0,
                    };
                    Some(pb::BenchmarkRow {
                        events: *value,
                        patient_days: days,
                        rate_per_1000_patient_days: (days > 0)
                            .then(|| *value as f64 * 1000.0 / days as f64),
                        contributing_facilities: *contributors,
                        ..row
                    })
                }
                NetworkCell::Withheld(why) => Some(withheld(row, why.to_string())),
            }
        })
        .collect()
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
    use crate::answer::NodeQuery;
    use psonet_core::disclosure::primary::SmallCellRule;
    use psonet_core::month::MonthRange;

    fn range() -> MonthRange {
        MonthRange::new("2025-01".parse().unwrap(), "2025-03".parse().unwrap()).unwrap()
    }

    fn checked(response: &pb::AggregateResponse) -> FacilityAnswer {
        let query = NodeQuery::categories_by_month(range());
        FacilityAnswer::check("f", response, &query, &SmallCellRule::default()).unwrap()
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
        let mut answers = vec![checked(&a), checked(&b)];
        let rows = CategoryRows::sum(&answers).rows(&[], &NetworkReleaseRule::new(3, 1.0).unwrap());
        assert_eq!(
            rows[0].withheld_reason,
            "2 facilities contribute; a network figure needs at least 3"
        );
        let exposure_only = pb::AggregateResponse {
            exposure: vec![pd("2025-01", 5, 500)],
            ..Default::default()
        };
        answers.push(checked(&exposure_only));
        let net = CategoryRows::sum(&answers);
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
        let answer = |n| pb::AggregateResponse {
            cells: vec![cell("2025-01", EventCategory::Fall, 1, n, false)],
            exposure: vec![pd("2025-01", 5, 1000)],
            ..Default::default()
        };
        let mut answers: Vec<FacilityAnswer> =
            [400, 20, 20, 20, 20].map(|n| checked(&answer(n))).into();
        let rows = CategoryRows::sum(&answers).rows(&[], &NetworkReleaseRule::default());
        assert!(rows[0].withheld);
        assert_eq!((rows[0].events, rows[0].patient_days), (0, 0));
        assert_eq!(rows[0].rate_per_1000_patient_days, None);
        assert!(
            rows[0].withheld_reason.contains("83%"),
            "{}",
            rows[0].withheld_reason
        );
        answers.push(checked(&answer(100)));
        let rows = CategoryRows::sum(&answers).rows(&[], &NetworkReleaseRule::default());
        assert!(!rows[0].withheld, "400 of 580 is 69%");
        assert_eq!(rows[0].events, 580);
    }

    /// The secure sum of `category_counts` over January–March 2025 with `counts` of
    /// (month index, category, events, facilities), month totals the sum of their cells, and
    /// 9,000 patient days from six facilities every month.
    fn opened(counts: &[(usize, EventCategory, i64, u32)]) -> (LaneDomain, LaneSums) {
        use psonet_core::query::AggregateQuery;
        use psonet_core::secagg::lanes::LaneSum;
        let request = NodeQuery::category_counts(range()).request("p");
        let domain = LaneDomain::of(&AggregateQuery::from_wire(&request).unwrap()).unwrap();
        let zero = LaneSum {
            value: 0,
            contributors: 0,
        };
        let mut sums = LaneSums {
            counts: vec![zero; domain.cells.len()],
            totals: vec![zero; domain.totals.len()],
            exposure: vec![zero; domain.exposure.len()],
        };
        let months: Vec<Period> = domain.totals.iter().map(|t| t.period).collect();
        for (month, category, value, contributors) in counts {
            let lane = domain
                .cells
                .iter()
                .position(|c| c.period == months[*month] && c.values[0] == *category as u8)
                .unwrap();
            sums.counts[lane] = LaneSum {
                value: *value,
                contributors: *contributors,
            };
            sums.totals[*month].value += value;
            sums.totals[*month].contributors = 6;
        }
        for (key, sum) in domain.exposure.iter().zip(&mut sums.exposure) {
            if key.denominator == pb::DenominatorType::PatientDays {
                *sum = LaneSum {
                    value: 9000,
                    contributors: 6,
                };
            }
        }
        (domain, sums)
    }

    #[test]
    fn secure_rows_are_exact_and_withheld_ones_say_why() {
        use EventCategory::{Fall, Hai, Medication, PressureInjury};
        let rule = NetworkCellRule::new(SmallCellRule::default(), 5).unwrap();
        let (domain, sums) = opened(&[
            (0, Fall, 40, 6),
            (0, Medication, 55, 6),
            (0, Hai, 12, 4),
            (1, Fall, 30, 6),
            (1, Medication, 44, 6),
            (1, PressureInjury, 3, 2),
            (1, Hai, 20, 5),
        ]);
        let rows = secure_rows(&domain, &sums, &[], &rule);
        let seen: Vec<(&str, i32, u64, bool, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.month.as_str(),
                    r.category,
                    r.events,
                    r.withheld,
                    r.withheld_reason.as_str(),
                )
            })
            .collect();
        let (fall, medication, pressure, hai) = (
            Fall as i32,
            Medication as i32,
            PressureInjury as i32,
            Hai as i32,
        );
        let complement =
            "withheld so that another withheld figure cannot be recovered from a released total";
        // Category order: falls, HAI, medication, pressure injuries. January's HAI is withheld
        // (four facilities), and its falls with it (the smallest released row), or the month's
        // total would give the HAI away; in February the 3 pressure injuries take the HAI.
        assert_eq!(
            seen,
            [
                ("2025-01", fall, 0, true, complement),
                (
                    "2025-01",
                    hai,
                    0,
                    true,
                    "fewer than 5 facilities contributed"
                ),
                ("2025-01", medication, 55, false, ""),
                ("2025-02", fall, 30, false, ""),
                ("2025-02", hai, 0, true, complement),
                ("2025-02", medication, 44, false, ""),
                ("2025-02", pressure, 0, true, "fewer than 11 events"),
            ]
        );
        let row = &rows[2];
        assert_eq!(
            (
                row.patient_days,
                row.contributing_facilities,
                row.suppressed_cells
            ),
            (9000, 6, 0)
        );
        assert_eq!(row.rate_per_1000_patient_days, Some(55.0 * 1000.0 / 9000.0));
        let falls_only = secure_rows(&domain, &sums, &[Fall], &rule);
        assert_eq!(falls_only.len(), 2);
    }

    #[test]
    fn answers_outside_the_range_are_unusable() {
        let answer = pb::AggregateResponse {
            cells: vec![cell("2024-12", EventCategory::Fall, 1, 20, false)],
            ..Default::default()
        };
        let query = NodeQuery::categories_by_month(range());
        assert!(FacilityAnswer::check("f", &answer, &query, &SmallCellRule::default()).is_err());
    }
}
