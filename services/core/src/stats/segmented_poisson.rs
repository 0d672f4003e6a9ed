//! Interrupted time series by segmented Poisson regression with an exposure offset.
//!
//! A before/after rate ratio cannot tell an intervention from a trend that was already under
//! way: falls falling 2% a month before a bundle was adopted will be lower afterwards whatever
//! the bundle did. Segmented regression (Wagner et al. 2002, J Clin Pharm Ther 27:299;
//! Bernal, Cummins & Gasparrini 2017, Int J Epidemiol 46:348) fits the pre-existing trend and
//! asks what changed at the start month t₀:
//!
//! log E[yₜ] = log(exposureₜ) + b₀ + b₁·t + b₂·afterₜ + b₃·(t − t₀)·afterₜ,  afterₜ = [t ≥ t₀]
//!
//! so exp(b₂) is the immediate level change (a rate ratio at t₀) and exp(b₃) the change in the
//! monthly trend. The fit is the Poisson maximum-likelihood estimate by iteratively reweighted
//! least squares (McCullagh & Nelder 1989, §2.5), which for the canonical log link is Newton's
//! method, so the last step is exact to rounding. Monthly counts vary more than Poisson
//! (staffing, census mix), so standard errors are also given scaled by the Pearson dispersion
//! φ = χ²/(n − 4), the quasi-Poisson adjustment statsmodels calls `GLM.fit(scale='X2')`.
//!
//! The model splits into two independent log-linear fits, one per segment, so a finite estimate
//! exists unless a segment has no events, or all of its events fall in its first or its last
//! month (then its trend runs to ±∞: separation). Both are checked before fitting and named in
//! the error.

use super::Interval;
use super::distribution::normal_quantile;

/// Coefficients in the model: intercept, trend, level change, trend change.
const P: usize = 4;
/// Newton iterations before giving up; a well-posed fit needs fewer than ten.
const MAX_ITERATIONS: usize = 100;
/// Converged when no coefficient moves by more than this, relative to 1 + its size.
const TOLERANCE: f64 = 1e-10;

/// One month of the series: its position in time, its events and its exposure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesMonth {
    /// The month's position on the model's time axis (e.g. months since the window opened).
    pub time: f64,
    /// Events in the month.
    pub events: u64,
    /// Exposure in the month (patient days, doses…); the offset is its logarithm.
    pub exposure: f64,
}

/// One fitted coefficient on the log scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficient {
    /// The maximum-likelihood estimate.
    pub estimate: f64,
    /// Standard error assuming Poisson variance (dispersion 1).
    pub standard_error: f64,
    /// Standard error scaled by √φ (Pearson χ²/(n − 4)): the one to report.
    pub adjusted_standard_error: f64,
}

impl Coefficient {
    /// The Wald interval estimate ± z·SE on the log scale, with the dispersion-adjusted SE
    /// when `adjusted`.
    pub fn interval(&self, confidence: f64, adjusted: bool) -> Interval {
        let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
        let se = if adjusted {
            self.adjusted_standard_error
        } else {
            self.standard_error
        };
        Interval {
            lower: self.estimate - z * se,
            upper: self.estimate + z * se,
        }
    }

    /// exp(estimate): the coefficient as a rate ratio.
    pub fn ratio(&self) -> f64 {
        self.estimate.exp()
    }

    /// [`Self::interval`] exponentiated: the interval of the rate ratio.
    pub fn ratio_interval(&self, confidence: f64, adjusted: bool) -> Interval {
        let log = self.interval(confidence, adjusted);
        Interval {
            lower: log.lower.exp(),
            upper: log.upper.exp(),
        }
    }
}

/// A fitted segmented Poisson regression.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentedPoisson {
    /// The start month t₀ on the time axis.
    pub start: f64,
    /// b₀: the log rate at time 0 before the start.
    pub intercept: Coefficient,
    /// b₁: the monthly log-rate trend before the start.
    pub trend: Coefficient,
    /// b₂: the log level change at t₀ (exp: immediate rate ratio).
    pub level_change: Coefficient,
    /// b₃: the change in the monthly log-rate trend from t₀ on.
    pub trend_change: Coefficient,
    /// (XᵀWX)⁻¹, the unscaled covariance of (b₀, b₁, b₂, b₃); multiply by `dispersion` for
    /// the adjusted one.
    pub covariance: [[f64; P]; P],
    /// Pearson χ² = Σ (y − μ)²/μ.
    pub pearson_chi2: f64,
    /// Poisson deviance 2 Σ [y ln(y/μ) − (y − μ)].
    pub deviance: f64,
    /// Residual degrees of freedom n − 4.
    pub residual_df: usize,
    /// φ = Pearson χ² / (n − 4): 1 for Poisson counts, above 1 when over-dispersed.
    pub dispersion: f64,
    /// Newton (IRLS) iterations the fit took.
    pub iterations: usize,
}

