//! A metric's network figures from its secure sum: every month of the range, and the range's
//! total that a benchmark's pooled rate is made of.
//!
//! One secure query serves both the trend and the benchmark: the metric's events by month, with
//! exposure by month and denominator (`NodeQuery::metric` at month grain). Its months and their
//! total form one table — the total is a margin of the months — released under the network cell
//! rule (`psonet_core::disclosure::network_cell`): a month is released when it has 0 events, or at
//! least k with at least `min_facilities` facilities contributing, and the months withheld under a
//! released total get complements, so that no withheld month can be recovered by subtracting the
//! released ones from the benchmark's total. Both endpoints read the same table the same way, so
//! what the trend withholds the benchmark cannot give away.
//!
//! The total's facility count is the largest month's: the facilities with events in *some* month
//! are at least that many, and the indicators of different months cannot be united without
//! knowing which facilities they count.

use super::trend::MonthFigure;
use psonet_core::disclosure::complementary::Margin;
use psonet_core::disclosure::network_cell::{NetworkCell, NetworkCellRule};
use psonet_core::month::{Month, MonthRange};
use psonet_core::pb::DenominatorType;
use psonet_core::query::{Grain, Period};
use psonet_core::secagg::lanes::{LaneDomain, LaneSum, LaneSums};
use std::collections::HashMap;

/// The network's figure over the whole range, released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pooled {
    /// Events of the facilities in the sum.
    pub events: u64,
    /// Their exposure in the metric's denominator.
    pub exposure: u64,
    /// Facilities whose counts are in the sum.
    pub facilities: u32,
}

/// A metric's months and total, each released or withheld with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSums {
    /// Every month of the range, in order.
    pub months: Vec<(Month, MonthFigure)>,
    /// The range's total.
    pub total: Result<Pooled, String>,
}

/// Reads the opened `sums` of a monthly metric query over `range` (its lanes described by
/// `domain`), with exposure in `denominator`, summed over `facilities` survivors.
pub fn read(
    domain: &LaneDomain,
    sums: &LaneSums,
    range: MonthRange,
    denominator: DenominatorType,
    facilities: usize,
    rule: &NetworkCellRule,
) -> MetricSums {
    let events: HashMap<Period, LaneSum> = domain
        .cells
        .iter()
        .zip(&sums.counts)
        .map(|(cell, sum)| (cell.period, *sum))
        .collect();
    let exposure: HashMap<Period, LaneSum> = domain
        .exposure
        .iter()
        .zip(&sums.exposure)
        .filter(|(key, _)| key.denominator == denominator && key.unit.is_none())
        .map(|(key, sum)| (key.period, *sum))
        .collect();
    let none = LaneSum {
        value: 0,
        contributors: 0,
    };
    let months: Vec<Month> = range.months().collect();
    let lanes = |table: &HashMap<Period, LaneSum>| -> Vec<LaneSum> {
        months
            .iter()
            .map(|m| {
                table
                    .get(&Period::of(*m, Grain::Month))
                    .copied()
                    .unwrap_or(none)
            })
            .collect()
    };
    let (mut counts, days) = (lanes(&events), lanes(&exposure));
    counts.push(total(&counts));
    let margin = Margin {
        total: months.len(),
        members: (0..months.len()).collect(),
    };
    let cells = rule.table(&counts, &[margin]);
    let figure = |cell: &NetworkCell, exposure: LaneSum| -> Result<(u64, u64, u32), String> {
        let NetworkCell::Released {
            value,
            contributors,
        } = cell
        else {
            return Err(cell
                .value()
                .err()
                .map(|w| w.to_string())
                .unwrap_or_default());
        };
        match rule.exposure(exposure) {
            NetworkCell::Released { value: 0, .. } => Err("no exposure recorded".to_string()),
            NetworkCell::Released { value: days, .. } => Ok((*value, days, *contributors)),
            NetworkCell::Withheld(why) => Err(format!("exposure withheld: {why}")),
        }
    };
    let months = months
        .iter()
        .zip(cells.iter().zip(&days))
        .map(|(month, (cell, exposure))| (*month, figure(cell, *exposure)))
        .collect();
    let pooled =
        figure(&cells[cells.len() - 1], total(&days)).map(|(events, exposure, _)| Pooled {
            events,
            exposure,
            facilities: u32::try_from(facilities).unwrap_or(u32::MAX),
        });
    MetricSums {
        months,
        total: pooled,
    }
}

