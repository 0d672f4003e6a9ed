//! The query-set-size minimum: a query whose filters select fewer than k events is refused.
//!
//! Primary suppression hides small cells, but a query narrowed by filters to a handful of
//! events is itself a small cell once its cells are added up. The size is measured from the
//! counters, never from events: the same range and filters, grouped only by the multi-valued
//! dimensions that list several values (an event may count under each), by year. The largest
//! of those counts is a lower bound on the distinct events selected, so the check errs towards
//! refusing.

use super::primary::{CellRelease, SmallCellRule};
use crate::query::{AggregateQuery, CellKey, Grain, is_multi_valued};
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

/// The query whose cells measure the query set of `query`.
pub fn size_query(query: &AggregateQuery) -> AggregateQuery {
    AggregateQuery {
        range: query.range,
        grain: Grain::Year,
        group_by: query
            .filter
            .iter()
            .filter(|(d, values)| is_multi_valued(**d) && values.len() > 1)
            .map(|(d, _)| *d)
            .collect(),
        filter: query.filter.clone(),
    }
}

/// A lower bound on the distinct events counted in `cells` of a [`size_query`].
pub fn size_lower_bound(cells: &BTreeMap<CellKey, u64>) -> u64 {
    let mut by_values: BTreeMap<[u8; 9], u64> = BTreeMap::new();
    for (cell, n) in cells {
        *by_values.entry(cell.values).or_default() += n;
    }
    by_values.into_values().max().unwrap_or(0)
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
    use crate::pb;

    #[test]
    fn one_to_k_minus_one_events_are_refused() {
        let rule = SmallCellRule::default();
        assert_eq!(check(0, &rule), Ok(()));
        assert_eq!(check(10, &rule), Err(QuerySetTooSmall { min: 11 }));
        assert_eq!(check(11, &rule), Ok(()));
    }

    #[test]
    fn several_category_values_are_measured_per_value() {
        let req = pb::AggregateRequest {
            month_from: "2025-01".into(),
            month_to: "2025-12".into(),
            group_by: vec![pb::Dimension::Category as i32],
            filter: Some(pb::AggregateFilter {
                categories: vec![3, 5],
                harms: vec![1],
                ..Default::default()
            }),
            ..Default::default()
        };
        let q = AggregateQuery::from_wire(&req).unwrap();
        let size = size_query(&q);
        assert_eq!(size.group_by, [pb::Dimension::Category]);
        assert_eq!(size.grain, Grain::Year);
        assert_eq!(size.filter, q.filter);
    }
}
