//! The query-set-size minimum: a query whose filters select fewer than k events is refused.
//!
//! Primary suppression hides small cells, but a query narrowed by filters to a handful of
//! events is itself a small cell once its cells are added up. The size is read from the
//! answer's own counts before anything is released: the event totals when the answer has them
//! (each event once), else the cells — which count each event once unless the query groups by
//! a multi-valued dimension listing several values in its filter; then the largest sum over one
//! value of it is a lower bound on the distinct events, so the check errs towards refusing.

use super::RawAnswer;
use super::primary::{CellRelease, SmallCellRule};
use crate::query::{DIMENSIONS, is_multi_valued};
use std::collections::BTreeMap;

/// A query refused because it selects 1 to k-1 events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the query's range and filters select fewer than {min} events; widen the range or drop filters"
)]
pub struct QuerySetTooSmall {
    /// The smallest query set answered (k).
    pub min: u32,
}

/// A lower bound on the distinct events `raw` counts (exact unless noted above).
pub fn size_lower_bound(raw: &RawAnswer) -> u64 {
    if !raw.totals.is_empty() {
        return raw.totals.values().sum();
    }
    let mut by_value: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for (cell, n) in &raw.cells {
        let multi: Vec<u8> = DIMENSIONS
            .iter()
            .enumerate()
            .filter(|(_, d)| is_multi_valued(**d))
            .map(|(slot, _)| cell.values[slot])
            .collect();
        *by_value.entry(multi).or_default() += n;
    }
    by_value.into_values().max().unwrap_or(0)
}

/// Refuses a query set of 1 to k-1 events; an empty one reveals nothing a zero cell does not.
pub fn check(size: u64, rule: &SmallCellRule) -> Result<(), QuerySetTooSmall> {
    match rule.release(size) {
        CellRelease::Released(_) => Ok(()),
        CellRelease::Suppressed => Err(QuerySetTooSmall {
            min: rule.min_cell_count(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_to_k_minus_one_events_are_refused() {
        let rule = SmallCellRule::default();
        assert_eq!(check(0, &rule), Ok(()));
        assert_eq!(check(10, &rule), Err(QuerySetTooSmall { min: 11 }));
        assert_eq!(check(11, &rule), Ok(()));
    }

    #[test]
    fn sizes_come_from_totals_or_per_multi_valued_value() {
        use crate::query::{CellKey, Grain, Period};
        let cell = |category: u8, harm: u8| {
            let mut values = [0u8; 9];
            values[0] = category;
            values[2] = harm;
            CellKey {
                period: Period::of("2025-01".parse().unwrap(), Grain::Month),
                values,
            }
        };
        // Falls 6 + 2, medication 5: without totals, at least 8 distinct events.
        let raw = RawAnswer {
            cells: [(cell(3, 1), 6), (cell(3, 2), 2), (cell(5, 1), 5)].into(),
            totals: Default::default(),
        };
        assert_eq!(size_lower_bound(&raw), 8);
        let with_totals = RawAnswer {
            totals: [(cell(0, 1), 9), (cell(0, 2), 2)].into(),
            ..raw
        };
        assert_eq!(size_lower_bound(&with_totals), 11);
        assert_eq!(size_lower_bound(&RawAnswer::default()), 0);
    }
}
