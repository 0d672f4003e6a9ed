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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Exposure;
    use psonet_core::event::UnitType;
    use psonet_core::wire::event_from_wire;

    fn fall(key: &str, month: Month, unit: UnitType) -> psonet_core::event::Event {
        let wire = pb::Event {
            idempotency_key: key.into(),
            event_type: pb::EventType::Incident as i32,
            categories: vec![pb::EventCategory::Fall as i32],
            harm: pb::HarmLevel::NoHarm as i32,
            discovery_month: month.to_string(),
            unit_type: unit as i32,
            ..Default::default()
        };
        event_from_wire(wire, "event", "2026-11".parse().unwrap()).unwrap()
    }

    fn falls_metric() -> pb::Metric {
        pb::Metric {
            id: "falls".into(),
            numerator: Some(pb::AggregateFilter {
                categories: vec![pb::EventCategory::Fall as i32],
                ..Default::default()
            }),
            denominator: pb::DenominatorType::PatientDays as i32,
            multiplier: 1000.0,
            ..Default::default()
        }
    }

    /// Two units, 2024-07 to 2025-07: med-surg has 20 falls a month before 2025-01 and 10
    /// after, the ICU 5 throughout; each unit 1,000 patient days a month.
    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let start: Month = "2025-01".parse().unwrap();
        let (mut events, mut exposure) = (Vec::new(), Vec::new());
        for month in MonthRange::new(
            start.minus(6),
            Month::from_index(start.index() + 6).unwrap(),
        )
        .unwrap()
        .months()
        {
            let med_surg = if month < start { 20 } else { 10 };
            for (unit, n) in [
                (UnitType::MedSurg, med_surg),
                (UnitType::CriticalCareAdult, 5),
            ] {
                for k in 0..n {
                    events.push(fall(&format!("{month}-{unit:?}-{k}"), month, unit));
                }
                exposure.push(Exposure {
                    month,
                    unit_type: unit,
                    denominator: pb::DenominatorType::PatientDays,
                    value: 1000,
                });
            }
        }
        store.submit(&events).unwrap();
        store.record_exposure(&exposure).unwrap();
        (dir, store)
    }

    fn bundle(units: Vec<UnitType>) -> Intervention {
        Intervention {
            id: "b".into(),
            practice_code: "fall-bundle".into(),
            title: "Bundle".into(),
            start: "2025-01".parse().unwrap(),
            end: None,
            unit_types: units,
            metrics: Vec::new(),
            narrative: String::new(),
            revision: 1,
        }
    }

    #[test]
    fn the_units_of_the_intervention_narrow_the_series_and_the_start_month_is_left_out() {
        let (_dir, store) = store();
        let on_med_surg =
            effect(&store, &bundle(vec![UnitType::MedSurg]), &falls_metric(), 6).unwrap();
        assert_eq!(on_med_surg.series.len(), 13);
        let w = on_med_surg.windows;
        assert_eq!((w.months_before, w.months_after), (6, 6));
        assert_eq!((w.counts.before.events, w.counts.after.events), (120, 60));
        assert_eq!(w.counts.before.exposure, 6000.0);
        let rr = on_med_surg.rate_ratio.unwrap();
        assert!((rr.ratio - 0.5).abs() < 1e-12, "{rr:?}");
        let its = on_med_surg.its.unwrap();
        assert!((its.level_change.ratio() - 0.5).abs() < 1e-6, "{its:?}");

        // Every unit: the ICU's flat 5 a month dilutes the drop.
        let everywhere = effect(&store, &bundle(Vec::new()), &falls_metric(), 6).unwrap();
        let w = everywhere.windows;
        assert_eq!((w.counts.before.events, w.counts.after.events), (150, 90));
        assert_eq!(w.counts.after.exposure, 12_000.0);

        // A metric restricted to the ICU and an intervention on med-surg share no unit.
        let mut icu = falls_metric();
        icu.numerator.as_mut().unwrap().unit_types = vec![UnitType::CriticalCareAdult as i32];
        let disjoint = effect(&store, &bundle(vec![UnitType::MedSurg]), &icu, 6).unwrap();
        assert!(disjoint.series.is_empty() && disjoint.rate_ratio.is_none());
    }
}
