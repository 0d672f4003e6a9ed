//! The small-cell rule across window lengths.
//!
//! A gateway may ask for the same practice with windows of 6, 12, 18 or 24 months. Each count
//! passing the small-cell rule is not enough: two released counts of one side differ by the
//! events of the months one window has and the other lacks, and that difference must not be 1
//! to k−1 either. So a window's count is released only when it is 0 or at least k *and* differs
//! from the same side's count under every other allowed length by 0 or at least k. The rule is
//! symmetric, so no two counts it releases can be differenced into a small one.

use psonet_core::disclosure::primary::{CellRelease, SmallCellRule};

/// Whether `count` may be released beside `others`, the same side's counts under the other
/// allowed window lengths.
pub fn releasable(count: u64, others: &[u64], rule: &SmallCellRule) -> bool {
    let small = |n: u64| matches!(rule.release(n), CellRelease::Suppressed);
    !small(count) && others.iter().all(|other| !small(other.abs_diff(count)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_released_counts_differ_by_a_small_count() {
        let rule = SmallCellRule::default();
        assert!(releasable(40, &[40, 60, 80], &rule));
        assert!(releasable(0, &[0, 0], &rule));
        assert!(!releasable(5, &[5], &rule), "small itself");
        // 15 and 11 are each releasable alone; their difference, 4 events, is not.
        assert!(!releasable(15, &[11, 40], &rule));
        assert!(!releasable(11, &[15, 40], &rule));
        assert!(releasable(40, &[11, 15], &rule));
    }
}
