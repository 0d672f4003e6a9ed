//! A facility's own before/after for one intervention and one metric, on its exact counters.
//!
//! Two views, because each answers a question the other cannot:
//! - the **exact rate ratio** of the W months after the start month against the W months
//!   before (the start month, a month of transition, in neither), with its exact conditional
//!   interval — simple, and right when there was no trend;
//! - an **interrupted time series** (segmented Poisson regression, level and trend change at
//!   the start month, over-dispersion-adjusted standard errors) over the same months, which
//!   does not mistake a trend already under way for an effect.
//!
//! Months without exposure carry no rate and are left out of both.

use super::definition::Intervention;
use super::series::{MonthCount, SeriesError, monthly};
use crate::store::Store;
use psonet_core::month::{Month, MonthRange};
use psonet_core::pb;
use psonet_core::stats::rate_ratio::{RateRatio, Windows, rate_ratio, windows};
use psonet_core::stats::segmented_poisson::{
    SegmentedPoisson, SegmentedPoissonError, SeriesMonth, fit,
};

/// Months on each side when the caller does not say.
pub const DEFAULT_WINDOW_MONTHS: u32 = 12;
/// Fewest months on each side a facility may ask for.
pub const MIN_WINDOW_MONTHS: u32 = 2;
/// Most months on each side a facility may ask for.
pub const MAX_WINDOW_MONTHS: u32 = 60;
/// Confidence of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// The before/after of one intervention and metric.
#[derive(Debug, Clone)]
pub struct Effect {
    /// The months of both windows and the start month (with or without exposure).
    pub series: Vec<MonthCount>,
    /// The windows' sums.
    pub windows: Windows,
    /// The exact rate ratio, when both windows have exposure.
    pub rate_ratio: Option<RateRatio>,
    /// The interrupted time series, or why it could not be fitted.
    pub its: Result<SegmentedPoisson, SegmentedPoissonError>,
}

/// The months `window` before `start` to `window` after it.
pub fn window_range(start: Month, window: u32) -> Option<MonthRange> {
    let to = Month::from_index(start.index() + window)?;
    MonthRange::new(start.minus(window), to).ok()
}

/// Position of `month` on the time axis: months since `start`.
pub fn time_of(month: Month, start: Month) -> f64 {
    f64::from(month.index()) - f64::from(start.index())
}

/// The series months with exposure on the time axis around `start`.
pub fn series_months(series: &[MonthCount], start: Month) -> Vec<SeriesMonth> {
    series
        .iter()
        .filter(|m| m.exposure > 0)
        .map(|m| SeriesMonth {
            time: time_of(m.month, start),
            events: m.events,
            exposure: m.exposure as f64,
        })
        .collect()
}

/// The windows' sums of `series` around `start`.
pub fn before_after(series: &[MonthCount], start: Month, window: u32) -> Windows {
    windows(&series_months(series, start), 0.0, window)
}

/// Computes the before/after of `intervention` for `metric` with `window` months each side.
pub fn effect(
    store: &Store,
    intervention: &Intervention,
    metric: &pb::Metric,
    window: u32,
) -> Result<Effect, SeriesError> {
    let metric_units = metric
        .numerator
        .as_ref()
        .map(|f| f.unit_types.clone())
        .unwrap_or_default();
    let units = intervention.unit_filter(&metric_units);
    let start = intervention.start;
    let series = match (units, window_range(start, window)) {
        (Some(units), Some(range)) => monthly(store, metric, range, &units)?,
        _ => Vec::new(),
    };
    let windows = before_after(&series, start, window);
    let fitted: Vec<SeriesMonth> = series_months(&series, start)
        .into_iter()
        .filter(|m| m.time != 0.0)
        .collect();
    Ok(Effect {
        rate_ratio: rate_ratio(windows.counts, CONFIDENCE),
        its: fit(&fitted, 0.0),
        windows,
        series,
    })
}
