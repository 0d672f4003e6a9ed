//! A metric's benchmark over a set of facilities: the network's pooled rate, and the per-facility
//! figures around it — distribution of facility rates, funnel, over-dispersion.
//!
//! The two halves come from different releases:
//!
//! - the **pooled rate** is a network figure ([`Centre`]): on the secure path the exact sum of
//!   every facility in the cohort, released under the network cell rule
//!   ([`crate::metric::secure_sum`]); on the node-suppressed path (and in a facility's scorecard,
//!   which keeps that path) the sum of the facilities on the funnel;
//! - the **funnel** shows each facility's whole-range count as its node released it (asked per
//!   calendar year, so fewer cells are small): a per-facility figure, pseudonymized, which keeps
//!   the node-side rules. A facility whose count is withheld (1..k-1 events in a year of the range)
//!   or that recorded no exposure is left out of it and listed as excluded, never counted as zero:
//!   a zero would plant a false "good" dot on the funnel. The funnel needs at least
//!   `min_facilities` facilities, none dominating.
//!
//! Next to an exact network total, the funnel is a table with a margin: the total minus the
//! facilities on the funnel is the sum of those left off it. When one facility is left off (its
//! count withheld at its node, or its answer missing), that subtraction would give its count away,
//! so the funnel drops complements — the smallest counts first — exactly as a node does for its
//! own totals ([`psonet_core::disclosure::complementary`]).

use crate::answer::Tally;
use crate::metric::fetch::{FacilityCounts, Unusable};
use crate::metric::peer_points::{RATE_SIGNIFICANT_FIGURES, exposure_band, round_significant};
use crate::metric::secure_sum::Pooled;
use crate::network_sum::NetworkSum;
use crate::pseudonym::Pseudonyms;
use psonet_core::disclosure::complementary::{self, Margin};
use psonet_core::disclosure::primary::SmallCellRule;
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

/// Why a facility left off the funnel so that another one's count stays hidden is left off.
const COMPLEMENT: &str =
    "left off so that another facility's count cannot be recovered from the network total";

/// The network figure a benchmark is centred on.
#[derive(Debug, Clone, Copy)]
pub enum Centre<'a> {
    /// The exact network sum over the facilities `in_sum` (secure aggregation), released or
    /// withheld by the network cell rule.
    Secure {
        /// The range's total, or why it is withheld.
        pooled: &'a Result<Pooled, String>,
        /// The facilities whose counts are in it.
        in_sum: &'a [String],
    },
    /// The sum of the facilities on the funnel, under the plain path's release rule.
    Funnel,
}

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
    (units, excluded)
}

/// Leaves off the funnel, smallest count first, until the facilities of `in_sum` not on it
/// cannot be recovered from the network's `total` (see the module doc); those left off join
/// `excluded`. Units outside the sum leave too: their counts are in no total to compare with.
fn complements<'a>(
    units: Vec<Unit<'a>>,
    in_sum: &[String],
    total: u64,
    k: &SmallCellRule,
    names: &Pseudonyms,
    excluded: &mut Vec<pb::ExcludedFacility>,
) -> Vec<Unit<'a>> {
    let (units, outside): (Vec<Unit<'a>>, Vec<Unit<'a>>) = units
        .into_iter()
        .partition(|u| in_sum.iter().any(|id| id == u.id));
    for unit in outside {
        excluded.push(pb::ExcludedFacility {
            facility: names.name(unit.id),
            reason: "not in the network sum (its node did not answer the secure aggregation)"
                .into(),
        });
    }
    let off_funnel = in_sum.len().saturating_sub(units.len());
    // The table: the units' counts, one withheld cell per facility off the funnel (its count
    // unknown here, and not needed), and the total as their margin.
    let mut values: Vec<u64> = units.iter().map(|u| u.data.events).collect();
    values.extend(std::iter::repeat_n(0, off_funnel));
    values.push(total);
    let mut hidden = vec![false; units.len()];
    hidden.extend(std::iter::repeat_n(true, off_funnel));
    hidden.push(false);
    let margin = Margin {
        total: values.len() - 1,
        members: (0..values.len() - 1).collect(),
    };
    let hidden = complementary::complete(&values, hidden, &[margin], k);
    let mut kept = Vec::with_capacity(units.len());
    for (unit, hidden) in units.into_iter().zip(hidden) {
        if hidden {
            excluded.push(pb::ExcludedFacility {
                facility: names.name(unit.id),
                reason: COMPLEMENT.into(),
            });
        } else {
            kept.push(unit);
        }
    }
    kept
}

