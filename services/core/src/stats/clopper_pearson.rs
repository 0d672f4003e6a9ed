//! Clopper–Pearson exact interval for a proportion x/n (p-charts, "% of falls with injury"):
//! L = Beta⁻¹(α/2; x, n−x+1), U = Beta⁻¹(1−α/2; x+1, n−x), found by inverting binomial tails.

use super::Interval;
use super::distribution::{binomial_cdf, binomial_sf_inclusive, bisect};

/// The exact interval for `successes` out of `trials` at `confidence`; `None` when
/// `successes > trials` or there are no trials.
pub fn clopper_pearson(successes: u64, trials: u64, confidence: f64) -> Option<Interval> {
    if trials == 0 || successes > trials {
        return None;
    }
    let half = (1.0 - confidence) / 2.0;
    let lower = if successes == 0 {
        0.0
    } else {
        // P(X ≥ x | p) = α/2, rising in p.
        bisect(0.0, 1.0, |p| {
            binomial_sf_inclusive(successes, trials, p) - half
        })
    };
    let upper = if successes == trials {
        1.0
    } else {
        // P(X ≤ x | p) = α/2, falling in p.
        bisect(0.0, 1.0, |p| binomial_cdf(successes, trials, p) - half)
    };
    Some(Interval { lower, upper })
}
