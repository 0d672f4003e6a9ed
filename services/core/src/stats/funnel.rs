//! Funnel-plot control limits (Spiegelhalter 2005) for a rate, exact Poisson with interpolation.
//!
//! For a unit with exposure T and a target rate θ₀, the count under the target is
//! Poisson(μ = θ₀T). The p-limit is the smallest count r with F(r; μ) ≥ p, interpolated
//! between r−1 and r so the limits are smooth in T: y = (r − α')/T with
//! α' = (F(r) − p)/(F(r) − F(r−1)). 95% limits (p = 0.025, 0.975) are the "alert" lines,
//! 99.8% limits (p = 0.001, 0.999) the "alarm" lines.

use super::distribution::{normal_quantile, poisson_cdf};
use super::overdispersion::Overdispersion;

/// The exact Poisson p-limit of a rate, per unit of exposure, for a unit with `exposure` when
/// the target rate is `target` (per unit of exposure). `None` without exposure or p outside (0, 1).
pub fn poisson_limit(target: f64, exposure: f64, p: f64) -> Option<f64> {
    if !(exposure > 0.0 && target >= 0.0 && p > 0.0 && p < 1.0) {
        return None;
    }
    let mu = target * exposure;
    let cdf = |r: u64| poisson_cdf(r, mu);
    let guess = (mu + normal_quantile(p) * mu.sqrt()).round().max(0.0) as u64;
    let mut r = guess;
    while r > 0 && cdf(r - 1) >= p {
        r -= 1;
    }
    while cdf(r) < p {
        r += 1;
    }
    let at = cdf(r);
    let below = if r == 0 { 0.0 } else { cdf(r - 1) };
    let alpha = (at - p) / (at - below);
    Some(((r as f64 - alpha) / exposure).max(0.0))
}

/// Both limit pairs of a funnel at one exposure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunnelLimits {
    /// 99.8% lower ("alarm") limit.
    pub lower_998: f64,
    /// 95% lower ("alert") limit.
    pub lower_95: f64,
    /// 95% upper limit.
    pub upper_95: f64,
    /// 99.8% upper limit.
    pub upper_998: f64,
}

impl FunnelLimits {
    /// The four exact limits at `exposure` for `target` (both per unit of exposure).
    pub fn exact(target: f64, exposure: f64) -> Option<Self> {
        let at = |p| poisson_limit(target, exposure, p);
        Some(Self {
            lower_998: at(0.001)?,
            lower_95: at(0.025)?,
            upper_95: at(0.975)?,
            upper_998: at(0.999)?,
        })
    }

    /// Random-effects limits at `exposure` for `target` (both per unit of exposure) when the
    /// units are over-dispersed by `od`; the exact limits when τ² is 0.
    pub fn adjusted(od: &Overdispersion, target: f64, exposure: f64) -> Option<Self> {
        if od.tau2 <= 0.0 {
            return Self::exact(target, exposure);
        }
        if exposure.is_nan() || exposure <= 0.0 {
            return None;
        }
        let at = |p| od.additive_limit(target, exposure, normal_quantile(p));
        Some(Self {
            lower_998: at(0.001),
            lower_95: at(0.025),
            upper_95: at(0.975),
            upper_998: at(0.999),
        })
    }

    /// Where `rate` falls between the limits.
    pub fn position(&self, rate: f64) -> FunnelPosition {
        if rate > self.upper_998 {
            FunnelPosition::Above998
        } else if rate > self.upper_95 {
            FunnelPosition::Above95
        } else if rate < self.lower_998 {
            FunnelPosition::Below998
        } else if rate < self.lower_95 {
            FunnelPosition::Below95
        } else {
            FunnelPosition::Within
        }
    }

    /// Every limit multiplied by `factor` (per unit → per 1,000).
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            lower_998: self.lower_998 * factor,
            lower_95: self.lower_95 * factor,
            upper_95: self.upper_95 * factor,
            upper_998: self.upper_998 * factor,
        }
    }
}

/// A unit's place in the funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunnelPosition {
    /// Above the 99.8% upper limit ("alarm").
    Above998,
    /// Above the 95% but within the 99.8% upper limit ("alert").
    Above95,
    /// Within the 95% limits.
    Within,
    /// Below the 95% but within the 99.8% lower limit.
    Below95,
    /// Below the 99.8% lower limit.
    Below998,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_narrow_as_exposure_grows() {
        let small = FunnelLimits::exact(0.003, 2_000.0).unwrap();
        let large = FunnelLimits::exact(0.003, 200_000.0).unwrap();
        assert!(small.upper_998 > large.upper_998);
        assert!(small.lower_95 <= large.lower_95);
        assert!(large.lower_998 < 0.003 && 0.003 < large.upper_998);
        assert_eq!(large.position(0.0045), FunnelPosition::Above998);
    }
}
