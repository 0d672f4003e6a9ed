//! Monthly series of a metric as u-charts with special-cause signals.
//!
//! A month enters the chart only with a known count and some exposure; the network series also
//! needs the network release rule to pass for that month. Withheld months stay on the chart as
//! gaps (with the reason) and are skipped by the signal rules, which run over the released
//! points in order.

use crate::metric::fetch::{Counts, FacilityCounts, Unusable, network_sum};
use psonet_core::month::{Month, MonthRange};
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb;
use psonet_core::query::{Grain, Period};
use psonet_core::stats::control_chart::{self, ChartKind, Direction, Rule, Subgroup};

/// One month of a series: its count and exposure with the facilities counted, or why not.
pub type MonthFigure = Result<(u64, u64, u32), String>;

/// The network's monthly series over `facilities`.
pub fn network_series(
    range: MonthRange,
    facilities: &[FacilityCounts<Period>],
    rule: &NetworkReleaseRule,
) -> Vec<(Month, MonthFigure)> {
    range
        .months()
        .map(|month| {
            let sum = network_sum(facilities, &Period::of(month, Grain::Month));
            let figure = sum
                .release(rule)
                .map_err(|w| w.to_string())
                .map(|()| (sum.events, sum.exposure, sum.contributing()));
            (month, figure)
        })
        .collect()
}

/// One facility's own monthly series.
pub fn facility_series(range: MonthRange, counts: &Counts<Period>) -> Vec<(Month, MonthFigure)> {
    range
        .months()
        .map(|month| {
            let figure = match counts.usable(&Period::of(month, Grain::Month)) {
                Ok((events, exposure)) => Ok((events, exposure, 1)),
                Err(Unusable::NoExposure) => Err("no exposure recorded".to_string()),
                Err(Unusable::Withheld) => {
                    Err("count withheld by small-cell suppression".to_string())
                }
            };
            (month, figure)
        })
        .collect()
}

/// The u-chart of `series` with rates × `multiplier`.
pub fn chart(series: &[(Month, MonthFigure)], multiplier: f64, laney: bool) -> pb::ControlChart {
    let released: Vec<(Month, u64, f64)> = series
        .iter()
        .filter_map(|(m, f)| f.as_ref().ok().map(|(n, e, _)| (*m, *n, *e as f64)))
        .collect();
    let subgroups: Vec<Subgroup> = released
        .iter()
        .map(|(_, count, size)| Subgroup {
            count: *count,
            size: *size,
        })
        .collect();
    let Some(computed) = control_chart::chart(ChartKind::U, &subgroups, laney) else {
        return pb::ControlChart {
            points: series.iter().map(|(m, f)| withheld_point(*m, f)).collect(),
            ..Default::default()
        };
    };
    let mut limits = computed.points.iter();
    let points = series
        .iter()
        .map(|(month, figure)| match figure {
            Ok((events, exposure, contributing)) => {
                let p = limits.next().copied().unwrap_or(control_chart::ChartPoint {
                    value: 0.0,
                    lower: 0.0,
                    upper: 0.0,
                });
                pb::ChartPoint {
                    month: month.to_string(),
                    released: true,
                    withheld_reason: String::new(),
                    events: *events,
                    exposure: *exposure as f64,
                    rate: p.value * multiplier,
                    lower: p.lower * multiplier,
                    upper: p.upper * multiplier,
                    contributing_facilities: *contributing,
                }
            }
            Err(_) => withheld_point(*month, figure),
        })
        .collect();
    let signals = control_chart::signals(&computed)
        .into_iter()
        .map(|s| pb::ChartSignal {
            rule: match s.rule {
                Rule::BeyondLimits => pb::SignalRule::BeyondLimits,
                Rule::Shift => pb::SignalRule::Shift,
                Rule::Trend => pb::SignalRule::Trend,
            } as i32,
            upward: s.direction == Direction::Up,
            first_month: released[s.first].0.to_string(),
            last_month: released[s.last].0.to_string(),
        })
        .collect();
    pb::ControlChart {
        centre: computed.centre * multiplier,
        sigma_z: computed.sigma_z,
        points,
        signals,
    }
}

fn withheld_point(month: Month, figure: &MonthFigure) -> pb::ChartPoint {
    pb::ChartPoint {
        month: month.to_string(),
        withheld_reason: figure.as_ref().err().cloned().unwrap_or_default(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Count;
    use std::collections::BTreeMap;

    #[test]
    fn a_shift_in_the_last_months_signals_and_gaps_are_skipped() {
        let range =
            MonthRange::new("2025-01".parse().unwrap(), "2025-12".parse().unwrap()).unwrap();
        let mut events = BTreeMap::new();
        let mut exposure = BTreeMap::new();
        for (i, month) in range.months().enumerate() {
            let n = if i >= 8 { 60 } else { 20 + (i as u64 % 3) };
            let month = Period::of(month, Grain::Month);
            events.insert(
                month,
                if i == 2 {
                    Count::Withheld
                } else {
                    Count::Known(n)
                },
            );
            exposure.insert(month, 7000);
        }
        let counts = Counts { events, exposure };
        let chart = chart(&facility_series(range, &counts), 1000.0, false);
        assert_eq!(chart.points.len(), 12);
        assert!(!chart.points[2].released);
        assert!(
            chart.signals.iter().any(|s| s.upward
                && s.rule == pb::SignalRule::BeyondLimits as i32
                && s.first_month == "2025-09"),
            "{:?}",
            chart.signals
        );
    }
}
