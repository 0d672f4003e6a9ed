//! Over-dispersion of facility rates around the target (Spiegelhalter 2005, FunnelPlotR).
//!
//! Real facilities differ by more than Poisson noise, and exact funnel limits then flag too
//! many. Rates are put on the variance-stabilising square-root scale (Y = √(O/T),
//! s = 1/(2√T)); z-scores are winsorized at their 10th and 90th percentiles so the outliers
//! being judged do not inflate the estimate; φ = mean of z². Two adjustments follow: the
//! multiplicative one widens every limit by √φ, the additive random-effects one
//! (DerSimonian–Laird τ²) adds a between-facility variance.

use super::percentile::quantile_type7;
use super::pooled_rate::CountExposure;

/// The estimated over-dispersion of `k` units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overdispersion {
    /// Units the estimate rests on.
    pub units: usize,
    /// Multiplicative dispersion φ (1 = Poisson).
    pub phi: f64,
    /// Additive between-unit variance τ² on the square-root scale (0 = none).
    pub tau2: f64,
}

/// z-scores of the units against `target` (per unit exposure) on the square-root scale.
pub fn sqrt_z_scores(units: &[CountExposure], target: f64) -> Vec<f64> {
    units
        .iter()
        .filter(|u| u.exposure > 0.0)
        .map(|u| ((u.events as f64 / u.exposure).sqrt() - target.sqrt()) * 2.0 * u.exposure.sqrt())
        .collect()
}

/// `values` clamped to their type-7 10th and 90th percentiles.
pub fn winsorize(values: &[f64]) -> Vec<f64> {
    match (quantile_type7(values, 0.1), quantile_type7(values, 0.9)) {
        (Some(lo), Some(hi)) => values.iter().map(|v| v.clamp(lo, hi)).collect(),
        _ => Vec::new(),
    }
}

/// φ and τ² of `units` against `target`; `None` with fewer than two units with exposure.
pub fn estimate(units: &[CountExposure], target: f64) -> Option<Overdispersion> {
    let z = winsorize(&sqrt_z_scores(units, target));
    if z.len() < 2 {
        return None;
    }
    let k = z.len() as f64;
    let phi = z.iter().map(|z| z * z).sum::<f64>() / k;
    let weights: Vec<f64> = units
        .iter()
        .filter(|u| u.exposure > 0.0)
        .map(|u| 4.0 * u.exposure)
        .collect();
    let sum_w: f64 = weights.iter().sum();
    let sum_w2: f64 = weights.iter().map(|w| w * w).sum();
    let excess = k * phi - (k - 1.0);
    let tau2 = if excess > 0.0 {
        excess / (sum_w - sum_w2 / sum_w)
    } else {
        0.0
    };
    Some(Overdispersion {
        units: z.len(),
        phi,
        tau2,
    })
}

impl Overdispersion {
    /// Random-effects limit for a unit with `exposure` at normal quantile `z` (negative for a
    /// lower limit): (√θ₀ + z√(1/(4T) + τ²))², floored at 0.
    pub fn additive_limit(&self, target: f64, exposure: f64, z: f64) -> f64 {
        let root = target.sqrt() + z * (1.0 / (4.0 * exposure) + self.tau2).sqrt();
        root.max(0.0).powi(2)
    }

    /// Multiplicative limit: (√θ₀ + z√φ/(2√T))², φ only widening (φ < 1 is taken as 1).
    pub fn multiplicative_limit(&self, target: f64, exposure: f64, z: f64) -> f64 {
        let root = target.sqrt() + z * self.phi.max(1.0).sqrt() / (2.0 * exposure.sqrt());
        root.max(0.0).powi(2)
    }
}