/// The sum of `lanes` with the largest lane's facility count: a lower bound on the facilities
/// that contributed to any of them.
fn total(lanes: &[LaneSum]) -> LaneSum {
    LaneSum {
        value: lanes.iter().map(|l| l.value).sum(),
        contributors: lanes.iter().map(|l| l.contributors).max().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::NodeQuery;
    use crate::metric::catalogue::MetricCatalogue;
    use psonet_core::disclosure::primary::SmallCellRule;
    use psonet_core::query::AggregateQuery;

    fn range() -> MonthRange {
        MonthRange::new("2025-01".parse().unwrap(), "2025-04".parse().unwrap()).unwrap()
    }

    /// The domain of the falls metric by month, and sums with `events` and `days` per month
    /// (given as (value, facilities)).
    fn opened(events: [(i64, u32); 4], days: [(i64, u32); 4]) -> (LaneDomain, LaneSums) {
        let metric = MetricCatalogue::default().get("falls").unwrap().clone();
        let request = NodeQuery::metric(&metric, range(), Grain::Month, false).request("p");
        let domain = LaneDomain::of(&AggregateQuery::from_wire(&request).unwrap()).unwrap();
        assert_eq!((domain.cells.len(), domain.totals.len()), (4, 0));
        let lane = |(value, contributors): (i64, u32)| LaneSum {
            value,
            contributors,
        };
        let mut exposure = vec![lane((0, 0)); domain.exposure.len()];
        for (i, key) in domain.exposure.iter().enumerate() {
            if key.denominator == DenominatorType::PatientDays {
                let month = range()
                    .months()
                    .position(|m| Period::of(m, Grain::Month) == key.period)
                    .unwrap();
                exposure[i] = lane(days[month]);
            } else {
                // Admissions must not be read as patient days.
                exposure[i] = lane((1, 6));
            }
        }
        let sums = LaneSums {
            counts: events.map(lane).to_vec(),
            totals: Vec::new(),
            exposure,
        };
        (domain, sums)
    }

    /// The months and total of six facilities' opened sums.
    fn read_opened(events: [(i64, u32); 4], days: [(i64, u32); 4]) -> MetricSums {
        let (domain, sums) = opened(events, days);
        let rule = NetworkCellRule::new(SmallCellRule::default(), 5).unwrap();
        read(
            &domain,
            &sums,
            range(),
            DenominatorType::PatientDays,
            6,
            &rule,
        )
    }

    #[test]
    fn months_and_total_are_released_exactly() {
        let days = [(9000, 6); 4];
        let read = read_opened([(40, 6), (0, 0), (25, 5), (31, 6)], days);
        let figures: Vec<_> = read.months.iter().map(|(_, f)| f.clone()).collect();
        assert_eq!(
            figures,
            [
                Ok((40, 9000, 6)),
                Ok((0, 9000, 0)),
                Ok((25, 9000, 5)),
                Ok((31, 9000, 6))
            ]
        );
        assert_eq!(
            read.total,
            Ok(Pooled {
                events: 96,
                exposure: 36_000,
                facilities: 6
            })
        );
    }

    #[test]
    fn a_lone_withheld_month_takes_a_complement_and_the_total_stays() {
        let days = [(9000, 6); 4];
        let read = read_opened([(40, 6), (6, 3), (25, 5), (31, 6)], days);
        assert_eq!(read.months[1].1, Err("fewer than 11 events".to_string()));
        // The smallest released month goes too, or 102 − 40 − 25 − 31 would give the 6 away.
        assert!(
            read.months[2]
                .1
                .as_ref()
                .is_err_and(|why| why.contains("cannot be recovered"))
        );
        assert!(read.months[0].1.is_ok() && read.months[3].1.is_ok());
        assert_eq!(read.total.map(|p| p.events), Ok(102));
    }

    #[test]
    fn exposure_of_too_few_facilities_or_none_withholds_a_month() {
        let days = [(9000, 6), (0, 0), (2000, 2), (9000, 6)];
        let read = read_opened([(40, 6), (0, 0), (12, 5), (31, 6)], days);
        assert_eq!(read.months[1].1, Err("no exposure recorded".to_string()));
        assert_eq!(
            read.months[2].1,
            Err("exposure withheld: fewer than 5 facilities contributed".to_string())
        );
        assert_eq!(read.total.map(|p| p.exposure), Ok(20_000));
    }
}
