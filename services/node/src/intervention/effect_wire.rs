//! The facility's before/after as the API answers it: series with the fitted and
//! counterfactual rates (what a chart draws), the windows, the rate ratio and the ITS.

use super::definition::Intervention;
use super::effect::{CONFIDENCE, Effect, time_of};
use super::wire::intervention_to_wire;
use psonet_core::pb;
use psonet_core::stats::Interval;
use psonet_core::stats::rate_ratio::Windows;
use psonet_core::stats::segmented_poisson::SegmentedPoisson;

fn interval(i: Interval) -> pb::Interval {
    pb::Interval {
        lower: i.lower,
        upper: i.upper,
    }
}

/// The windows' sums on the wire.
pub fn counts_to_wire(w: &Windows) -> pb::BeforeAfterCounts {
    pb::BeforeAfterCounts {
        before_events: w.counts.before.events,
        before_exposure: w.counts.before.exposure as u64,
        before_months: w.months_before as u32,
        after_events: w.counts.after.events,
        after_exposure: w.counts.after.exposure as u64,
        after_months: w.months_after as u32,
    }
}

fn its_to_wire(its: &SegmentedPoisson) -> pb::InterruptedTimeSeries {
    pb::InterruptedTimeSeries {
        level_change: its.level_change.ratio(),
        level_change_interval: Some(interval(its.level_change.ratio_interval(CONFIDENCE, true))),
        trend_change: its.trend_change.ratio(),
        trend_change_interval: Some(interval(its.trend_change.ratio_interval(CONFIDENCE, true))),
        trend_before: its.trend.ratio(),
        dispersion: its.dispersion,
    }
}

/// The response for `effect` of `intervention` on `metric` with `window` months each side.
pub fn effect_to_wire(
    effect: &Effect,
    intervention: &Intervention,
    metric: &pb::Metric,
    window: u32,
) -> pb::InterventionEffectResponse {
    let multiplier = if metric.multiplier > 0.0 {
        metric.multiplier
    } else {
        1.0
    };
    let fit = effect.its.as_ref().ok();
    let series = effect
        .series
        .iter()
        .filter(|m| m.exposure > 0)
        .map(|m| {
            let t = time_of(m.month, intervention.start);
            pb::EffectMonth {
                month: m.month.to_string(),
                events: m.events,
                exposure: m.exposure,
                fitted_rate: fit.map_or(0.0, |f| f.rate(t) * multiplier),
                counterfactual_rate: match fit {
                    Some(f) if t >= 0.0 => f.counterfactual_rate(t) * multiplier,
                    _ => 0.0,
                },
            }
        })
        .collect();
    pb::InterventionEffectResponse {
        intervention: Some(intervention_to_wire(intervention)),
        metric: Some(metric.clone()),
        window_months: window,
        series,
        counts: Some(counts_to_wire(&effect.windows)),
        rate_ratio: effect.rate_ratio.map(|r| pb::RateRatioEstimate {
            ratio: r.ratio,
            exact: Some(interval(r.exact)),
            mid_p_value: r.mid_p_value,
        }),
        its: fit.map(its_to_wire),
        its_not_fitted: match &effect.its {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        },
    }
}
