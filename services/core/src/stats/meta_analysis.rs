//! Random-effects meta-analysis of log rate ratios: which practices work, network-wide.
//!
//! Each facility that adopted a practice contributes one before/after log rate ratio
//! ([`LogRateRatio`], with its ½ continuity correction when one side had no events and left
//! out when both had none). Facilities differ in how well they implement a practice, so the
//! effects are pooled under a random-effects model yᵢ ~ N(μ, vᵢ + τ²) (DerSimonian & Laird 1986,
//! Control Clin Trials 7:177), with the between-facility variance τ² estimated either by
//! DerSimonian–Laird's method of moments (closed form, the historical default) or by restricted
//! maximum likelihood (REML; Viechtbauer 2005, J Educ Behav Stat 30:261, less biased),
//! solved by Fisher scoring as metafor does.
//!
//! Few facilities adopt any one practice, and the Wald interval μ ± z·SE then covers far below
//! its nominal level. The Hartung–Knapp(–Sidik–Jonkman) interval (Hartung & Knapp 2001, Stat
//! Med 20:3875; IntHout et al. 2014, BMC Med Res Methodol 14:25) replaces SE² by the weighted
//! residual variance Σwᵢ*(yᵢ − μ̂)²/((k − 1)Σwᵢ*) and z by t with k − 1 degrees of freedom; it is
//! the interval to report (the ad hoc "modified" truncation at the Wald width is not applied,
//! as in statsmodels and metafor's defaults). Heterogeneity is summarised by Cochran's Q and
//! I² = max(0, (Q − (k − 1))/Q) (Higgins & Thompson 2002, Stat Med 21:1539), and the range of
//! effects a new facility might see by the prediction interval μ̂ ± t_{k−2}·√(τ² + SE²)
//! (Higgins, Thompson & Spiegelhalter 2009, J R Stat Soc A 172:137), which needs k ≥ 3.

use super::Interval;
use super::distribution::{normal_quantile, student_t_quantile};
use super::rate_ratio::LogRateRatio;

/// Fisher-scoring iterations before REML gives up; it usually needs fewer than twenty.
const REML_MAX_ITERATIONS: usize = 500;
/// REML has converged when τ² moves by less than this, relative to 1 + τ².
const REML_TOLERANCE: f64 = 1e-14;

/// How the between-facility variance τ² is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tau2Estimator {
    /// DerSimonian–Laird: τ² = max(0, (Q − (k − 1))/(Σw − Σw²/Σw)).
    DerSimonianLaird,
    /// Restricted maximum likelihood, truncated at 0.
    Reml,
}

/// A pooled random-effects estimate, on the log rate-ratio scale.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaAnalysis {
    /// Facilities pooled (k).
    pub studies: usize,
    /// How τ² was estimated.
    pub estimator: Tau2Estimator,
    /// Between-facility variance of the true log rate ratios.
    pub tau2: f64,
    /// The pooled log rate ratio μ̂ = Σwᵢ*yᵢ/Σwᵢ*, wᵢ* = 1/(vᵢ + τ²).
    pub mean: f64,
    /// Conventional standard error 1/√Σwᵢ*.
    pub standard_error: f64,
    /// Wald interval μ̂ ± z·SE.
    pub interval: Interval,
    /// Hartung–Knapp standard error √(Σwᵢ*(yᵢ − μ̂)²/((k − 1)Σwᵢ*)).
    pub hartung_knapp_standard_error: f64,
    /// Hartung–Knapp interval μ̂ ± t_{k−1}·SE_HK: the one to report. It has zero width when
    /// every facility's estimate is the same (no residual spread to scale by).
    pub hartung_knapp: Interval,
    /// Prediction interval for a new facility's true effect; `None` when k < 3.
    pub prediction: Option<Interval>,
    /// Cochran's Q with fixed-effect weights 1/vᵢ.
    pub q: f64,
    /// I² = max(0, (Q − (k − 1))/Q): the share of variation beyond chance (0 when Q = 0).
    pub i2: f64,
    /// The fixed-effect (common-effect) pooled log rate ratio Σyᵢ/vᵢ / Σ1/vᵢ.
    pub fixed_mean: f64,
    /// Its standard error 1/√Σ(1/vᵢ).
    pub fixed_standard_error: f64,
    /// Each facility's share of the random-effects weight, in input order, summing to 1 (the
    /// forest plot's square sizes).
    pub weights: Vec<f64>,
    /// Fisher-scoring iterations (0 for DerSimonian–Laird).
    pub iterations: usize,
}

