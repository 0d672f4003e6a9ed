//! A metric's benchmark over a set of facilities: pooled rate, distribution, funnel,
//! over-dispersion — computed from each facility's whole-range count and exposure.
//!
//! A facility whose count is withheld (1..k-1 events in a year of the range) or that recorded no
//! exposure is left out of every figure and listed as excluded, never counted as zero: a zero
//! would pull the pooled rate down and plant a false "good" dot on the funnel. The figures are
//! released only when the network release rule allows it for the facilities that remain.

use crate::metric_answer::Count;
use crate::metric_fetch::FacilityCounts;
use crate::pseudonym::Pseudonyms;
use psonet_core::month::MonthRange;
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb;
use psonet_core::stats::funnel::{FunnelLimits, FunnelPosition};
use psonet_core::stats::percentile::quantile_type7;
use psonet_core::stats::poisson_interval::garwood;
use psonet_core::stats::pooled_rate::{CountExposure, pooled_rate};
use psonet_core::stats::{Interval, overdispersion};

/// Points on each drawn funnel curve.
const CURVE_POINTS: usize = 60;

/// A facility that counts.
struct Unit<'a> {
    id: &'a str,
    data: CountExposure,
}

/// Splits facilities into those that count and the excluded, with why.
fn partition<'a>(
    facilities: &'a [FacilityCounts<()>],
    names: &Pseudonyms,
) -> (Vec<Unit<'a>>, Vec<pb::ExcludedFacility>) {
    let mut units = Vec::new();
    let mut excluded = Vec::new();
    for f in facilities {
        let (count, exposure) = f.counts.total();
        let reason = match count {
            _ if exposure <= 0.0 => "no exposure recorded for the metric's denominator",
            Count::Withheld => {
                "count withheld by small-cell suppression (1 to k-1 events in a year of the range)"
            }
            Count::Known(events) => {
                units.push(Unit {
                    id: &f.id,
                    data: CountExposure { events, exposure },
                });
                continue;
            }
        };
        excluded.push(pb::ExcludedFacility {
            facility: names.name(&f.id),
            reason: reason.into(),
        });
    }
    excluded.sort_by(|a, b| a.facility.cmp(&b.facility));
    (units, excluded)
}

/// The benchmark of `metric` over `facilities`; `caller` (a facility) is marked in the funnel.
pub fn benchmark(
    metric: &pb::Metric,
    range: MonthRange,
    facilities: &[FacilityCounts<()>],
    rule: &NetworkReleaseRule,
    names: &Pseudonyms,
    caller: Option<&str>,
) -> pb::MetricBenchmark {
    let (units, excluded) = partition(facilities, names);
    let mut out = pb::MetricBenchmark {
        metric: Some(metric.clone()),
        month_from: range.from().to_string(),
        month_to: range.to().to_string(),
        excluded,
        ..Default::default()
    };
    let events: Vec<u64> = units.iter().map(|u| u.data.events).collect();
    if let Err(why) = rule.check(&events) {
        out.withheld_reason = why.to_string();
        return out;
    }
    let data: Vec<CountExposure> = units.iter().map(|u| u.data).collect();
    let Some(pooled) = pooled_rate(&data) else {
        out.withheld_reason = "the contributing facilities recorded no exposure".into();
        return out;
    };
    let k = metric.multiplier;
    let total_events: u64 = events.iter().sum();
    let total_exposure: f64 = data.iter().map(|d| d.exposure).sum();
    out.released = true;
    out.events = total_events;
    out.exposure = total_exposure;
    out.pooled_rate = pooled * k;
    out.pooled_interval_95 = Some(interval_to_wire(
        garwood(total_events, 0.95).scaled(k / total_exposure),
    ));
    out.contributing_facilities = units.len() as u32;
    let rates: Vec<f64> = data
        .iter()
        .map(|d| d.events as f64 / d.exposure * k)
        .collect();
    out.distribution = distribution(&rates);
    out.funnel = funnel_points(&units, pooled, k, names, caller);
    out.funnel_curve = funnel_curve(&data, pooled, k);
    out.overdispersion = overdispersion::estimate(&data, pooled).map(|o| pb::Overdispersion {
        phi: o.phi,
        tau2: o.tau2,
        facilities: o.units as u32,
    });
    out
}

/// An interval on the wire.
pub fn interval_to_wire(i: Interval) -> pb::Interval {
    pb::Interval {
        lower: i.lower,
        upper: i.upper,
    }
}

fn distribution(rates: &[f64]) -> Option<pb::RateDistribution> {
    let q = |p| quantile_type7(rates, p);
    Some(pb::RateDistribution {
        p10: q(0.10)?,
        p25: q(0.25)?,
        p50: q(0.50)?,
        p75: q(0.75)?,
        p90: q(0.90)?,
    })
}

fn limits_to_wire(l: FunnelLimits) -> pb::FunnelLimits {
    pb::FunnelLimits {
        lower_998: l.lower_998,
        lower_95: l.lower_95,
        upper_95: l.upper_95,
        upper_998: l.upper_998,
    }
}

/// A funnel position on the wire.
pub fn position_to_wire(p: FunnelPosition) -> pb::FunnelPosition {
    match p {
        FunnelPosition::Within => pb::FunnelPosition::Within,
        FunnelPosition::Above95 => pb::FunnelPosition::Above95,
        FunnelPosition::Above998 => pb::FunnelPosition::Above998,
        FunnelPosition::Below95 => pb::FunnelPosition::Below95,
        FunnelPosition::Below998 => pb::FunnelPosition::Below998,
    }
}

fn funnel_points(
    units: &[Unit<'_>],
    pooled: f64,
    k: f64,
    names: &Pseudonyms,
    caller: Option<&str>,
) -> Vec<pb::FunnelPoint> {
    let mut points: Vec<pb::FunnelPoint> = units
        .iter()
        .filter_map(|u| {
            let rate = u.data.events as f64 / u.data.exposure;
            let limits = FunnelLimits::exact(pooled, u.data.exposure)?;
            Some(pb::FunnelPoint {
                facility: names.name(u.id),
                is_caller: Some(u.id) == caller,
                events: u.data.events,
                exposure: u.data.exposure,
                rate: rate * k,
                limits: Some(limits_to_wire(limits.scaled(k))),
                position: position_to_wire(limits.position(rate)) as i32,
            })
        })
        .collect();
    points.sort_by(|a, b| a.exposure.total_cmp(&b.exposure));
    points
}

fn funnel_curve(data: &[CountExposure], pooled: f64, k: f64) -> Vec<pb::FunnelCurvePoint> {
    let min = data
        .iter()
        .map(|d| d.exposure)
        .fold(f64::INFINITY, f64::min);
    let max = data.iter().map(|d| d.exposure).fold(0.0, f64::max);
    if !(min.is_finite() && max > 0.0) {
        return Vec::new();
    }
    let (lo, hi) = ((min * 0.5).ln(), (max * 1.1).ln());
    (0..CURVE_POINTS)
        .filter_map(|i| {
            let exposure = (lo + (hi - lo) * i as f64 / (CURVE_POINTS - 1) as f64).exp();
            let limits = FunnelLimits::exact(pooled, exposure)?;
            Some(pb::FunnelCurvePoint {
                exposure,
                limits: Some(limits_to_wire(limits.scaled(k))),
            })
        })
        .collect()
}