/// What the benchmark is computed with: the metric's range, the network's release rules and
/// the names facilities are shown under.
pub struct BenchmarkRules<'a> {
    /// The plain path's rule: the funnel's facility minimum and dominance.
    pub network: &'a NetworkReleaseRule,
    /// k, for the funnel's complements.
    pub small_cells: &'a SmallCellRule,
    /// Pseudonyms (the caller's own id for the caller).
    pub names: &'a Pseudonyms,
}

/// The benchmark of `metric` over `range`, centred on `centre`, with `facilities`' own counts on
/// the funnel; `caller` (a facility) is marked in it with its exact figures, every other
/// facility's point shown as [`peer_points`](crate::metric::peer_points) says.
pub fn benchmark(
    metric: &pb::Metric,
    range: MonthRange,
    centre: Centre<'_>,
    facilities: &[FacilityCounts<()>],
    rules: &BenchmarkRules<'_>,
    caller: Option<&str>,
) -> pb::MetricBenchmark {
    let names = rules.names;
    let (mut units, mut excluded) = partition(facilities, names);
    let mut out = pb::MetricBenchmark {
        metric: Some(metric.clone()),
        month_from: range.from().to_string(),
        month_to: range.to().to_string(),
        ..Default::default()
    };
    let on_funnel: NetworkSum = units
        .iter()
        .map(|u| (Tally::known(u.data.events), u.exposure))
        .collect();
    let pooled = match centre {
        Centre::Secure { pooled, in_sum } => match pooled {
            Ok(pooled) => {
                units = complements(
                    units,
                    in_sum,
                    pooled.events,
                    rules.small_cells,
                    names,
                    &mut excluded,
                );
                Ok(*pooled)
            }
            Err(why) => Err(why.clone()),
        },
        Centre::Funnel => on_funnel
            .release(rules.network)
            .map(|()| Pooled {
                events: on_funnel.events,
                exposure: on_funnel.exposure,
                facilities: on_funnel.contributing(),
            })
            .map_err(|why| why.to_string()),
    };
    excluded.sort_by(|a, b| a.facility.cmp(&b.facility));
    out.excluded = excluded;
    let pooled = match pooled {
        Ok(p) if p.exposure > 0 => p,
        Ok(_) => {
            out.withheld_reason = "the facilities in the sum recorded no exposure".into();
            return out;
        }
        Err(why) => {
            out.withheld_reason = why;
            return out;
        }
    };
    let total = CountExposure {
        events: pooled.events,
        exposure: pooled.exposure as f64,
    };
    let Some(rate) = pooled_rate(&[total]) else {
        out.withheld_reason = "the facilities in the sum recorded no exposure".into();
        return out;
    };
    let k = metric.multiplier;
    out.released = true;
    out.events = total.events;
    out.exposure = total.exposure;
    out.pooled_rate = rate * k;
    out.pooled_interval_95 = Some(interval_to_wire(
        garwood(total.events, 0.95).scaled(k / total.exposure),
    ));
    out.contributing_facilities = pooled.facilities;
    let on_funnel: NetworkSum = units
        .iter()
        .map(|u| (Tally::known(u.data.events), u.exposure))
        .collect();
    if let Err(why) = on_funnel.release(rules.network) {
        out.facilities_withheld_reason = format!("per-facility figures withheld: {why}");
        return out;
    }
    let data: Vec<CountExposure> = units.iter().map(|u| u.data).collect();
    let rates: Vec<f64> = data
        .iter()
        .map(|d| d.events as f64 / d.exposure * k)
        .collect();
    out.distribution = distribution(&rates);
    let od = overdispersion::estimate(&data, rate).unwrap_or(Overdispersion {
        units: data.len(),
        phi: 1.0,
        tau2: 0.0,
    });
    let funnel = Funnel {
        pooled: rate,
        k,
        od,
    };
    out.funnel = funnel.points(&units, names, caller);
    out.funnel_curve = funnel.curve(&out.funnel);
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

/// The rate quantiles, rounded like a peer's rate: a quantile can be one facility's rate.
fn distribution(rates: &[f64]) -> Option<pb::RateDistribution> {
    let q = |p| quantile_type7(rates, p).map(|r| round_significant(r, RATE_SIGNIFICANT_FIGURES));
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

    /// One point per facility: the caller's exact, every other one banded (exposure, rate,
    /// limits; no event count), each positioned on its exact figures.
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
                let is_caller = Some(u.id) == caller;
                let (events, exposure, shown_rate) = if is_caller {
                    (u.data.events, u.data.exposure, rate * self.k)
                } else {
                    let band = exposure_band(u.data.exposure);
                    (
                        0,
                        band,
                        round_significant(rate * self.k, RATE_SIGNIFICANT_FIGURES),
                    )
                };
                let (limits, adjusted_limits) = match is_caller {
                    true => (exact, adjusted),
                    false => self.limits(exposure)?,
                };
                Some(pb::FunnelPoint {
                    facility: names.name(u.id),
                    is_caller,
                    events,
                    exposure,
                    rate: shown_rate,
                    limits: Some(limits_to_wire(limits.scaled(self.k))),
                    position: position_to_wire(exact.position(rate)) as i32,
                    adjusted_limits: Some(limits_to_wire(adjusted_limits.scaled(self.k))),
                    adjusted_position: position_to_wire(adjusted.position(rate)) as i32,
                })
            })
            .collect();
        // By shown exposure, then by this request's pseudonym: the order says nothing more.
        points.sort_by(|a, b| {
            a.exposure
                .total_cmp(&b.exposure)
                .then_with(|| a.facility.cmp(&b.facility))
        });
        points
    }

    /// The limit curves across the shown exposures (from half the smallest to 1.1 × the
    /// largest), so their ends give no exact exposure back.
    fn curve(&self, points: &[pb::FunnelPoint]) -> Vec<pb::FunnelCurvePoint> {
        let min = points
            .iter()
            .map(|p| p.exposure)
            .fold(f64::INFINITY, f64::min);
        let max = points.iter().map(|p| p.exposure).fold(0.0, f64::max);
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

/// Each usable facility's exact rate (× the metric's multiplier), for figures about the
/// caller that must not rest on banded peers (its percentile rank).
pub fn exact_rates(metric: &pb::Metric, facilities: &[FacilityCounts<()>]) -> Vec<f64> {
    facilities
        .iter()
        .filter_map(|f| f.counts.usable(&()).ok())
        .map(|(events, exposure)| events as f64 / exposure as f64 * metric.multiplier)
        .collect()
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

    fn run_centred(facilities: &[FacilityCounts<()>], centre: Centre<'_>) -> pb::MetricBenchmark {
        let metric = MetricCatalogue::default().get("falls").unwrap().clone();
        let range =
            MonthRange::new("2025-01".parse().unwrap(), "2025-12".parse().unwrap()).unwrap();
        let names = Pseudonyms::new(facilities.iter().map(|f| f.id.as_str()), None);
        let rules = BenchmarkRules {
            network: &NetworkReleaseRule::default(),
            small_cells: &SmallCellRule::default(),
            names: &names,
        };
        benchmark(&metric, range, centre, facilities, &rules, None)
    }

    fn run(facilities: &[FacilityCounts<()>]) -> pb::MetricBenchmark {
        run_centred(facilities, Centre::Funnel)
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

    #[test]
    fn the_exact_total_centres_the_funnel_and_a_lone_facility_off_it_takes_a_complement() {
        let mut facilities: Vec<FacilityCounts<()>> = (0..6)
            .map(|i| facility(&format!("f{i}"), Count::Known(30 + i), 10_000))
            .collect();
        let in_sum: Vec<String> = (0..7).map(|i| format!("f{i}")).collect();
        // f6 is in the exact sum with 4 events, withheld at its node.
        facilities.push(facility("f6", Count::Withheld, 9_000));
        let pooled = Ok(Pooled {
            events: 30 + 31 + 32 + 33 + 34 + 35 + 4,
            exposure: 69_000,
            facilities: 7,
        });
        let b = run_centred(
            &facilities,
            Centre::Secure {
                pooled: &pooled,
                in_sum: &in_sum,
            },
        );
        assert!(b.released);
        assert_eq!((b.events, b.contributing_facilities), (199, 7));
        assert!((b.pooled_rate - 199.0 / 69_000.0 * 1000.0).abs() < 1e-12);
        // 199 minus the six on the funnel would be f6's 4: the smallest (30) leaves too.
        assert_eq!(b.funnel.len(), 5);
        assert!(b.funnel.iter().all(|p| p.events != 30));
        let reasons: Vec<&str> = b.excluded.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons.len(), 2);
        assert!(reasons.contains(&COMPLEMENT), "{reasons:?}");
        // A withheld network total withholds everything, the funnel included.
        let withheld = Err("fewer than 11 events".to_string());
        let b = run_centred(
            &facilities,
            Centre::Secure {
                pooled: &withheld,
                in_sum: &in_sum,
            },
        );
        assert!(!b.released && b.funnel.is_empty());
        assert_eq!(b.withheld_reason, "fewer than 11 events");
        // Released network total, too few facilities left for a funnel: only the funnel goes.
        let pooled = Ok(Pooled {
            events: 90,
            exposure: 40_000,
            facilities: 7,
        });
        let b = run_centred(
            &facilities[..4],
            Centre::Secure {
                pooled: &pooled,
                in_sum: &in_sum,
            },
        );
        assert!(b.released && b.funnel.is_empty() && b.distribution.is_none());
        assert!(
            b.facilities_withheld_reason.contains("at least 5"),
            "{}",
            b.facilities_withheld_reason
        );
    }
}
