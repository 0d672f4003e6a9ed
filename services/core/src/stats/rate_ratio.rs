//! The rate ratio after vs before an intervention, with its exact conditional interval.
//!
//! A facility that adopts a practice wants to know whether its rate changed: RR = (a/Tₐ)/(b/T_b)
//! with a, Tₐ the events and exposure after adoption and b, T_b before. Its counts are small
//! (a unit's falls over twelve months), so a normal approximation on log RR is poor exactly when
//! it matters. The exact interval conditions on the total n = a + b: given n, a is
//! Binomial(n, p) with p = RR·Tₐ / (RR·Tₐ + T_b), free of the nuisance baseline rate, so a
//! Clopper–Pearson interval for p maps one to one onto RR = p/(1 − p) · T_b/Tₐ (Breslow & Day
//! 1987, *Statistical Methods in Cancer Research* II, §2.3; Rothman, Greenland & Lash,
//! *Modern Epidemiology*, "exact conditional" rate ratio). The mid-P variant (Lancaster 1961)
//! counts half the probability of the observed value in each tail: less conservative, close to
//! nominal coverage, and what NHSN uses for its ratios.
//!
//! For pooling across facilities the log rate ratio and its large-sample variance
//! 1/a + 1/b are given too ([`LogRateRatio`]), with the usual ½ continuity correction when one
//! side has no events, and the ratio of two rate ratios (a facility's change against the
//! network's over the same months) on that scale.

use super::Interval;
use super::clopper_pearson::clopper_pearson;
use super::distribution::{
    binomial_cdf, binomial_pmf, binomial_sf_inclusive, bisect, normal_quantile,
};
use super::pooled_rate::CountExposure;
use super::segmented_poisson::SeriesMonth;

/// Events and exposure before and after an intervention's start (the start month itself is
/// left out by the caller).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeforeAfter {
    /// The window before the start.
    pub before: CountExposure,
    /// The window after the start.
    pub after: CountExposure,
}

impl BeforeAfter {
    /// Both exposures are positive and finite: a ratio of rates is defined.
    fn has_exposure(&self) -> bool {
        [self.before.exposure, self.after.exposure]
            .iter()
            .all(|t| t.is_finite() && *t > 0.0)
    }

    /// T_b / Tₐ, the factor that turns the odds p/(1 − p) into a rate ratio.
    fn exposure_ratio(&self) -> f64 {
        self.before.exposure / self.after.exposure
    }
}

/// The before/after windows of a monthly series, with how many months each side held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Windows {
    /// Events and exposure summed over each window.
    pub counts: BeforeAfter,
    /// Months of the series in the before window (fewer than the window when data are missing).
    pub months_before: usize,
    /// Months of the series in the after window.
    pub months_after: usize,
}

/// Sums `months` into the `window` months before `start` (start − window ≤ t < start) and the
/// `window` months after it (start < t ≤ start + window). The start month itself is in neither:
/// an intervention is rolled out during it, so it is a transition, not a before or an after.
/// The caller decides whether a short window (missing months) is still worth a ratio.
pub fn windows(months: &[SeriesMonth], start: f64, window: u32) -> Windows {
    let w = f64::from(window);
    let empty = CountExposure {
        events: 0,
        exposure: 0.0,
    };
    let mut out = Windows {
        counts: BeforeAfter {
            before: empty,
            after: empty,
        },
        months_before: 0,
        months_after: 0,
    };
    for m in months {
        let (side, count) = if m.time >= start - w && m.time < start {
            (&mut out.counts.before, &mut out.months_before)
        } else if m.time > start && m.time <= start + w {
            (&mut out.counts.after, &mut out.months_after)
        } else {
            continue;
        };
        side.events += m.events;
        side.exposure += m.exposure;
        *count += 1;
    }
    out
}

/// The rate ratio after vs before with its exact and mid-P conditional intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateRatio {
    /// (a/Tₐ)/(b/T_b): 0 when nothing happened after, infinite when nothing happened before.
    pub ratio: f64,
    /// Exact conditional interval (Clopper–Pearson on p, transformed); guaranteed coverage.
    pub exact: Interval,
    /// Mid-P conditional interval; closer to nominal coverage, not guaranteed.
    pub mid_p: Interval,
    /// Two-sided mid-P p-value of RR = 1: 2·min(P(X > a) + ½P(X = a), P(X < a) + ½P(X = a))
    /// under p₀ = Tₐ/(Tₐ + T_b), capped at 1.
    pub mid_p_value: f64,
}

