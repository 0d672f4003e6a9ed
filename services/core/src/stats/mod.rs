//! The statistics a PSO publishes, each in a file named for it.
//!
//! Every function works on sufficient statistics only — per-facility counts and exposure — so the
//! gateway never needs an event. Formulas and sources are in `reference/domain.md` §10; the
//! tests compare each against values computed independently with scipy
//! (`tests/fixtures/stats/make_fixtures.py`), and the learning loop's before/after statistics
//! (rate ratio, segmented regression, meta-analysis) against statsmodels and scipy
//! (`tests/fixtures/stats/make_learning_loop_fixtures.py`).

pub mod clopper_pearson;
pub mod control_chart;
pub mod distribution;
pub mod funnel;
pub mod meta_analysis;
pub mod observed_expected;
pub mod overdispersion;
pub mod percentile;
pub mod poisson_interval;
pub mod pooled_rate;
pub mod rate_ratio;
pub mod segmented_poisson;

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

impl Interval {
    /// The interval scaled by `factor` (e.g. a count interval turned into a rate).
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            lower: self.lower * factor,
            upper: self.upper * factor,
        }
    }
}
