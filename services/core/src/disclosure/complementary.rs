//! Complementary suppression: no withheld cell may be recovered from a released total.
//!
//! An answer that releases a total next to the cells it sums (the `event_totals` of a query
//! grouped by a multi-valued dimension are such margins) lets anyone subtract: if only one
//! cell of the total is withheld, the total minus the released cells *is* that cell. So after
//! primary suppression, each margin is checked: the withheld cells of a released total must be
//! at least two, and what the total leaves for them must be large enough that none of them is
//! pinned down more tightly than its suppression flag already says (somewhere in 1..k-1).
//! While a margin fails, its smallest released non-zero cell is withheld too; when none is
//! left, the total itself is withheld. The loop runs to a fixed point, so margins that share
//! cells are handled too.

use super::primary::{CellRelease, SmallCellRule};

/// A total released in an answer and the cells of the same answer that it sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Margin {
    /// Index of the total among the answer's values.
    pub total: usize,
    /// Indices of the cells it sums.
    pub members: Vec<usize>,
}

/// Which of `values` are withheld: the primary rule first, then complements until every
/// released margin leaves its withheld cells as uncertain as their suppression flags.
pub fn withhold(values: &[u64], margins: &[Margin], rule: &SmallCellRule) -> Vec<bool> {
    let hidden: Vec<bool> = values
        .iter()
        .map(|v| rule.release(*v) == CellRelease::Suppressed)
        .collect();
    complete(values, hidden, margins, rule)
}

/// Adds complements to `hidden`, the cells some earlier rule withheld, until every released
/// margin leaves its withheld cells as uncertain as a suppression flag says (somewhere in
/// 1..k-1). Only the released cells' values and the totals are read: a withheld cell's value
/// may be unknown to the caller (a facility's count the gateway never saw) and be given as 0.
pub fn complete(
    values: &[u64],
    mut hidden: Vec<bool>,
    margins: &[Margin],
    rule: &SmallCellRule,
) -> Vec<bool> {
    loop {
        let mut changed = false;
        for margin in margins {
            if hidden[margin.total] || !exposes(values, &hidden, margin, rule) {
                continue;
            }
            let next = complement(values, &hidden, margin).unwrap_or(margin.total);
            hidden[next] = true;
            changed = true;
        }
        if !changed {
            return hidden;
        }
    }
}

/// Whether a released `margin` narrows one of its withheld cells: a single withheld cell is
/// recovered exactly; several share the residual `total - released`, and each lies somewhere
/// in `1..=residual - (withheld - 1)`, which must reach at least `k - 1`.
fn exposes(values: &[u64], hidden: &[bool], margin: &Margin, rule: &SmallCellRule) -> bool {
    let withheld = margin.members.iter().filter(|i| hidden[**i]).count() as u64;
    if withheld == 0 {
        return false;
    }
    if withheld == 1 {
        return true;
    }
    let released: u64 = margin
        .members
        .iter()
        .filter(|i| !hidden[**i])
        .map(|i| values[*i])
        .sum();
    let residual = values[margin.total].saturating_sub(released);
    let widest = residual.saturating_sub(withheld - 1);
    widest < u64::from(rule.min_cell_count()) - 1
}

/// The released member with the smallest non-zero value: the cheapest cell to withhold.
fn complement(values: &[u64], hidden: &[bool], margin: &Margin) -> Option<usize> {
    margin
        .members
        .iter()
        .copied()
        .filter(|i| !hidden[*i] && values[*i] > 0)
        .min_by_key(|i| (values[*i], *i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn margin(total: usize, members: &[usize]) -> Margin {
        Margin {
            total,
            members: members.to_vec(),
        }
    }

    #[test]
    fn a_lone_withheld_cell_gets_a_complement() {
        // cells 3, 40, 25; total 68 at index 3.
        let hidden = withhold(
            &[3, 40, 25, 68],
            &[margin(3, &[0, 1, 2])],
            &Default::default(),
        );
        assert_eq!(hidden, [true, false, true, false]);
    }

    #[test]
    fn two_tiny_withheld_cells_are_still_exposed_by_their_total() {
        // 1 + 1 under a total of 32: each must be 1. The 30 is withheld as well.
        let hidden = withhold(
            &[1, 1, 30, 32],
            &[margin(3, &[0, 1, 2])],
            &Default::default(),
        );
        assert_eq!(hidden, [true, true, true, false]);
    }

    #[test]
    fn the_total_goes_when_no_released_cell_is_left() {
        let hidden = withhold(&[4, 12], &[margin(1, &[0])], &Default::default());
        assert_eq!(hidden, [true, true]);
    }

    #[test]
    fn margins_without_withheld_cells_are_left_alone() {
        let hidden = withhold(&[11, 20, 31], &[margin(2, &[0, 1])], &Default::default());
        assert_eq!(hidden, [false, false, false]);
    }

    #[test]
    fn a_small_total_is_withheld_by_the_primary_rule() {
        let hidden = withhold(&[0, 5, 5], &[margin(2, &[0, 1])], &Default::default());
        assert_eq!(hidden, [false, true, true]);
    }
}