impl MetaAnalysis {
    /// The pooled rate ratio exp(μ̂).
    pub fn ratio(&self) -> f64 {
        self.mean.exp()
    }

    /// The Hartung–Knapp interval of the pooled rate ratio.
    pub fn ratio_interval(&self) -> Interval {
        exp_interval(self.hartung_knapp)
    }

    /// The prediction interval on the rate-ratio scale.
    pub fn ratio_prediction(&self) -> Option<Interval> {
        self.prediction.map(exp_interval)
    }
}

fn exp_interval(log: Interval) -> Interval {
    Interval {
        lower: log.lower.exp(),
        upper: log.upper.exp(),
    }
}

/// Why facilities could not be pooled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetaAnalysisError {
    /// Pooling needs two facilities at least (τ² and Hartung–Knapp need k − 1 ≥ 1).
    #[error("a random-effects meta-analysis needs at least two facilities; got {studies}")]
    TooFewStudies {
        /// Facilities given.
        studies: usize,
    },
    /// An estimate or its variance is not a finite number, or a variance is not positive.
    #[error(
        "facility {index} has a log rate ratio {estimate} with variance {variance}; both must be \
         finite and the variance positive"
    )]
    BadStudy {
        /// Position of the facility in the input.
        index: usize,
        /// Its estimate.
        estimate: f64,
        /// Its variance.
        variance: f64,
    },
    /// The confidence level is outside (0, 1).
    #[error("confidence must be between 0 and 1, not {confidence}")]
    BadConfidence {
        /// The level given.
        confidence: f64,
    },
    /// REML's Fisher scoring did not settle.
    #[error(
        "the REML estimate of τ² did not converge in {iterations} iterations; use DerSimonian–Laird"
    )]
    RemlNotConverged {
        /// Iterations run.
        iterations: usize,
    },
}

/// Σw, Σw·y and the weighted mean for weights 1/(v + τ²).
struct Weighted {
    weights: Vec<f64>,
    total: f64,
    mean: f64,
}

impl Weighted {
    fn new(studies: &[LogRateRatio], tau2: f64) -> Self {
        let weights: Vec<f64> = studies.iter().map(|s| 1.0 / (s.variance + tau2)).collect();
        let total: f64 = weights.iter().sum();
        let mean = studies
            .iter()
            .zip(&weights)
            .map(|(s, w)| w * s.estimate)
            .sum::<f64>()
            / total;
        Self {
            weights,
            total,
            mean,
        }
    }

    /// Σw(y − mean)²: Cochran's Q with fixed-effect weights.
    fn residual_sum(&self, studies: &[LogRateRatio]) -> f64 {
        studies
            .iter()
            .zip(&self.weights)
            .map(|(s, w)| w * (s.estimate - self.mean).powi(2))
            .sum()
    }
}

/// DerSimonian–Laird's moment estimate, truncated at 0.
fn dersimonian_laird(fixed: &Weighted, q: f64, k: usize) -> f64 {
    let sum_w2: f64 = fixed.weights.iter().map(|w| w * w).sum();
    let c = fixed.total - sum_w2 / fixed.total;
    ((q - (k as f64 - 1.0)) / c).max(0.0)
}

/// REML by Fisher scoring from `start`: τ² += (Σw²(y − μ̂)² − tr P)/tr P², with
/// tr P = Σw − Σw²/Σw and tr P² = Σw² − 2Σw³/Σw + (Σw²/Σw)², truncated at 0.
fn reml(studies: &[LogRateRatio], start: f64) -> Result<(f64, usize), MetaAnalysisError> {
    let mut tau2 = start;
    for iteration in 1..=REML_MAX_ITERATIONS {
        let at = Weighted::new(studies, tau2);
        let (mut s2, mut s3, mut ypy) = (0.0, 0.0, 0.0);
        for (s, w) in studies.iter().zip(&at.weights) {
            s2 += w * w;
            s3 += w * w * w;
            ypy += w * w * (s.estimate - at.mean).powi(2);
        }
        let s1 = at.total;
        let trace_p = s1 - s2 / s1;
        let trace_pp = s2 - 2.0 * s3 / s1 + (s2 / s1).powi(2);
        let next = (tau2 + (ypy - trace_p) / trace_pp).max(0.0);
        if !next.is_finite() {
            break;
        }
        let moved = (next - tau2).abs();
        tau2 = next;
        if moved <= REML_TOLERANCE * (1.0 + tau2) {
            return Ok((tau2, iteration));
        }
    }
    Err(MetaAnalysisError::RemlNotConverged {
        iterations: REML_MAX_ITERATIONS,
    })
}