impl SegmentedPoisson {
    /// The four coefficients in model order (b₀, b₁, b₂, b₃).
    pub fn coefficients(&self) -> [Coefficient; P] {
        [
            self.intercept,
            self.trend,
            self.level_change,
            self.trend_change,
        ]
    }

    /// The fitted rate per unit of exposure at `time` (the chart's fitted segments).
    pub fn rate(&self, time: f64) -> f64 {
        let b = self.coefficients().map(|c| c.estimate);
        linear_predictor(&b, &design_row(time, self.start)).exp()
    }

    /// The rate the pre-start trend projects at `time`, as if nothing had been adopted (the
    /// chart's dashed counterfactual).
    pub fn counterfactual_rate(&self, time: f64) -> f64 {
        (self.intercept.estimate + self.trend.estimate * time).exp()
    }
}

/// Which side of the start month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// Months before t₀.
    Before,
    /// Months from t₀ on.
    After,
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Segment::Before => "before",
            Segment::After => "from",
        })
    }
}

/// Why a segmented regression could not be fitted, in words a user can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SegmentedPoissonError {
    /// A month's exposure is zero, negative or not a number.
    #[error("the month at time {time} has no positive exposure ({exposure}); a rate needs one")]
    BadExposure {
        /// The month's time.
        time: f64,
        /// Its exposure.
        exposure: f64,
    },
    /// A segment has fewer than two distinct months, or there are no residual degrees of
    /// freedom for the dispersion.
    #[error(
        "a segmented regression needs at least two distinct months before the start and two from \
         it on, and more than four months in all; got {before} before and {after} from the start on"
    )]
    TooFewMonths {
        /// Distinct months before t₀.
        before: usize,
        /// Distinct months from t₀ on.
        after: usize,
    },
    /// A segment has no events: its level is −∞.
    #[error(
        "no events in the months {segment} the start: the rate there is estimated as zero and \
         the level change is infinite (separation); use the exact rate ratio instead"
    )]
    NoEvents {
        /// The segment without events.
        segment: Segment,
    },
    /// All of a segment's events are in its first or last month: its trend is ±∞.
    #[error(
        "every event in the months {segment} the start falls in its month at time {time}, at the \
         segment's edge: the trend there runs to infinity (separation); use the exact rate ratio \
         or a longer window"
    )]
    EventsAtEdge {
        /// The segment.
        segment: Segment,
        /// The only month with events.
        time: f64,
    },
    /// The iterations did not settle.
    #[error(
        "the fit did not converge in {iterations} iterations (last largest coefficient change \
         {change:e}); the series may be too sparse for a trend on each side"
    )]
    NotConverged {
        /// Iterations run.
        iterations: usize,
        /// The largest relative coefficient change in the last one.
        change: f64,
    },
    /// XᵀWX could not be inverted (fitted means underflowed).
    #[error("the weighted design matrix is singular: the fitted rates underflowed")]
    Singular,
}

/// [1, t, afterₜ, (t − t₀)·afterₜ].
fn design_row(time: f64, start: f64) -> [f64; P] {
    let after = if time >= start { 1.0 } else { 0.0 };
    [1.0, time, after, (time - start) * after]
}

fn linear_predictor(beta: &[f64; P], row: &[f64; P]) -> f64 {
    beta.iter().zip(row).map(|(b, x)| b * x).sum()
}

/// The Cholesky factor L (lower triangular, A = LLᵀ) of a symmetric positive-definite matrix.
fn cholesky(a: &[[f64; P]; P]) -> Option<[[f64; P]; P]> {
    let mut l = [[0.0; P]; P];
    for i in 0..P {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - sum;
                if !(d.is_finite() && d > 0.0) {
                    return None;
                }
                l[i][j] = d.sqrt();
            } else {
                l[i][j] = (a[i][j] - sum) / l[j][j];
            }
        }
    }
    Some(l)
}

/// x with LLᵀx = b.
fn cholesky_solve(l: &[[f64; P]; P], b: &[f64; P]) -> [f64; P] {
    let mut y = [0.0; P];
    for i in 0..P {
        let sum: f64 = (0..i).map(|k| l[i][k] * y[k]).sum();
        y[i] = (b[i] - sum) / l[i][i];
    }
    let mut x = [0.0; P];
    for i in (0..P).rev() {
        let sum: f64 = (i + 1..P).map(|k| l[k][i] * x[k]).sum();
        x[i] = (y[i] - sum) / l[i][i];
    }
    x
}

/// The fit's data in model form.
struct Design {
    rows: Vec<[f64; P]>,
    offsets: Vec<f64>,
    counts: Vec<f64>,
}

