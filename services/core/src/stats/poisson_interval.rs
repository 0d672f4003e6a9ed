//! Confidence intervals for a Poisson count: exact (Garwood 1936), mid-P exact (what NHSN uses
//! for O ≤ 100) and Byar's approximation (NHSN above 100). Divide by the exposure for a rate.

use super::Interval;
use super::distribution::{
    bisect, normal_quantile, poisson_cdf, poisson_pmf, poisson_search_ceiling, poisson_sf_inclusive,
};

/// Exact (Garwood) interval for the mean of a Poisson count `observed` at `confidence` (e.g.
/// 0.95): L = ½χ²(α/2; 2O), U = ½χ²(1−α/2; 2O+2), found by inverting the Poisson tails.
pub fn garwood(observed: u64, confidence: f64) -> Interval {
    let half = (1.0 - confidence) / 2.0;
    let ceiling = poisson_search_ceiling(observed);
    let lower = if observed == 0 {
        0.0
    } else {
        // P(X ≥ O | λ) = α/2, rising in λ.
        bisect(0.0, ceiling, |mu| poisson_sf_inclusive(observed, mu) - half)
    };
    // P(X ≤ O | λ) = α/2, falling in λ.
    let upper = bisect(0.0, ceiling, |mu| poisson_cdf(observed, mu) - half);
    Interval { lower, upper }
}

/// Mid-P exact interval: the lower end solves P(X > O) + ½P(X = O) = α/2, the upper end
/// P(X < O) + ½P(X = O) = α/2.
pub fn mid_p(observed: u64, confidence: f64) -> Interval {
    let half = (1.0 - confidence) / 2.0;
    let ceiling = poisson_search_ceiling(observed);
    let lower = if observed == 0 {
        0.0
    } else {
        bisect(0.0, ceiling, |mu| {
            poisson_sf_inclusive(observed + 1, mu) + 0.5 * poisson_pmf(observed, mu) - half
        })
    };
    let upper = bisect(0.0, ceiling, |mu| {
        let below = if observed == 0 {
            0.0
        } else {
            poisson_cdf(observed - 1, mu)
        };
        below + 0.5 * poisson_pmf(observed, mu) - half
    });
    Interval { lower, upper }
}

/// Byar's approximation: L = O(1 − 1/(9O) − z/(3√O))³, U = (O+1)(1 − 1/(9(O+1)) + z/(3√(O+1)))³.
pub fn byar(observed: u64, confidence: f64) -> Interval {
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let o = observed as f64;
    let lower = if observed == 0 {
        0.0
    } else {
        o * (1.0 - 1.0 / (9.0 * o) - z / (3.0 * o.sqrt())).powi(3)
    };
    let o1 = o + 1.0;
    let upper = o1 * (1.0 - 1.0 / (9.0 * o1) + z / (3.0 * o1.sqrt())).powi(3);
    Interval { lower, upper }
}

/// The NHSN choice: mid-P exact up to 100 events, Byar above.
pub fn nhsn(observed: u64, confidence: f64) -> Interval {
    if observed <= 100 {
        mid_p(observed, confidence)
    } else {
        byar(observed, confidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_events_have_the_textbook_upper_bound() {
        let ci = garwood(0, 0.95);
        assert_eq!(ci.lower, 0.0);
        assert!((ci.upper - 3.688_879_454_113_936).abs() < 1e-12);
    }
}
