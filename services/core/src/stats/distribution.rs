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

/// P(X = k) for X ~ Binomial(n, p), from log-gamma so large n does not overflow.
pub fn binomial_pmf(k: u64, n: u64, p: f64) -> f64 {
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    if p >= 1.0 {
        return if k == n { 1.0 } else { 0.0 };
    }
    let (k, n) = (k as f64, n as f64);
    let ln_choose =
        gamma::ln_gamma(n + 1.0) - gamma::ln_gamma(k + 1.0) - gamma::ln_gamma(n - k + 1.0);
    (ln_choose + k * p.ln() + (n - k) * (-p).ln_1p()).exp()
}

/// P(T > t) for Student's t with `df` degrees of freedom and t ≥ 0: ½·I_{ν/(ν+t²)}(ν/2, ½).
pub fn student_t_upper_tail(t: f64, df: f64) -> f64 {
    if t <= 0.0 {
        return 0.5;
    }
    0.5 * beta::beta_reg(0.5 * df, 0.5, df / (df + t * t))
}

/// Student's t quantile: t with P(T ≤ t) = p, for 0 < p < 1 and `df` > 0. The Hartung–Knapp
/// interval and the prediction interval of a meta-analysis need it; found by bisection on the
/// tail (statrs' own inverse goes through an approximate inverse beta).
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if p == 0.5 {
        return 0.0;
    }
    let tail = p.min(1.0 - p);
    let mut hi = 1.0;
    while student_t_upper_tail(hi, df) > tail && hi < 1e300 {
        hi *= 2.0;
    }
    let t = bisect(0.0, hi, |t| student_t_upper_tail(t, df) - tail);
    if p > 0.5 { t } else { -t }
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
        // The t with 1 degree of freedom is Cauchy: the 97.5% point is tan(0.475π).
        let cauchy = (0.475 * std::f64::consts::PI).tan();
        assert!((student_t_quantile(0.975, 1.0) - cauchy).abs() / cauchy < 1e-12);
        assert!((student_t_quantile(0.025, 1.0) + cauchy).abs() / cauchy < 1e-12);
        // statrs' ln_gamma is good to about 1e-14, which bounds the pmf's relative error.
        let pmf: f64 = (0..=7).map(|k| binomial_pmf(k, 7, 0.3)).sum();
        assert!((pmf - 1.0).abs() < 1e-13, "{:e}", pmf - 1.0);
    }
}
