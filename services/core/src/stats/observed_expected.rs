//! Observed / expected (indirect standardisation) with an exact mid-P test.
//!
//! A facility's case mix differs from its peers' (an ICU-heavy hospital has more falls per
//! patient day than a psychiatric one), so its observed count is compared with the count its
//! peers' stratum rates would give on its own exposure: E = Σ_s r̄_s·T_s over unit-type strata.
//! O/E = 1 is "as expected"; the two-sided mid-P test and interval follow NHSN, which does not
//! compute a ratio when E < 1.

use super::Interval;
use super::distribution::{poisson_cdf, poisson_pmf, poisson_sf_inclusive};
use super::poisson_interval::mid_p;

/// A stratum of the facility: the peers' rate in it and the facility's exposure in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stratum {
    /// The peers' pooled rate in the stratum, per unit of exposure.
    pub peer_rate: f64,
    /// The facility's exposure in the stratum.
    pub exposure: f64,
}

/// Expected events: Σ peer rate × own exposure over the strata.
pub fn expected(strata: &[Stratum]) -> f64 {
    strata.iter().map(|s| s.peer_rate * s.exposure).sum()
}

/// The comparison of an observed count with its expectation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObservedExpected {
    /// Observed events.
    pub observed: u64,
    /// Expected events.
    pub expected: f64,
    /// O / E.
    pub ratio: f64,
    /// Mid-P exact interval of O/E.
    pub interval: Interval,
    /// Two-sided mid-P p-value of O/E = 1.
    pub p_value: f64,
}

/// The two-sided mid-P p-value of observing `observed` when `expected` are expected:
/// p = min(1, 2·min(P(X > O) + ½P(X = O), P(X < O) + ½P(X = O))).
pub fn mid_p_value(observed: u64, expected: f64) -> f64 {
    let at = 0.5 * poisson_pmf(observed, expected);
    let above = poisson_sf_inclusive(observed + 1, expected) + at;
    let below = if observed == 0 {
        0.0
    } else {
        poisson_cdf(observed - 1, expected)
    } + at;
    (2.0 * above.min(below)).min(1.0)
}

/// O/E with its 95% mid-P interval and p-value; `None` when E < 1 (NHSN's rule).
pub fn compare(observed: u64, expected: f64) -> Option<ObservedExpected> {
    if expected.is_nan() || expected < 1.0 {
        return None;
    }
    Some(ObservedExpected {
        observed,
        expected,
        ratio: observed as f64 / expected,
        interval: mid_p(observed, 0.95).scaled(1.0 / expected),
        p_value: mid_p_value(observed, expected),
    })
}
