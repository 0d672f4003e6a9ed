//! What a funnel shows of facilities other than the caller, so that a point cannot be followed
//! from one request to the next.
//!
//! Pseudonyms are drawn afresh for every request ([`crate::pseudonym`]), but a facility's
//! exact exposure is the same in every request over the same months — for every metric with
//! the same denominator — so an exact figure would let a partner follow one point across
//! answers and, with a published bed-size table (patient days ≈ beds × 365 × occupancy),
//! name it. So the point of a facility other than the caller shows:
//!
//! - its **exposure banded**: rounded on a log scale to the nearest of 1, 2 or 5 × a power of
//!   ten (23,150 → 20,000; 38,000 → 50,000; 140,000 → 100,000), a band two to two and a half
//!   times wide, so a band holds many hospitals of a bed-size table;
//! - its **rate to two significant figures**, and **no event count** (0): an exact rate, or an
//!   exact count beside the rate, would give the exact exposure back (exposure = events ×
//!   multiplier / rate);
//! - its **limits at the banded exposure**, so they do not give it back either, while its
//!   **position** (within, above or below the limits) is decided on the exact figures.
//!
//! Points are listed by banded exposure, then by pseudonym, so their order carries nothing of
//! the exact figures, and the drawn limit curve spans the banded exposures. The rate quantiles
//! (P10…P90), which can equal one facility's rate, are rounded the same way. The caller's own
//! point, and its scorecard, keep their exact figures: they are its own.

/// Significant figures of a peer's rate and of the rate quantiles.
pub const RATE_SIGNIFICANT_FIGURES: i32 = 2;

/// `exposure` rounded on a log scale to the nearest of 1, 2 or 5 × 10ⁿ (0 stays 0).
pub fn exposure_band(exposure: f64) -> f64 {
    if !(exposure.is_finite() && exposure > 0.0) {
        return 0.0;
    }
    let decade = 10f64.powf(exposure.log10().floor());
    let mantissa = exposure / decade;
    // Band edges on a log scale: √2, √10 and √50 between 1, 2, 5 and 10.
    let step = if mantissa < 2f64.sqrt() {
        1.0
    } else if mantissa < 10f64.sqrt() {
        2.0
    } else if mantissa < 50f64.sqrt() {
        5.0
    } else {
        10.0
    };
    step * decade
}

/// `x` to `digits` significant figures.
pub fn round_significant(x: f64, digits: i32) -> f64 {
    if !(x.is_finite() && x != 0.0) {
        return x;
    }
    // Scale by an exact power of ten each way, so 987 becomes 990 and not 990.0000000000001.
    let shift = digits - 1 - x.abs().log10().floor() as i32;
    if shift >= 0 {
        let scale = 10f64.powi(shift);
        (x * scale).round() / scale
    } else {
        let scale = 10f64.powi(-shift);
        (x / scale).round() * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposures_fall_in_one_two_five_bands() {
        for (exact, band) in [
            (23_150.0, 20_000.0),
            (38_000.0, 50_000.0),
            (140_000.0, 100_000.0),
            (14_000.0, 10_000.0),
            (15_000.0, 20_000.0),
            (71_000.0, 100_000.0),
            (0.0, 0.0),
        ] {
            assert_eq!(exposure_band(exact), band, "{exact}");
        }
    }

    #[test]
    fn rates_keep_two_significant_figures() {
        assert_eq!(round_significant(11.194, 2), 11.0);
        assert_eq!(round_significant(0.012_345, 2), 0.012);
        assert_eq!(round_significant(987.0, 2), 990.0);
        assert_eq!(round_significant(0.0, 2), 0.0);
    }
}
