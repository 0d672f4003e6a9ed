//! The adopters' side of a practice effect: each adopting facility's before/after counts, as
//! its node released them, turned into a log rate ratio — or left out, with why.

use psonet_core::disclosure::primary::{CellRelease, SmallCellRule};
use psonet_core::month::Month;
use psonet_core::pb;
use psonet_core::stats::pooled_rate::CountExposure;
use psonet_core::stats::rate_ratio::{BeforeAfter, LogRateRatio};

/// One facility's before/after, ready to pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Study {
    /// Facility id (named to no one but itself).
    pub facility_id: String,
    /// Its start month (adopters only).
    pub start: Option<Month>,
    /// The windows' sums.
    pub counts: BeforeAfter,
    /// Months with exposure before and after.
    pub months: (u32, u32),
    /// Its log rate ratio.
    pub log_ratio: LogRateRatio,
}

/// A facility that adopted the practice but cannot be pooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// Facility id.
    pub facility_id: String,
    /// Why, in words.
    pub why: String,
}

/// The before/after sums of two windows.
pub fn before_after(before: (u64, u64), after: (u64, u64)) -> BeforeAfter {
    BeforeAfter {
        before: CountExposure {
            events: before.0,
            exposure: before.1 as f64,
        },
        after: CountExposure {
            events: after.0,
            exposure: after.1 as f64,
        },
    }
}

/// An adopter's study from its node's answer, its counts re-checked against the gateway's
/// small-cell rule (a node that released 1 to k−1 events is treated as having withheld them).
pub fn adopter_study(
    facility_id: &str,
    answer: &pb::PracticeOutcomeResponse,
    small_cells: &SmallCellRule,
) -> Result<Study, Excluded> {
    let excluded = |why: &str| Excluded {
        facility_id: facility_id.to_string(),
        why: why.to_string(),
    };
    let small = |n: u64| matches!(small_cells.release(n), CellRelease::Suppressed);
    if answer.before_suppressed
        || answer.after_suppressed
        || small(answer.before_events)
        || small(answer.after_events)
    {
        return Err(excluded(
            "a window's count is withheld by its node's small-cell rule",
        ));
    }
    let start = answer
        .start_month
        .parse::<Month>()
        .map_err(|_| excluded("its node sent no usable start month"))?;
    let counts = before_after(
        (answer.before_events, answer.before_exposure),
        (answer.after_events, answer.after_exposure),
    );
    let log_ratio = LogRateRatio::from_counts(counts)
        .ok_or_else(|| excluded("no exposure in a window, or no events in either"))?;
    Ok(Study {
        facility_id: facility_id.to_string(),
        start: Some(start),
        counts,
        months: (answer.before_months, answer.after_months),
        log_ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> pb::PracticeOutcomeResponse {
        pb::PracticeOutcomeResponse {
            adopted: true,
            start_month: "2025-01".into(),
            before_events: 400,
            before_exposure: 40_000,
            before_months: 12,
            after_events: 260,
            after_exposure: 40_000,
            after_months: 12,
            min_cell_count: 11,
            ..Default::default()
        }
    }

    #[test]
    fn an_adopter_becomes_a_log_rate_ratio() {
        let s = adopter_study("f1", &answer(), &SmallCellRule::default()).unwrap();
        assert!((s.log_ratio.estimate.exp() - 0.65).abs() < 1e-12);
        assert!((s.log_ratio.variance - (1.0 / 400.0 + 1.0 / 260.0)).abs() < 1e-15);
    }

    #[test]
    fn a_withheld_window_leaves_the_adopter_out() {
        let rule = SmallCellRule::default();
        let withheld = |a: &pb::PracticeOutcomeResponse| {
            adopter_study("f1", a, &rule)
                .unwrap_err()
                .why
                .contains("withheld")
        };
        let mut a = answer();
        a.after_suppressed = true;
        a.after_events = 0;
        assert!(withheld(&a));
        // A node that forgot its rule: 4 events are withheld here.
        let mut c = answer();
        c.after_events = 4;
        assert!(withheld(&c));
        let mut b = answer();
        b.after_exposure = 0;
        assert!(adopter_study("f1", &b, &rule).is_err());
    }
}