impl Design {
    fn means(&self, beta: &[f64; P]) -> Vec<f64> {
        self.rows
            .iter()
            .zip(&self.offsets)
            .map(|(row, offset)| (offset + linear_predictor(beta, row)).exp())
            .collect()
    }

    fn deviance(&self, means: &[f64]) -> f64 {
        2.0 * self
            .counts
            .iter()
            .zip(means)
            .map(|(&y, &mu)| {
                let log_term = if y > 0.0 { y * (y / mu).ln() } else { 0.0 };
                log_term - (y - mu)
            })
            .sum::<f64>()
    }

    /// XᵀWX for weights `weights`: at the fitted means, the Fisher information.
    fn information(&self, weights: &[f64]) -> [[f64; P]; P] {
        let mut xtwx = [[0.0; P]; P];
        for (row, &w) in self.rows.iter().zip(weights) {
            for i in 0..P {
                for j in 0..P {
                    xtwx[i][j] += w * row[i] * row[j];
                }
            }
        }
        xtwx
    }

    /// One weighted least-squares step from the means `means` (weights μ, working response
    /// η − offset + (y − μ)/μ): the IRLS, here Newton, update.
    fn step(&self, means: &[f64]) -> Option<[f64; P]> {
        let mut xtwz = [0.0; P];
        for (((row, &mu), &y), offset) in self
            .rows
            .iter()
            .zip(means)
            .zip(&self.counts)
            .zip(&self.offsets)
        {
            let working = mu.ln() - offset + (y - mu) / mu;
            for i in 0..P {
                xtwz[i] += mu * row[i] * working;
            }
        }
        Some(cholesky_solve(&cholesky(&self.information(means))?, &xtwz))
    }
}

