//! A metric's benchmark over a set of facilities: pooled rate, distribution, funnel,
//! over-dispersion — computed from each facility's whole-range count and exposure.
//!
//! A facility whose count is withheld (1..k-1 events in a year of the range) or that recorded no
//! exposure is left out of every figure and listed as excluded, never counted as zero: a zero
//! would pull the pooled rate down and plant a false "good" dot on the funnel. The figures are
//! released only when the network release rule allows it for the facilities that remain.

use crate::answer::Tally;
use crate::metric::fetch::{FacilityCounts, Unusable};
use crate::network_sum::NetworkSum;
use crate::pseudonym::Pseudonyms;
use psonet_core::month::MonthRange;
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb;
use psonet_core::stats::Interval;
use psonet_core::stats::funnel::{FunnelLimits, FunnelPosition};
use psonet_core::stats::overdispersion::{self, Overdispersion};
use psonet_core::stats::percentile::quantile_type7;
use psonet_core::stats::poisson_interval::garwood;
use psonet_core::stats::pooled_rate::{CountExposure, pooled_rate};

/// Points on each drawn funnel curve.
const CURVE_POINTS: usize = 60;

/// A facility that counts.
struct Unit<'a> {
    id: &'a str,
    data: CountExposure,
    /// Its exposure as the node recorded it (`data` holds it as the statistics read it).
    exposure: u64,
}

