//! The network's change over a facility's own windows, as the comparison for its before/after:
//! the gateway's monthly network series of the metric (`BenchmarkService.Trend`, released
//! months only) summed over the same before and after months, and the facility's rate ratio
//! divided by the network's (ratio of rate ratios). Computed here, on the facility's side: the
//! facility's own counts never go to the gateway for it.

use anyhow::{Context, Result, bail};
use psonet_core::month::Month;
use psonet_core::pb::{self, benchmark_service_client::BenchmarkServiceClient};
use psonet_core::stats::pooled_rate::CountExposure;
use psonet_core::stats::rate_ratio::{BeforeAfter, RatioOfRateRatios, ratio_of_rate_ratios};

/// The comparison of a facility's before/after with the network's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkComparison {
    /// The network's events and exposure in the same windows.
    pub network: BeforeAfter,
    /// The facility's rate ratio over the network's, with its 95% interval.
    pub ratio: RatioOfRateRatios,
}

fn counts(events: u64, exposure: f64) -> CountExposure {
    CountExposure { events, exposure }
}

/// Sums the released network months of `chart` into the windows around `start`; Err when a
/// month the windows need is withheld.
pub fn network_windows(chart: &pb::ControlChart, start: Month, window: u32) -> Result<BeforeAfter> {
    let mut sums = BeforeAfter {
        before: counts(0, 0.0),
        after: counts(0, 0.0),
    };
    for p in &chart.points {
        let month: Month = p
            .month
            .parse()
            .context("the gateway sent a month that is not one")?;
        let t = i64::from(month.index()) - i64::from(start.index());
        let side = match t {
            t if t < 0 && t >= -i64::from(window) => &mut sums.before,
            t if t > 0 && t <= i64::from(window) => &mut sums.after,
            _ => continue,
        };
        if !p.released {
            bail!(
                "the network's {} is withheld ({}), so there is no comparison",
                p.month,
                p.withheld_reason
            );
        }
        side.events += p.events;
        side.exposure += p.exposure;
    }
    Ok(sums)
}

/// Asks the gateway for the network series of `metric` around the effect's windows and compares.
pub async fn compare(
    gateway: &mut BenchmarkServiceClient<tonic::transport::Channel>,
    effect: &pb::InterventionEffectResponse,
) -> Result<NetworkComparison> {
    let intervention = effect.intervention.clone().unwrap_or_default();
    let metric = effect.metric.clone().unwrap_or_default();
    let start: Month = intervention.start_month.parse().context("start month")?;
    let window = effect.window_months;
    let to = Month::from_index(start.index() + window)
        .unwrap_or(start)
        .min(Month::current());
    let trend = gateway
        .trend(pb::TrendRequest {
            metric: metric.id.clone(),
            month_from: start.minus(window).to_string(),
            month_to: to.to_string(),
            ..Default::default()
        })
        .await
        .context("asking the gateway for the network's trend")?
        .into_inner();
    let network = network_windows(&trend.chart.unwrap_or_default(), start, window)?;
    let own = effect.counts.unwrap_or_default();
    let own = BeforeAfter {
        before: counts(own.before_events, own.before_exposure as f64),
        after: counts(own.after_events, own.after_exposure as f64),
    };
    let ratio = ratio_of_rate_ratios(own, network, 0.95)
        .context("no ratio of rate ratios: a window has no exposure or no events")?;
    Ok(NetworkComparison { network, ratio })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(month: &str, events: u64, released: bool) -> pb::ChartPoint {
        pb::ChartPoint {
            month: month.into(),
            released,
            events,
            exposure: 1000.0,
            ..Default::default()
        }
    }

    #[test]
    fn windows_skip_the_start_month_and_refuse_a_withheld_one() {
        let chart = pb::ControlChart {
            points: vec![
                point("2024-11", 5, true),
                point("2024-12", 10, true),
                point("2025-01", 99, false),
                point("2025-02", 7, true),
                point("2025-04", 1, true),
            ],
            ..Default::default()
        };
        let start = "2025-01".parse().unwrap();
        let sums = network_windows(&chart, start, 2).unwrap();
        assert_eq!((sums.before.events, sums.after.events), (15, 7));
        assert_eq!(sums.before.exposure, 2000.0);
        let mut holed = chart.clone();
        holed.points[1].released = false;
        assert!(network_windows(&holed, start, 2).is_err());
    }
}
