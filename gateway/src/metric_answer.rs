//! One node's answer to a metric query, checked and re-suppressed, as counts and exposure.
//!
//! The gateway asks a node for a metric's numerator (the metric's filter, no grouping or by unit
//! type) and reads the exposure of the metric's denominator from the same answer. Every cell
//! passes the gateway's small-cell rule again; a cell that is withheld stays withheld, so any
//! sum it belongs to is unknown rather than a silent lower bound.

use psonet_core::disclosure::primary::{CellRelease, SmallCellRule};
use psonet_core::pb;
use std::collections::BTreeMap;

/// A count the node released, or did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// The count (0 or at least k).
    Known(u64),
    /// 1..k-1 events: withheld.
    Withheld,
}

impl Count {
    fn add(self, other: Count) -> Count {
        match (self, other) {
            (Count::Known(a), Count::Known(b)) => Count::Known(a + b),
            _ => Count::Withheld,
        }
    }
}

/// Counts and exposure of one facility keyed by `K` (a period, a unit type, or nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Counts<K: Ord> {
    /// Events per key; a key absent here has zero events.
    pub events: BTreeMap<K, Count>,
    /// Exposure per key in the metric's denominator.
    pub exposure: BTreeMap<K, f64>,
}

impl<K: Ord + Copy> Counts<K> {
    /// The count of `key` (zero when the node sent no cell).
    pub fn count(&self, key: &K) -> Count {
        self.events.get(key).copied().unwrap_or(Count::Known(0))
    }

    /// The exposure of `key`.
    pub fn exposure_of(&self, key: &K) -> f64 {
        self.exposure.get(key).copied().unwrap_or(0.0)
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
    pub fn total(&self) -> (Count, f64) {
        let count = self
            .events
            .values()
            .fold(Count::Known(0), |sum, c| sum.add(*c));
        (count, self.exposure.values().sum())
    }
}

/// Checks `answer` and keys each cell and exposure record with `key` (which may refuse a period
/// outside the asked range with `Err`).
pub fn counts_from_wire<K: Ord + Copy>(
    answer: &pb::AggregateResponse,
    denominator: i32,
    rule: &SmallCellRule,
    key: impl Fn(&str, i32) -> Result<K, String>,
) -> Result<Counts<K>, String> {
    let mut events = BTreeMap::new();
    for cell in &answer.cells {
        let k = key(&cell.period, cell.unit_type)?;
        let count = if cell.suppressed {
            Count::Withheld
        } else {
            match rule.release(cell.count) {
                CellRelease::Released(n) => Count::Known(n),
                CellRelease::Suppressed => Count::Withheld,
            }
        };
        let entry = events.entry(k).or_insert(Count::Known(0));
        *entry = entry.add(count);
    }
    let mut exposure = BTreeMap::new();
    for e in answer
        .exposure
        .iter()
        .filter(|e| e.denominator == denominator)
    {
        *exposure.entry(key(&e.period, e.unit_type)?).or_insert(0.0) += e.value as f64;
    }
    Ok(Counts { events, exposure })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let rule = SmallCellRule::default();
        let by_unit = counts_from_wire(&answer, 1, &rule, |_, u| Ok(u)).unwrap();
        assert_eq!(by_unit.count(&1), Count::Known(30));
        // A node that forgot to suppress 4 events: the gateway withholds them.
        assert_eq!(by_unit.count(&2), Count::Withheld);
        assert_eq!(by_unit.total(), (Count::Withheld, 9000.0));
        let bad = counts_from_wire(&answer, 1, &rule, |p, _| {
            Err::<(), _>(format!("{p} is outside the range"))
        });
        assert!(bad.is_err());
    }
}
