//! Disclosure control: the one path every count a facility releases goes through.
//!
//! Under the Patient Safety Act not only patients but reporters and facilities must not be
//! identifiable from what leaves a facility. The rules, in the order a node applies them:
//!
//! 1. [`buckets`]: fixed buckets only — whole calendar months or coarser, never finer than the
//!    network's finest grain, fixed dimension values, no event-level predicate;
//! 2. [`query_set`]: a query whose range and filters select 1 to k-1 events is refused;
//! 3. optional differential privacy ([`noise`], [`discrete_gaussian`], [`zcdp`]): exact integer
//!    discrete-Gaussian noise on every cell of the answer's domain, charged to a budget;
//! 4. [`primary`] suppression: released counts are 0 or at least k (after noise);
//! 5. [`complementary`] suppression: no withheld cell can be recovered from a released total
//!    of the same answer.
//!
//! Network figures are released by the gateway from the cohort's sum that secure aggregation
//! opens, under [`network_cell`]: k and a facility minimum on the sum, then complements. The
//! node-suppressed path's gateway rule is `crate::network_release`.

pub mod buckets;
pub mod complementary;
pub mod discrete_gaussian;
pub mod network_cell;
pub mod noise;
pub mod primary;
pub mod query_set;
pub mod zcdp;

use crate::pb;
use crate::query::{AggregateQuery, CellKey, DIMENSIONS, is_multi_valued};
use complementary::{Margin, withhold};
use primary::SmallCellRule;
use std::collections::{BTreeMap, HashMap};

/// An answer's counts before disclosure control: the cells and, when grouping by a
/// multi-valued dimension, the event totals (the same cells without it, each event once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawAnswer {
    /// Cells of the query.
    pub cells: BTreeMap<CellKey, u64>,
    /// Event totals; empty when the query has none.
    pub totals: BTreeMap<CellKey, u64>,
}

/// What may leave the node, and how much of it was withheld.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReleasedAnswer {
    /// Non-zero cells, each released or marked suppressed.
    pub cells: Vec<pb::AggregateCell>,
    /// Non-zero event totals, each released or marked suppressed.
    pub event_totals: Vec<pb::AggregateCell>,
    /// Cells and totals released with their count.
    pub released: u32,
    /// Cells and totals withheld.
    pub suppressed: u32,
}

/// Applies primary and complementary suppression to `raw`. Zero cells are left out: a cell
/// absent from an answer holds zero events.
pub fn release(raw: &RawAnswer, rule: &SmallCellRule) -> ReleasedAnswer {
    let cells: Vec<(&CellKey, u64)> = nonzero(&raw.cells);
    let totals: Vec<(&CellKey, u64)> = nonzero(&raw.totals);
    let mut values: Vec<u64> = cells.iter().map(|(_, n)| *n).collect();
    values.extend(totals.iter().map(|(_, n)| *n));
    let hidden = withhold(&values, &margins(&cells, &totals), rule);
    let wire = |(i, (key, n)): (usize, &(&CellKey, u64))| {
        if hidden[i] {
            key.to_wire(0, true)
        } else {
            key.to_wire(*n, false)
        }
    };
    let suppressed = hidden.iter().filter(|h| **h).count() as u32;
    ReleasedAnswer {
        cells: cells.iter().enumerate().map(wire).collect(),
        event_totals: totals
            .iter()
            .enumerate()
            .map(|(i, c)| wire((i + cells.len(), c)))
            .collect(),
        released: values.len() as u32 - suppressed,
        suppressed,
    }
}

fn nonzero(cells: &BTreeMap<CellKey, u64>) -> Vec<(&CellKey, u64)> {
    cells
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k, *n))
        .collect()
}

/// Each event total is a margin over the cells that differ from it only in multi-valued
/// dimensions. Indices: cells first, then totals.
fn margins(cells: &[(&CellKey, u64)], totals: &[(&CellKey, u64)]) -> Vec<Margin> {
    let cells: Vec<CellKey> = cells.iter().map(|(k, _)| **k).collect();
    let totals: Vec<CellKey> = totals.iter().map(|(k, _)| **k).collect();
    margins_of(&cells, &totals)
}

/// The margins of a table of `cells` followed by its event `totals` (the same cells without
/// the multi-valued dimensions, each event once): every total over the cells that differ from
/// it only in multi-valued dimensions. Indices count the cells first, then the totals — the
/// order of a node's answer and of a secure sum's lanes alike.
pub fn margins_of(cells: &[CellKey], totals: &[CellKey]) -> Vec<Margin> {
    let index: HashMap<CellKey, usize> = totals
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, cells.len() + i))
        .collect();
    let mut margins: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, key) in cells.iter().enumerate() {
        if let Some(total) = index.get(&without_multi_valued(key)) {
            margins.entry(*total).or_default().push(i);
        }
    }
    margins
        .into_iter()
        .map(|(total, members)| Margin { total, members })
        .collect()
}

fn without_multi_valued(key: &CellKey) -> CellKey {
    let mut out = *key;
    for (slot, d) in DIMENSIONS.iter().enumerate() {
        if is_multi_valued(*d) {
            out.values[slot] = 0;
        }
    }
    out
}

/// A canonical text of a query: equal for queries that ask the same thing, so it keys the
/// noisy-answer cache and reads well in the audit trail.
pub fn canonical(query: &AggregateQuery) -> String {
    let mut group_by: Vec<&str> = query.group_by.iter().map(|d| short(*d)).collect();
    group_by.sort_unstable();
    let filter: Vec<String> = query
        .filter
        .iter()
        .map(|(d, values)| {
            let values: Vec<String> = values.iter().map(u8::to_string).collect();
            format!("{}={}", short(*d), values.join(","))
        })
        .collect();
    format!(
        "{}..{} by {:?} group [{}] filter [{}]",
        query.range.from(),
        query.range.to(),
        query.grain,
        group_by.join(","),
        filter.join(" ")
    )
}

/// A dimension's name without the `DIMENSION_` prefix.
pub fn short(d: pb::Dimension) -> &'static str {
    let name = d.as_str_name();
    name.strip_prefix("DIMENSION_").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Grain, Period};

    fn key(month: &str, category: u8, harm: u8) -> CellKey {
        let mut values = [0u8; 9];
        values[0] = category;
        values[2] = harm;
        CellKey {
            period: Period::of(month.parse().unwrap(), Grain::Month),
            values,
        }
    }

    #[test]
    fn totals_are_margins_of_their_category_cells() {
        // Harm 1: falls 30, medication 4 (suppressed); 34 events in all. Without a complement
        // the total would give the 4 away.
        let raw = RawAnswer {
            cells: [(key("2025-01", 3, 1), 30), (key("2025-01", 5, 1), 4)].into(),
            totals: [(key("2025-01", 0, 1), 34)].into(),
        };
        let out = release(&raw, &SmallCellRule::default());
        assert!(out.cells.iter().all(|c| c.suppressed));
        assert_eq!(out.event_totals[0].count, 34);
        assert_eq!((out.released, out.suppressed), (1, 2));
    }

    #[test]
    fn canonical_text_ignores_group_by_order() {
        let q = |g: Vec<i32>| {
            AggregateQuery::from_wire(&pb::AggregateRequest {
                month_from: "2025-01".into(),
                month_to: "2025-03".into(),
                group_by: g,
                ..Default::default()
            })
            .unwrap()
        };
        assert_eq!(canonical(&q(vec![1, 3])), canonical(&q(vec![3, 1])));
        assert_eq!(
            canonical(&q(vec![1, 3])),
            "2025-01..2025-03 by Month group [CATEGORY,HARM] filter []"
        );
    }
}
