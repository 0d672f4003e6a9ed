//! Poisson, binomial and normal probabilities, and the root finder the exact intervals invert
//! them with. Thin wrappers over `statrs`' regularized incomplete gamma and beta functions, so
//! every caller states the tail it means instead of re-deriving it.

use statrs::function::{beta, erf, gamma};

/// P(X ≤ k) for X ~ Poisson(mu).
pub fn poisson_cdf(k: u64, mu: f64) -> f64 {
    if mu <= 0.0 {
        return 1.0;
    }
    gamma::gamma_ur(k as f64 + 1.0, mu)
}

/// P(X ≥ k) for X ~ Poisson(mu), computed without cancellation.
pub fn poisson_sf_inclusive(k: u64, mu: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if mu <= 0.0 {
        return 0.0;
    }
    gamma::gamma_lr(k as f64, mu)
}

/// P(X = k) for X ~ Poisson(mu).
pub fn poisson_pmf(k: u64, mu: f64) -> f64 {
    if mu <= 0.0 {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    let k = k as f64;
    (k * mu.ln() - mu - gamma::ln_gamma(k + 1.0)).exp()
}

/// P(X ≥ k) for X ~ Binomial(n, p).
pub fn binomial_sf_inclusive(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    beta::beta_reg(k as f64, (n - k) as f64 + 1.0, p)
}

/// P(X ≤ k) for X ~ Binomial(n, p), computed without cancellation.
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n || p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    beta::beta_reg((n - k) as f64, k as f64 + 1.0, 1.0 - p)
}

/// The standard normal quantile: z with Φ(z) = p, for 0 < p < 1.
pub fn normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erf::erfc_inv(2.0 * p)
}

/// The root of `f` in `[lo, hi]` where `f` changes sign, by bisection to the last bit: slow but
/// unconditionally convergent, which matters more here than speed (a few dozen evaluations).
pub fn bisect(mut lo: f64, mut hi: f64, f: impl Fn(f64) -> f64) -> f64 {
    let rising = f(hi) > f(lo);
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if (f(mid) > 0.0) == rising {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    0.5 * (lo + hi)
}

/// An upper end for a Poisson mean search around `count` events: far enough that every tail
/// probability used here is negligible.
pub fn poisson_search_ceiling(count: u64) -> f64 {
    let c = count as f64;
    c + 20.0 * (c + 1.0).sqrt() + 50.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_agree_with_the_pmf() {
        let mu = 7.3;
        let sum: f64 = (0..=5).map(|k| poisson_pmf(k, mu)).sum();
        assert!((poisson_cdf(5, mu) - sum).abs() < 1e-14);
        assert!((poisson_sf_inclusive(6, mu) - (1.0 - sum)).abs() < 1e-14);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
    }
}