/// Splits facilities into those that count and the excluded, with why.
fn partition<'a>(
    facilities: &'a [FacilityCounts<()>],
    names: &Pseudonyms,
) -> (Vec<Unit<'a>>, Vec<pb::ExcludedFacility>) {
    let mut units = Vec::new();
    let mut excluded = Vec::new();
    for f in facilities {
        let reason = match f.counts.usable(&()) {
            Ok((events, exposure)) => {
                units.push(Unit {
                    id: &f.id,
                    data: CountExposure {
                        events,
                        exposure: exposure as f64,
                    },
                    exposure,
                });
                continue;
            }
            Err(Unusable::NoExposure) => "no exposure recorded for the metric's denominator",
            Err(Unusable::Withheld) => {
                "count withheld by small-cell suppression (1 to k-1 events in a year of the range)"
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
    let sum: NetworkSum = units
        .iter()
        .map(|u| (Tally::known(u.data.events), u.exposure))
        .collect();
    if let Err(why) = sum.release(rule) {
        out.withheld_reason = why.to_string();
        return out;
    }
    let total = CountExposure {
        events: sum.events,
        exposure: sum.exposure as f64,
    };
    let Some(pooled) = pooled_rate(&[total]) else {
        out.withheld_reason = "the contributing facilities recorded no exposure".into();
        return out;
    };
    let k = metric.multiplier;
    out.released = true;
    out.events = total.events;
    out.exposure = total.exposure;
    out.pooled_rate = pooled * k;
    out.pooled_interval_95 = Some(interval_to_wire(
        garwood(total.events, 0.95).scaled(k / total.exposure),
    ));
    out.contributing_facilities = sum.contributing();
    let data: Vec<CountExposure> = units.iter().map(|u| u.data).collect();
    let rates: Vec<f64> = data
        .iter()
        .map(|d| d.events as f64 / d.exposure * k)
        .collect();
    out.distribution = distribution(&rates);
    let od = overdispersion::estimate(&data, pooled).unwrap_or(Overdispersion {
        units: data.len(),
        phi: 1.0,
        tau2: 0.0,
    });
    let funnel = Funnel { pooled, k, od };
    out.funnel = funnel.points(&units, names, caller);
    out.funnel_curve = funnel.curve(&data);
    out.overdispersion = Some(pb::Overdispersion {
        phi: od.phi,
        tau2: od.tau2,
        facilities: od.units as u32,
    });
    out
}

/// The funnel's target, scale and over-dispersion.
struct Funnel {
    /// Pooled rate per unit of exposure.
    pooled: f64,
    /// The metric's multiplier.
    k: f64,
    /// Over-dispersion of the units.
    od: Overdispersion,
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

impl Funnel {
    /// Exact and adjusted limits at `exposure`.
    fn limits(&self, exposure: f64) -> Option<(FunnelLimits, FunnelLimits)> {
        Some((
            FunnelLimits::exact(self.pooled, exposure)?,
            FunnelLimits::adjusted(&self.od, self.pooled, exposure)?,
        ))
    }

    fn points(
        &self,
        units: &[Unit<'_>],
        names: &Pseudonyms,
        caller: Option<&str>,
    ) -> Vec<pb::FunnelPoint> {
        let mut points: Vec<pb::FunnelPoint> = units
            .iter()
            .filter_map(|u| {
                let rate = u.data.events as f64 / u.data.exposure;
                let (exact, adjusted) = self.limits(u.data.exposure)?;
                Some(pb::FunnelPoint {
                    facility: names.name(u.id),
                    is_caller: Some(u.id) == caller,
                    events: u.data.events,
                    exposure: u.data.exposure,
                    rate: rate * self.k,
                    limits: Some(limits_to_wire(exact.scaled(self.k))),
                    position: position_to_wire(exact.position(rate)) as i32,
                    adjusted_limits: Some(limits_to_wire(adjusted.scaled(self.k))),
                    adjusted_position: position_to_wire(adjusted.position(rate)) as i32,
                })
            })
            .collect();
        points.sort_by(|a, b| a.exposure.total_cmp(&b.exposure));
        points
    }

    fn curve(&self, data: &[CountExposure]) -> Vec<pb::FunnelCurvePoint> {
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
                let (exact, adjusted) = self.limits(exposure)?;
                Some(pb::FunnelCurvePoint {
                    exposure,
                    limits: Some(limits_to_wire(exact.scaled(self.k))),
                    adjusted_limits: Some(limits_to_wire(adjusted.scaled(self.k))),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Count;
    use crate::metric::catalogue::MetricCatalogue;
    use crate::metric::fetch::Counts;
    use std::collections::BTreeMap;

    fn facility(id: &str, count: Count, exposure: u64) -> FacilityCounts<()> {
        FacilityCounts {
            id: id.into(),
            counts: Counts {
                events: BTreeMap::from([((), count)]),
                exposure: BTreeMap::from([((), exposure)]),
            },
        }
    }

    fn run(facilities: &[FacilityCounts<()>]) -> pb::MetricBenchmark {
        let metric = MetricCatalogue::default().get("falls").unwrap().clone();
        let range =
            MonthRange::new("2025-01".parse().unwrap(), "2025-12".parse().unwrap()).unwrap();
        let names = Pseudonyms::new(facilities.iter().map(|f| f.id.as_str()), None);
        benchmark(
            &metric,
            range,
            facilities,
            &NetworkReleaseRule::default(),
            &names,
            None,
        )
    }

    #[test]
    fn withheld_counts_are_excluded_not_zero() {
        let mut facilities: Vec<FacilityCounts<()>> = (0..5)
            .map(|i| facility(&format!("f{i}"), Count::Known(30 + i), 10_000))
            .collect();
        facilities.push(facility("small", Count::Withheld, 9_000));
        facilities.push(facility("empty", Count::Known(0), 0));
        let b = run(&facilities);
        assert!(b.released, "{}", b.withheld_reason);
        assert_eq!((b.contributing_facilities, b.events), (5, 160));
        assert!((b.pooled_rate - 160.0 / 50_000.0 * 1000.0).abs() < 1e-12);
        assert_eq!(b.excluded.len(), 2);
        assert!(b.excluded.iter().all(|e| e.facility.starts_with("peer-")));
        assert_eq!(b.funnel.len(), 5);
        // Without the fifth facility the rule withholds every figure.
        let b = run(&facilities[1..]);
        assert!(!b.released && b.funnel.is_empty() && b.distribution.is_none());
        assert!(
            b.withheld_reason.contains("at least 5"),
            "{}",
            b.withheld_reason
        );
    }
}
