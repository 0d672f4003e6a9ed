//! The non-adopters' side of a practice effect: how the metric changed at facilities that did
//! not adopt the practice, over the *same calendar windows* as the adopters.
//!
//! Falls drift with the seasons, with coding campaigns and with census mix, network-wide; an
//! adopter's drop means something only against what happened elsewhere meanwhile. Each
//! non-adopter's before and after are summed over every adopter's windows (so the comparison
//! has the adopters' calendar mix), from the monthly counts its node already releases for
//! trends (`AggregateService`, under all of its node's rules) — no new disclosure. A month whose
//! count was withheld would bias a sum, so a non-adopter with one in its windows is left out;
//! a month without exposure carries no rate and is skipped, as at the adopters' nodes.

use super::adopters::{Excluded, Study, before_after};
use crate::metric::fetch::{FacilityCounts, Unusable};
use psonet_core::month::Month;
use psonet_core::query::{Grain, Period};
use psonet_core::stats::rate_ratio::LogRateRatio;
use std::collections::BTreeSet;

/// The months of one window pair: `window` before `start` and `window` after it.
pub fn window_months(start: Month, window: u32) -> (Vec<Month>, Vec<Month>) {
    let before = (1..=window).rev().map(|k| start.minus(k)).collect();
    let after = (1..=window)
        .filter_map(|k| Month::from_index(start.index() + k))
        .collect();
    (before, after)
}

/// Events and exposure of `months` at one facility; Err when a month's count is withheld.
fn sum(f: &FacilityCounts<Period>, months: &[Month]) -> Result<(u64, u64, u32), ()> {
    let mut out = (0, 0, 0);
    for m in months {
        match f.counts.usable(&Period::of(*m, Grain::Month)) {
            Ok((events, exposure)) => {
                out.0 += events;
                out.1 += exposure;
                out.2 += 1;
            }
            Err(Unusable::NoExposure) => {}
            Err(Unusable::Withheld) => return Err(()),
        }
    }
    Ok(out)
}

/// The before and after months of a comparison around every one of `starts`: each month once,
/// and a month that is before one start and after another in neither.
pub fn comparison_months(starts: &[Month], window: u32) -> (Vec<Month>, Vec<Month>) {
    let (mut before, mut after) = (BTreeSet::new(), BTreeSet::new());
    for start in starts {
        let (b, a) = window_months(*start, window);
        before.extend(b);
        after.extend(a);
    }
    let both: BTreeSet<Month> = before.intersection(&after).copied().collect();
    let only = |set: BTreeSet<Month>| set.difference(&both).copied().collect();
    (only(before), only(after))
}

/// A non-adopter's study over the windows around every one of `starts`.
pub fn comparison_study(
    f: &FacilityCounts<Period>,
    starts: &[Month],
    window: u32,
) -> Result<Study, Excluded> {
    let excluded = |why: &str| Excluded {
        facility_id: f.id.clone(),
        why: why.to_string(),
    };
    let (before, after) = comparison_months(starts, window);
    let withheld = || excluded("a month's count in the windows is withheld by its node");
    let before = sum(f, &before).map_err(|_| withheld())?;
    let after = sum(f, &after).map_err(|_| withheld())?;
    let counts = before_after((before.0, before.1), (after.0, after.1));
    let log_ratio = LogRateRatio::from_counts(counts)
        .ok_or_else(|| excluded("no exposure in a window, or no events in either"))?;
    Ok(Study {
        facility_id: f.id.clone(),
        start: None,
        counts,
        months: (before.2, after.2),
        log_ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Count;
    use crate::metric::fetch::Counts;
    use std::collections::BTreeMap;

    fn facility(events: impl Fn(Month) -> Count) -> FacilityCounts<Period> {
        let months: Vec<Month> = (0..36)
            .map(|k| Month::from_index("2024-01".parse::<Month>().unwrap().index() + k).unwrap())
            .collect();
        let key = |m: &Month| Period::of(*m, Grain::Month);
        FacilityCounts {
            id: "f".into(),
            counts: Counts {
                events: months.iter().map(|m| (key(m), events(*m))).collect(),
                exposure: months
                    .iter()
                    .map(|m| (key(m), 1000))
                    .collect::<BTreeMap<_, _>>(),
            },
        }
    }

    #[test]
    fn windows_leave_the_start_month_out() {
        let (b, a) = window_months("2025-01".parse().unwrap(), 2);
        let s = |v: Vec<Month>| v.iter().map(|m| m.to_string()).collect::<Vec<_>>();
        assert_eq!(s(b), ["2024-11", "2024-12"]);
        assert_eq!(s(a), ["2025-02", "2025-03"]);
    }

    #[test]
    fn counts_each_month_once_and_a_month_between_two_starts_in_neither() {
        let starts: [Month; 3] = [
            "2025-01".parse().unwrap(),
            "2025-01".parse().unwrap(),
            "2025-03".parse().unwrap(),
        ];
        let (b, a) = comparison_months(&starts, 12);
        // Before: 2024-01..2024-12 and 2024-03..2025-02, less 2025-02 (after 2025-01).
        assert_eq!(b.len(), 13);
        assert_eq!(b.last().unwrap().to_string(), "2025-01");
        // After: 2025-02..2026-01 and 2025-04..2026-03, less 2025-02.
        assert_eq!(a.len(), 13);
        assert_eq!(a.first().unwrap().to_string(), "2025-03");
        let flat = facility(|_| Count::Known(20));
        let s = comparison_study(&flat, &starts, 12).unwrap();
        assert_eq!(s.counts.before.events, 260);
        assert_eq!(s.months, (13, 13));
        assert!(s.log_ratio.estimate.abs() < 1e-12);
    }

    #[test]
    fn a_withheld_month_in_the_windows_leaves_the_facility_out() {
        let starts = ["2025-03".parse().unwrap()];
        let holed = facility(|m| {
            if m.to_string() == "2024-06" {
                Count::Withheld
            } else {
                Count::Known(20)
            }
        });
        assert!(comparison_study(&holed, &starts, 12).is_err());
        assert!(comparison_study(&holed, &starts, 6).is_ok());
    }
}
