//! The small-cell rule across window lengths.
//!
//! A gateway may ask for the same practice with windows of 6, 12, 18 or 24 months. Each count
//! passing the small-cell rule is not enough: two released counts of one side differ by the
//! events of the months one window has and the other lacks, and that difference must not be 1
//! to k−1 either. So a window's count is released only when it is 0 or at least k *and* differs
//! from the same side's count under every other allowed length by 0 or at least k. The rule is
//! symmetric, so no two counts it releases can be differenced into a small one.
//!
//! The same months are also released one by one, as monthly counts (`AggregateService`), where
//! a month of 1 to k−1 events is withheld; a window's sum less its other, released months would
//! give that month away. So a side whose months include one of 1 to k−1 events is withheld too.

use super::effect::time_of;
use super::series::MonthCount;
use psonet_core::disclosure::primary::{CellRelease, SmallCellRule};
use psonet_core::month::Month;

/// Whether `count` may be released beside `others`, the same side's counts under the other
/// allowed window lengths.
pub fn releasable(count: u64, others: &[u64], rule: &SmallCellRule) -> bool {
    let small = |n: u64| matches!(rule.release(n), CellRelease::Suppressed);
    !small(count) && others.iter().all(|other| !small(other.abs_diff(count)))
}

/// Whether a month summed into one side of the windows around `start` (`before`, or after)
/// holds 1 to k−1 events. Months without exposure are not summed, so they do not count.
pub fn holds_a_small_month(
    series: &[MonthCount],
    start: Month,
    window: u32,
    before: bool,
    rule: &SmallCellRule,
) -> bool {
    let w = f64::from(window);
    series.iter().filter(|m| m.exposure > 0).any(|m| {
        let t = time_of(m.month, start);
        let inside = if before {
            t >= -w && t < 0.0
        } else {
            t > 0.0 && t <= w
        };
        inside && matches!(rule.release(m.events), CellRelease::Suppressed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_month_inside_a_side_withholds_it() {
        let rule = SmallCellRule::default();
        let start: Month = "2025-01".parse().unwrap();
        let month = |k: u32, events| MonthCount {
            month: Month::from_index(start.index() - 3 + k).unwrap(),
            events,
            exposure: 1000,
        };
        // 2024-10 .. 2025-04: a month of 4 events in 2024-11, none small after.
        let series = [
            month(0, 30),
            month(1, 4),
            month(2, 30),
            month(3, 2),
            month(4, 30),
            month(5, 0),
            month(6, 30),
        ];
        assert!(holds_a_small_month(&series, start, 3, true, &rule));
        assert!(
            !holds_a_small_month(&series, start, 1, true, &rule),
            "2024-11 outside"
        );
        assert!(
            !holds_a_small_month(&series, start, 3, false, &rule),
            "the start month's 2 and a zero are not"
        );
    }

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