/// Checks that each segment has two distinct months and events away from its edges.
fn check_segments(months: &[SeriesMonth], start: f64) -> Result<(), SegmentedPoissonError> {
    let mut distinct = [0usize; 2];
    let segments = [Segment::Before, Segment::After];
    let mut checks = Vec::new();
    for (side, segment) in segments.iter().enumerate() {
        let mut times: Vec<f64> = months
            .iter()
            .filter(|m| (m.time >= start) == (side == 1))
            .map(|m| m.time)
            .collect();
        times.sort_by(f64::total_cmp);
        times.dedup();
        distinct[side] = times.len();
        let mut positive: Vec<f64> = months
            .iter()
            .filter(|m| (m.time >= start) == (side == 1) && m.events > 0)
            .map(|m| m.time)
            .collect();
        positive.sort_by(f64::total_cmp);
        positive.dedup();
        checks.push((*segment, times, positive));
    }
    if distinct[0] < 2 || distinct[1] < 2 || months.len() <= P {
        return Err(SegmentedPoissonError::TooFewMonths {
            before: distinct[0],
            after: distinct[1],
        });
    }
    for (segment, times, positive) in checks {
        match positive.as_slice() {
            [] => return Err(SegmentedPoissonError::NoEvents { segment }),
            [only] if Some(only) == times.first() || Some(only) == times.last() => {
                return Err(SegmentedPoissonError::EventsAtEdge {
                    segment,
                    time: *only,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Fits the segmented Poisson regression to `months` with the intervention starting at time
/// `start` (months at or after it are "after"). Leave the start month out of `months` to
/// exclude a transition month; its time still anchors the level change.
pub fn fit(months: &[SeriesMonth], start: f64) -> Result<SegmentedPoisson, SegmentedPoissonError> {
    if let Some(bad) = months
        .iter()
        .find(|m| !(m.exposure > 0.0 && m.exposure.is_finite() && m.time.is_finite()))
    {
        return Err(SegmentedPoissonError::BadExposure {
            time: bad.time,
            exposure: bad.exposure,
        });
    }
    check_segments(months, start)?;
    let design = Design {
        rows: months.iter().map(|m| design_row(m.time, start)).collect(),
        offsets: months.iter().map(|m| m.exposure.ln()).collect(),
        counts: months.iter().map(|m| m.events as f64).collect(),
    };
    // Start from the data themselves (μ = y + ½), as glm does, one step from a sensible β.
    let start_means: Vec<f64> = design.counts.iter().map(|y| y + 0.5).collect();
    let mut beta = design
        .step(&start_means)
        .ok_or(SegmentedPoissonError::Singular)?;
    let mut means = design.means(&beta);
    let mut deviance = design.deviance(&means);
    let mut change = f64::INFINITY;
    let mut iterations = 0;
    while change > TOLERANCE {
        if iterations == MAX_ITERATIONS {
            return Err(SegmentedPoissonError::NotConverged { iterations, change });
        }
        iterations += 1;
        let mut next = design.step(&means).ok_or(SegmentedPoissonError::Singular)?;
        let mut next_means = design.means(&next);
        let mut next_deviance = design.deviance(&next_means);
        // Step halving keeps the deviance from rising (or overflowing) on a poor start.
        let mut halvings = 0;
        let rose = |d: f64| d.is_nan() || d > deviance * (1.0 + 1e-12) + 1e-12;
        while rose(next_deviance) && halvings < 40 {
            for (n, b) in next.iter_mut().zip(&beta) {
                *n = 0.5 * (*n + b);
            }
            next_means = design.means(&next);
            next_deviance = design.deviance(&next_means);
            halvings += 1;
        }
        change = next
            .iter()
            .zip(&beta)
            .map(|(n, b)| (n - b).abs() / (1.0 + b.abs()))
            .fold(0.0, f64::max);
        if !change.is_finite() {
            return Err(SegmentedPoissonError::NotConverged { iterations, change });
        }
        beta = next;
        means = next_means;
        deviance = next_deviance;
    }
    let factor = cholesky(&design.information(&means)).ok_or(SegmentedPoissonError::Singular)?;
    let mut covariance = [[0.0; P]; P];
    for j in 0..P {
        let mut unit = [0.0; P];
        unit[j] = 1.0;
        let column = cholesky_solve(&factor, &unit);
        for i in 0..P {
            covariance[i][j] = column[i];
        }
    }
    let pearson_chi2: f64 = design
        .counts
        .iter()
        .zip(&means)
        .map(|(y, mu)| (y - mu).powi(2) / mu)
        .sum();
    let residual_df = months.len() - P;
    let dispersion = pearson_chi2 / residual_df as f64;
    let coefficient = |j: usize| Coefficient {
        estimate: beta[j],
        standard_error: covariance[j][j].sqrt(),
        adjusted_standard_error: (covariance[j][j] * dispersion).sqrt(),
    };
    Ok(SegmentedPoisson {
        start,
        intercept: coefficient(0),
        trend: coefficient(1),
        level_change: coefficient(2),
        trend_change: coefficient(3),
        covariance,
        pearson_chi2,
        deviance,
        residual_df,
        dispersion,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(counts: &[u64]) -> Vec<SeriesMonth> {
        counts
            .iter()
            .enumerate()
            .map(|(t, &events)| SeriesMonth {
                time: t as f64,
                events,
                exposure: 1000.0,
            })
            .collect()
    }

    #[test]
    fn a_planted_level_drop_is_found() {
        // Exactly log-linear data: the fit reproduces them and the deviance is zero.
        let months: Vec<SeriesMonth> = (0..24)
            .map(|t| {
                let rate = if t < 12 { 0.004 } else { 0.004 * 0.65 };
                SeriesMonth {
                    time: t as f64,
                    events: (rate * 1e6_f64).round() as u64,
                    exposure: 1e6,
                }
            })
            .collect();
        let fit = fit(&months, 12.0).unwrap();
        assert!((fit.level_change.ratio() - 0.65).abs() < 1e-9);
        assert!(fit.trend.estimate.abs() < 1e-9 && fit.trend_change.estimate.abs() < 1e-9);
        assert!(fit.deviance.abs() < 1e-6);
        assert!((fit.rate(20.0) - 0.0026).abs() < 1e-12);
        assert!((fit.counterfactual_rate(20.0) - 0.004).abs() < 1e-12);
    }

    #[test]
    fn separation_is_said_in_words() {
        let none_after = fit(&series(&[3, 4, 2, 5, 0, 0, 0, 0]), 4.0).unwrap_err();
        assert_eq!(
            none_after,
            SegmentedPoissonError::NoEvents {
                segment: Segment::After
            }
        );
        assert!(
            none_after
                .to_string()
                .contains("no events in the months from the start")
        );
        let edge = fit(&series(&[3, 4, 2, 5, 0, 0, 0, 6]), 4.0).unwrap_err();
        assert_eq!(
            edge,
            SegmentedPoissonError::EventsAtEdge {
                segment: Segment::After,
                time: 7.0
            }
        );
        // One month with events inside the segment is not separation: the trend is flat there.
        assert!(fit(&series(&[3, 4, 2, 5, 0, 6, 0, 0]), 4.0).is_ok());
    }

    #[test]
    fn too_short_or_unexposed_series_are_refused() {
        assert!(matches!(
            fit(&series(&[3, 4, 2, 5, 1]), 4.0),
            Err(SegmentedPoissonError::TooFewMonths {
                before: 4,
                after: 1
            })
        ));
        let mut months = series(&[3, 4, 2, 5, 1, 2]);
        months[2].exposure = 0.0;
        assert!(matches!(
            fit(&months, 3.0),
            Err(SegmentedPoissonError::BadExposure { .. })
        ));
    }
}