/// Pools `studies` (one log rate ratio per facility) by a random-effects model with τ² from
/// `estimator`, intervals at `confidence` (e.g. 0.95).
pub fn random_effects(
    studies: &[LogRateRatio],
    estimator: Tau2Estimator,
    confidence: f64,
) -> Result<MetaAnalysis, MetaAnalysisError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(MetaAnalysisError::BadConfidence { confidence });
    }
    let k = studies.len();
    if k < 2 {
        return Err(MetaAnalysisError::TooFewStudies { studies: k });
    }
    if let Some((index, s)) = studies
        .iter()
        .enumerate()
        .find(|(_, s)| !(s.estimate.is_finite() && s.variance.is_finite() && s.variance > 0.0))
    {
        return Err(MetaAnalysisError::BadStudy {
            index,
            estimate: s.estimate,
            variance: s.variance,
        });
    }
    let fixed = Weighted::new(studies, 0.0);
    let q = fixed.residual_sum(studies);
    let df = k as f64 - 1.0;
    let dl = dersimonian_laird(&fixed, q, k);
    let (tau2, iterations) = match estimator {
        Tau2Estimator::DerSimonianLaird => (dl, 0),
        Tau2Estimator::Reml => reml(studies, dl)?,
    };
    let random = Weighted::new(studies, tau2);
    let standard_error = random.total.recip().sqrt();
    let upper_p = 1.0 - (1.0 - confidence) / 2.0;
    let z = normal_quantile(upper_p);
    let around = |centre: f64, half: f64| Interval {
        lower: centre - half,
        upper: centre + half,
    };
    let hartung_knapp_standard_error = (random.residual_sum(studies) / (df * random.total)).sqrt();
    let t = student_t_quantile(upper_p, df);
    let prediction = (k >= 3).then(|| {
        let t = student_t_quantile(upper_p, k as f64 - 2.0);
        around(random.mean, t * (tau2 + standard_error.powi(2)).sqrt())
    });
    let i2 = if q > 0.0 {
        ((q - df) / q).max(0.0)
    } else {
        0.0
    };
    Ok(MetaAnalysis {
        studies: k,
        estimator,
        tau2,
        mean: random.mean,
        standard_error,
        interval: around(random.mean, z * standard_error),
        hartung_knapp_standard_error,
        hartung_knapp: around(random.mean, t * hartung_knapp_standard_error),
        prediction,
        q,
        i2,
        fixed_mean: fixed.mean,
        fixed_standard_error: fixed.total.recip().sqrt(),
        weights: random.weights.iter().map(|w| w / random.total).collect(),
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(estimate: f64, variance: f64) -> LogRateRatio {
        LogRateRatio {
            estimate,
            variance,
            continuity_corrected: false,
        }
    }

    #[test]
    fn identical_effects_have_no_heterogeneity() {
        let studies = [study(-0.4, 0.04), study(-0.4, 0.09), study(-0.4, 0.02)];
        for estimator in [Tau2Estimator::DerSimonianLaird, Tau2Estimator::Reml] {
            let pooled = random_effects(&studies, estimator, 0.95).unwrap();
            assert_eq!(pooled.tau2, 0.0);
            assert_eq!(pooled.i2, 0.0);
            assert!((pooled.mean + 0.4).abs() < 1e-15);
            assert!((pooled.weights.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        }
    }

    #[test]
    fn refusals_say_why() {
        let one = random_effects(&[study(0.1, 0.1)], Tau2Estimator::Reml, 0.95).unwrap_err();
        assert_eq!(one, MetaAnalysisError::TooFewStudies { studies: 1 });
        let bad = random_effects(
            &[study(0.1, 0.1), study(0.2, 0.0)],
            Tau2Estimator::DerSimonianLaird,
            0.95,
        )
        .unwrap_err();
        assert!(matches!(bad, MetaAnalysisError::BadStudy { index: 1, .. }));
        let two = random_effects(
            &[study(0.1, 0.1), study(0.5, 0.2)],
            Tau2Estimator::DerSimonianLaird,
            0.95,
        )
        .unwrap();
        assert_eq!(two.prediction, None, "a prediction interval needs three");
    }
}
