//! The exact discrete Gaussian sampler of Canonne, Kamath and Steinke (2020).
//!
//! Floating-point noise leaks through the low bits of its output (Mironov 2012), so every step
//! here is integer arithmetic on exact fractions: Bernoulli(exp(-γ)) for a rational γ
//! (CKS20 Algorithm 1), a discrete Laplace with integer scale (Algorithm 2) and the discrete
//! Gaussian by rejection from it (Algorithm 3). Uniform integers come from the operating
//! system's CSPRNG (ring's `SystemRandom`). The sampler runs in data-independent time with
//! respect to the counts (it never sees them), but its own running time varies with the
//! noise drawn; noise for a whole answer is drawn before the answer is sent.

use super::zcdp::Variance;
use ring::rand::{SecureRandom, SystemRandom};

/// A source of uniform integers.
pub trait UniformSource {
    /// A uniform integer in `0..n` (`n > 0`).
    fn below(&mut self, n: u128) -> u128;
}

/// The operating system's CSPRNG.
#[derive(Debug)]
pub struct OsRandom(SystemRandom);

impl Default for OsRandom {
    fn default() -> Self {
        OsRandom(SystemRandom::new())
    }
}

impl UniformSource for OsRandom {
    fn below(&mut self, n: u128) -> u128 {
        if n <= 1 {
            return 0;
        }
        // Rejection from the smallest power of two covering n: exact, and < 2 draws expected.
        let mask = u128::MAX >> (n - 1).leading_zeros();
        loop {
            let mut bytes = [0u8; 16];
            if self.0.fill(&mut bytes).is_err() {
                // The OS source failing is not recoverable and must not weaken the noise.
                std::process::abort();
            }
            let x = u128::from_le_bytes(bytes) & mask;
            if x < n {
                return x;
            }
        }
    }
}

/// Bernoulli(numerator / denominator).
fn bernoulli(rng: &mut impl UniformSource, numerator: u128, denominator: u128) -> bool {
    rng.below(denominator) < numerator
}

/// Bernoulli(exp(-γ)) for γ = numerator / denominator ≥ 0 (CKS20 Algorithm 1).
fn bernoulli_exp(rng: &mut impl UniformSource, numerator: u128, denominator: u128) -> bool {
    for _ in 0..numerator / denominator {
        if !bernoulli_exp_at_most_one(rng, 1, 1) {
            return false;
        }
    }
    bernoulli_exp_at_most_one(rng, numerator % denominator, denominator)
}

/// Bernoulli(exp(-γ)) for γ in [0, 1].
fn bernoulli_exp_at_most_one(
    rng: &mut impl UniformSource,
    numerator: u128,
    denominator: u128,
) -> bool {
    let mut k: u128 = 1;
    // Should γ/k ever drop below 2^-128 · γ (it does not in practice), stop as if the trial
    // failed.
    while let Some(d) = denominator.checked_mul(k) {
        if !bernoulli(rng, numerator, d) {
            break;
        }
        k += 1;
    }
    k % 2 == 1
}

/// Discrete Laplace with integer scale `t ≥ 1`: P(y) ∝ exp(-|y|/t) (CKS20 Algorithm 2).
fn discrete_laplace(rng: &mut impl UniformSource, t: u128) -> i128 {
    loop {
        let u = rng.below(t);
        if !bernoulli_exp(rng, u, t) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp(rng, 1, 1) {
            v += 1;
        }
        let x = u + t * v;
        let negative = rng.below(2) == 1;
        if negative && x == 0 {
            continue;
        }
        let x = x as i128;
        return if negative { -x } else { x };
    }
}

/// The discrete Gaussian N_Z(0, σ²) for an exact σ².
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscreteGaussian {
    variance: Variance,
    /// ⌊σ⌋ + 1, the scale of the Laplace proposal.
    t: u128,
}

impl DiscreteGaussian {
    /// The distribution with variance `variance`.
    pub fn new(variance: Variance) -> Self {
        let (a, b) = (variance.numerator, variance.denominator);
        // ⌊σ⌋ = the largest r with r²·b ≤ a.
        let mut r = (variance.sigma() as u128).saturating_sub(1);
        while (r + 1).saturating_mul(r + 1).saturating_mul(b) <= a {
            r += 1;
        }
        Self { variance, t: r + 1 }
    }

    /// One sample (CKS20 Algorithm 3).
    pub fn sample(&self, rng: &mut impl UniformSource) -> i64 {
        let (a, b, t) = (self.variance.numerator, self.variance.denominator, self.t);
        loop {
            let y = discrete_laplace(rng, t);
            // Accept with probability exp(-(|y| - σ²/t)² / (2σ²))
            //                      = exp(-(|y|·b·t - a)² / (2·a·b·t²)).
            let Some(scaled) = y.unsigned_abs().checked_mul(b * t) else {
                continue;
            };
            let diff = scaled.abs_diff(a);
            let (Some(numerator), Some(denominator)) = (
                diff.checked_mul(diff),
                (2 * a).checked_mul(b).and_then(|x| x.checked_mul(t * t)),
            ) else {
                continue;
            };
            if bernoulli_exp(rng, numerator, denominator) {
                return y.clamp(i64::MIN.into(), i64::MAX.into()) as i64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disclosure::zcdp::Rho;

    fn moments(sigma2: Variance, n: usize) -> (f64, f64) {
        let dg = DiscreteGaussian::new(sigma2);
        let mut rng = OsRandom::default();
        let xs: Vec<f64> = (0..n).map(|_| dg.sample(&mut rng) as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        (mean, var)
    }

    #[test]
    fn mean_is_zero_and_variance_is_sigma_squared() {
        // σ² = 25 (ρ = 0.02): with 40,000 draws the sample mean has sd 0.025 and the sample
        // variance sd ≈ 0.18; the bounds are more than 6 sd wide.
        let v = Variance::for_cost(1, Rho::from_f64(0.02).unwrap()).unwrap();
        let (mean, var) = moments(v, 40_000);
        assert!(mean.abs() < 0.2, "mean {mean}");
        assert!((var - 25.0).abs() < 1.5, "variance {var}");
    }

    #[test]
    fn small_fractional_variance_is_exact_too() {
        // σ² = 5/3: P(0) of N_Z(0, 5/3) is ≈ 0.3090.
        let v = Variance::for_cost(1, Rho::from_f64(0.3).unwrap()).unwrap();
        let dg = DiscreteGaussian::new(v);
        assert_eq!(dg.t, 2);
        let mut rng = OsRandom::default();
        let n = 40_000;
        let zeros = (0..n).filter(|_| dg.sample(&mut rng) == 0).count();
        let p = zeros as f64 / n as f64;
        assert!((p - 0.3090).abs() < 0.015, "P(0) = {p}");
    }

    #[test]
    fn uniform_integers_stay_below_their_bound() {
        let mut rng = OsRandom::default();
        for n in [1u128, 2, 3, 7, 1000, u128::MAX] {
            for _ in 0..200 {
                assert!(rng.below(n) < n.max(1));
            }
        }
    }
}