/// p/(1 − p) · T_b/Tₐ, with p = 1 mapping to infinity.
fn ratio_from_share(p: f64, exposure_ratio: f64) -> f64 {
    if p >= 1.0 {
        f64::INFINITY
    } else {
        p / (1.0 - p) * exposure_ratio
    }
}

/// The mid-P interval for a binomial proportion: the lower end solves
/// P(X > x) + ½P(X = x) = α/2, the upper end P(X < x) + ½P(X = x) = α/2.
fn mid_p_proportion(successes: u64, trials: u64, confidence: f64) -> Interval {
    let half = (1.0 - confidence) / 2.0;
    let (x, n) = (successes, trials);
    let lower = if x == 0 {
        0.0
    } else {
        bisect(0.0, 1.0, |p| {
            binomial_sf_inclusive(x + 1, n, p) + 0.5 * binomial_pmf(x, n, p) - half
        })
    };
    let upper = if x == n {
        1.0
    } else {
        bisect(0.0, 1.0, |p| {
            let below = if x == 0 {
                0.0
            } else {
                binomial_cdf(x - 1, n, p)
            };
            below + 0.5 * binomial_pmf(x, n, p) - half
        })
    };
    Interval { lower, upper }
}

/// The rate ratio after vs before at `confidence` (e.g. 0.95). `None` when there were no events
/// on either side (no information about a ratio), an exposure is not positive and finite, or
/// `confidence` is outside (0, 1).
pub fn rate_ratio(counts: BeforeAfter, confidence: f64) -> Option<RateRatio> {
    if !(counts.has_exposure() && confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let (a, b) = (counts.after.events, counts.before.events);
    let n = a + b;
    let exact_share = clopper_pearson(a, n, confidence)?;
    let mid_share = mid_p_proportion(a, n, confidence);
    let k = counts.exposure_ratio();
    let to_ratio = |share: Interval| Interval {
        lower: ratio_from_share(share.lower, k),
        upper: ratio_from_share(share.upper, k),
    };
    let ratio = if b == 0 {
        f64::INFINITY
    } else {
        (a as f64 / counts.after.exposure) / (b as f64 / counts.before.exposure)
    };
    let null_share = counts.after.exposure / (counts.after.exposure + counts.before.exposure);
    let at = 0.5 * binomial_pmf(a, n, null_share);
    let above = binomial_sf_inclusive(a + 1, n, null_share) + at;
    let below = if a == 0 {
        0.0
    } else {
        binomial_cdf(a - 1, n, null_share)
    } + at;
    Some(RateRatio {
        ratio,
        exact: to_ratio(exact_share),
        mid_p: to_ratio(mid_share),
        mid_p_value: (2.0 * above.min(below)).min(1.0),
    })
}

/// A log rate ratio with its large-sample variance: what a meta-analysis pools and what a
/// ratio of rate ratios subtracts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRateRatio {
    /// ln((a/Tₐ)/(b/T_b)), on continuity-corrected counts when one side had none.
    pub estimate: f64,
    /// 1/a + 1/b (delta method, Poisson counts), on the same counts.
    pub variance: f64,
    /// Whether ½ was added to both counts because one of them was zero.
    pub continuity_corrected: bool,
}

impl LogRateRatio {
    /// What is added to both counts when one of them is zero (Cochrane Handbook §10.4.4.2;
    /// metafor's `escalc(measure = "IRR", add = 1/2, to = "only0")`).
    pub const CONTINUITY_CORRECTION: f64 = 0.5;

    /// The log rate ratio after vs before. `None` when both sides have no events (such a
    /// facility says nothing about the ratio and is left out, as Cochrane advises for
    /// double-zero studies) or an exposure is not positive and finite.
    pub fn from_counts(counts: BeforeAfter) -> Option<Self> {
        if !counts.has_exposure() {
            return None;
        }
        let (a, b) = (counts.after.events, counts.before.events);
        if a == 0 && b == 0 {
            return None;
        }
        let corrected = a == 0 || b == 0;
        let add = if corrected {
            Self::CONTINUITY_CORRECTION
        } else {
            0.0
        };
        let (a, b) = (a as f64 + add, b as f64 + add);
        Some(Self {
            estimate: (a / counts.after.exposure).ln() - (b / counts.before.exposure).ln(),
            variance: 1.0 / a + 1.0 / b,
            continuity_corrected: corrected,
        })
    }

