//! Zero-concentrated differential privacy (zCDP) in integers.
//!
//! A discrete Gaussian with variance σ² on a count whose L2 sensitivity is Δ gives ρ-zCDP with
//! ρ = Δ²/(2σ²), and ρ adds up over queries on the same data (Bun–Steinke 2016). Budgets are
//! kept in millionths of ρ so that a ledger adds integers and never drifts, and the variance is
//! kept as an exact fraction for the sampler.

use std::fmt;

/// A privacy loss ρ, in millionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Rho(u64);

/// A ρ that is not a finite number between 0 and 1,000.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{0} is not a privacy loss between 0 and 1000 (ρ, zCDP)")]
pub struct BadRho(pub f64);

impl Rho {
    /// Nothing spent.
    pub const ZERO: Rho = Rho(0);

    /// ρ from millionths.
    pub const fn from_micros(micros: u64) -> Self {
        Rho(micros)
    }

    /// ρ from a decimal as written in a config file, rounded to millionths.
    pub fn from_f64(rho: f64) -> Result<Self, BadRho> {
        if rho.is_finite() && (0.0..=1000.0).contains(&rho) {
            Ok(Rho((rho * 1e6).round() as u64))
        } else {
            Err(BadRho(rho))
        }
    }

    /// Millionths of ρ.
    pub fn micros(self) -> u64 {
        self.0
    }

    /// ρ as a decimal, for people.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// The sum, saturating.
    pub fn plus(self, other: Rho) -> Rho {
        Rho(self.0.saturating_add(other.0))
    }

    /// What is left of `self` after `spent`, at least zero.
    pub fn minus(self, spent: Rho) -> Rho {
        Rho(self.0.saturating_sub(spent.0))
    }
}

impl fmt::Display for Rho {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// An exact variance σ² = numerator / denominator, in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variance {
    /// Numerator.
    pub numerator: u128,
    /// Denominator (never zero).
    pub denominator: u128,
}

impl Variance {
    /// The variance that makes one release of L2 sensitivity² `l2_squared` cost exactly `rho`:
    /// σ² = Δ²/(2ρ). `None` for ρ = 0 (no finite noise gives zero loss).
    pub fn for_cost(l2_squared: u64, rho: Rho) -> Option<Self> {
        if rho.0 == 0 {
            return None;
        }
        let n = u128::from(l2_squared.max(1)) * 1_000_000;
        let d = 2 * u128::from(rho.0);
        let g = gcd(n, d);
        Some(Self {
            numerator: n / g,
            denominator: d / g,
        })
    }

    /// σ, for people.
    pub fn sigma(&self) -> f64 {
        (self.numerator as f64 / self.denominator as f64).sqrt()
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rho_round_trips_through_millionths() {
        let rho = Rho::from_f64(0.02).unwrap();
        assert_eq!(rho.micros(), 20_000);
        assert_eq!(rho.to_string(), "0.020000");
        assert_eq!(Rho::from_f64(0.5).unwrap().minus(rho).micros(), 480_000);
        assert!(Rho::from_f64(f64::NAN).is_err());
        assert!(Rho::from_f64(-1.0).is_err());
    }

    #[test]
    fn variance_is_sensitivity_over_twice_rho() {
        let v = Variance::for_cost(1, Rho::from_f64(0.02).unwrap()).unwrap();
        assert_eq!((v.numerator, v.denominator), (25, 1));
        let v = Variance::for_cost(11, Rho::from_f64(0.02).unwrap()).unwrap();
        assert_eq!((v.numerator, v.denominator), (275, 1));
        let v = Variance::for_cost(1, Rho::from_f64(0.3).unwrap()).unwrap();
        assert_eq!((v.numerator, v.denominator), (5, 3));
        assert_eq!(Variance::for_cost(1, Rho::ZERO), None);
    }
}
