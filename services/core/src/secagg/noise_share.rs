//! A node's share of distributed differential-privacy noise (privacy.md §3.2).
//!
//! With secure aggregation the gateway sees only the cohort's sum, so the noise that protects it
//! can be added in pieces: each node adds discrete-Gaussian noise of variance σ_i² to its count
//! lanes before masking, and the sum carries the sum of the variances. Because some nodes may
//! withhold their share (a compromised or faulty node), each adds enough for the target to be
//! met when only h = ⌈|S|/2⌉ of them are honest: σ_i² = σ_total² / h, with σ_total² = Δ²/(2ρ) as
//! for a single node's release. σ_i is never below 1: for σ_i ≪ 1 the discrete Gaussian
//! degenerates and a sum of them is far from Gaussian (Kairouz–Liu–Steinke 2021). The ledger is
//! charged ρ as today; the floor only adds noise, so the true loss is at most what is charged.
//! Exposure and indicator lanes get no noise.

use crate::disclosure::discrete_gaussian::{DiscreteGaussian, UniformSource};
use crate::disclosure::zcdp::{Rho, Variance};

/// h: the members assumed honest when sizing each share, ⌈|S|/2⌉.
pub fn assumed_honest(cohort: usize) -> usize {
    cohort.div_ceil(2).max(1)
}

/// σ_i² = max(1, Δ²/(2ρ) / h) for a release of L2 sensitivity² `l2_squared` costing `rho`,
/// by a member of a cohort of `cohort`. `None` when ρ is zero (no finite noise costs nothing).
pub fn share_variance(l2_squared: u64, rho: Rho, cohort: usize) -> Option<Variance> {
    // Δ²/(2ρ)/h = Δ²/(2·ρh): the same exact fraction as a release that costs ρ·h.
    let h = assumed_honest(cohort) as u64;
    let variance =
        Variance::for_cost(l2_squared, Rho::from_micros(rho.micros().saturating_mul(h)))?;
    Some(if variance.numerator < variance.denominator {
        Variance {
            numerator: 1,
            denominator: 1,
        }
    } else {
        variance
    })
}

/// Adds independent noise from `noise` to every value of `counts` (a node's count lanes, before
/// they are packed and masked).
pub fn add_noise_share(counts: &mut [i64], noise: &DiscreteGaussian, rng: &mut impl UniformSource) {
    for count in counts {
        *count = count.saturating_add(noise.sample(rng));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secagg::SeededSource;

    #[test]
    fn each_share_is_the_total_over_half_the_cohort_at_least_one() {
        let rho = Rho::from_f64(0.02).unwrap();
        // σ_total² = 25; 10 members → h = 5 → σ_i² = 5.
        let v = share_variance(1, rho, 10).unwrap();
        assert_eq!((v.numerator, v.denominator), (5, 1));
        // 11 members → h = 6 → 25/6.
        let v = share_variance(1, rho, 11).unwrap();
        assert_eq!((v.numerator, v.denominator), (25, 6));
        // 500 members → h = 250 → 0.1, raised to 1.
        let v = share_variance(1, rho, 500).unwrap();
        assert_eq!((v.numerator, v.denominator), (1, 1));
        assert_eq!(share_variance(1, Rho::ZERO, 10), None);
        assert_eq!(assumed_honest(1), 1);
    }

    #[test]
    fn the_sum_of_honest_shares_carries_at_least_the_target_variance() {
        // 6 members, σ_total² = 25 → h = 3, σ_i² = 25/3; all six honest → 50.
        let rho = Rho::from_f64(0.02).unwrap();
        let noise = DiscreteGaussian::new(share_variance(1, rho, 6).unwrap());
        let mut rng = SeededSource::new(20);
        let runs = 1500;
        let sums: Vec<f64> = (0..runs)
            .map(|_| {
                let mut lanes = vec![0i64; 6];
                add_noise_share(&mut lanes, &noise, &mut rng);
                lanes.iter().sum::<i64>() as f64
            })
            .collect();
        let mean = sums.iter().sum::<f64>() / runs as f64;
        let var = sums.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / runs as f64;
        // The sample variance of 1500 sums has sd ≈ 50·√(2/1500) ≈ 1.8 (fixed seed: reproducible).
        assert!((var - 50.0).abs() < 6.0, "variance {var}");
        assert!(mean.abs() < 0.8, "mean {mean}");
    }
}