    /// The Wald interval on the log scale: estimate ± z·√variance.
    pub fn interval(&self, confidence: f64) -> Interval {
        let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
        let half = z * self.variance.sqrt();
        Interval {
            lower: self.estimate - half,
            upper: self.estimate + half,
        }
    }
}

/// A facility's rate ratio divided by a comparison's over the same months (the network's or
/// non-adopters' trend): how much of the facility's change is its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioOfRateRatios {
    /// RR_own / RR_comparison.
    pub ratio: f64,
    /// Wald interval on the log scale, exponentiated: variance 1/a₁ + 1/b₁ + 1/a₂ + 1/b₂.
    pub interval: Interval,
}

/// The ratio of `own`'s rate ratio to `comparison`'s at `confidence`. `None` when either has
/// no events on both sides or lacks exposure.
pub fn ratio_of_rate_ratios(
    own: BeforeAfter,
    comparison: BeforeAfter,
    confidence: f64,
) -> Option<RatioOfRateRatios> {
    let (own, comparison) = (
        LogRateRatio::from_counts(own)?,
        LogRateRatio::from_counts(comparison)?,
    );
    let difference = LogRateRatio {
        estimate: own.estimate - comparison.estimate,
        variance: own.variance + comparison.variance,
        continuity_corrected: own.continuity_corrected || comparison.continuity_corrected,
    };
    let log = difference.interval(confidence);
    Some(RatioOfRateRatios {
        ratio: difference.estimate.exp(),
        interval: Interval {
            lower: log.lower.exp(),
            upper: log.upper.exp(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(before: (u64, f64), after: (u64, f64)) -> BeforeAfter {
        BeforeAfter {
            before: CountExposure {
                events: before.0,
                exposure: before.1,
            },
            after: CountExposure {
                events: after.0,
                exposure: after.1,
            },
        }
    }

    #[test]
    fn windows_leave_the_start_month_out() {
        let months: Vec<SeriesMonth> = (0..30)
            .map(|t| SeriesMonth {
                time: f64::from(t),
                events: if t == 14 { 100 } else { 1 },
                exposure: 10.0,
            })
            .collect();
        let w = windows(&months, 14.0, 12);
        assert_eq!((w.months_before, w.months_after), (12, 12));
        assert_eq!(w.counts.before.events, 12, "months 2..=13");
        assert_eq!(
            w.counts.after.events, 12,
            "months 15..=26, not the start's 100"
        );
        assert_eq!(w.counts.after.exposure, 120.0);
        let short = windows(&months, 25.0, 12);
        assert_eq!((short.months_before, short.months_after), (12, 4));
    }

    #[test]
    fn no_events_at_all_is_no_information() {
        assert_eq!(rate_ratio(counts((0, 100.0), (0, 100.0)), 0.95), None);
        assert_eq!(
            LogRateRatio::from_counts(counts((0, 100.0), (0, 100.0))),
            None
        );
        assert_eq!(rate_ratio(counts((3, 0.0), (2, 100.0)), 0.95), None);
    }

    #[test]
    fn one_empty_side_gives_an_open_end() {
        let none_after = rate_ratio(counts((9, 1000.0), (0, 1000.0)), 0.95).unwrap();
        assert_eq!(none_after.ratio, 0.0);
        assert_eq!(none_after.exact.lower, 0.0);
        assert!(none_after.exact.upper.is_finite());
        let none_before = rate_ratio(counts((0, 1000.0), (9, 1000.0)), 0.95).unwrap();
        assert_eq!(none_before.ratio, f64::INFINITY);
        assert_eq!(none_before.exact.upper, f64::INFINITY);
        assert!(none_before.exact.lower > 0.0);
    }

    #[test]
    fn mid_p_lies_inside_exact() {
        let rr = rate_ratio(counts((20, 9100.0), (12, 9000.0)), 0.95).unwrap();
        assert!(rr.exact.lower < rr.mid_p.lower && rr.mid_p.lower < rr.ratio);
        assert!(rr.ratio < rr.mid_p.upper && rr.mid_p.upper < rr.exact.upper);
    }

    #[test]
    fn a_zero_cell_is_corrected_by_a_half() {
        let log = LogRateRatio::from_counts(counts((4, 200.0), (0, 100.0))).unwrap();
        assert!(log.continuity_corrected);
        assert!((log.estimate - (0.5f64 / 100.0 / (4.5 / 200.0)).ln()).abs() < 1e-15);
        assert!((log.variance - (2.0 + 1.0 / 4.5)).abs() < 1e-15);
    }
}
