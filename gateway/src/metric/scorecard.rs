//! A facility's scorecard: its own figures against its peers, for itself only.
//!
//! Built from three fetches of the same metric: whole-range totals (rate, percentile rank,
//! funnel), whole-range counts by unit type (expected events from the peers' unit-type rates,
//! so a facility with more intensive-care days is not judged against medical wards), and months
//! (its own u-chart). The caller's figures are its own; everything about peers is a network
//! figure under the release rule.

use crate::answer::Count;
use crate::metric::benchmark::{BenchmarkRules, Centre, benchmark, exact_rates, interval_to_wire};
use crate::metric::catalogue::denominator_label;
use crate::metric::fetch::{FacilityCounts, Fetched, network_sum};
use crate::metric::trend;
use crate::pseudonym::Pseudonyms;
use psonet_core::disclosure::primary::SmallCellRule;
use psonet_core::event::UnitType;
use psonet_core::month::MonthRange;
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb;
use psonet_core::query::Period;
use psonet_core::stats::observed_expected::{self, Stratum};
use psonet_core::stats::percentile::{Better, percentile_rank};
use psonet_core::stats::poisson_interval::garwood;
use tonic::Status;

/// What the scorecard is computed from.
pub struct ScorecardInputs {
    /// Whole-range totals per facility in the peer group (the caller included).
    pub totals: Fetched<()>,
    /// Whole-range counts by unit type.
    pub strata: Fetched<UnitType>,
    /// Monthly counts.
    pub monthly: Fetched<Period>,
}

/// The caller's own answer; UNAVAILABLE when its node did not answer usably, PERMISSION_DENIED
/// when the registry does not list it.
fn own<'a, K: Ord>(fetched: &'a Fetched<K>, caller: &str) -> Result<&'a FacilityCounts<K>, Status> {
    if let Some(mine) = fetched.facilities.iter().find(|f| f.id == caller) {
        return Ok(mine);
    }
    match fetched.coverage.iter().find(|c| c.facility_id == caller) {
        Some(row) => Err(Status::unavailable(format!(
            "your node gave no usable answer: {}",
            row.detail
        ))),
        None => Err(Status::permission_denied(format!(
            "facility {caller} is not in this gateway's registry"
        ))),
    }
}

/// The caller's scorecard.
pub fn scorecard(
    metric: &pb::Metric,
    range: MonthRange,
    caller: &str,
    inputs: &ScorecardInputs,
    rule: &NetworkReleaseRule,
    small_cells: &SmallCellRule,
) -> Result<pb::FacilityScorecardResponse, Status> {
    let mine = own(&inputs.totals, caller)?;
    let (count, exposure) = mine.counts.total();
    let events = match count {
        Count::Known(n) if exposure > 0 => n,
        Count::Known(_) => {
            return Err(Status::failed_precondition(format!(
                "your node recorded no {} exposure in {}..{}",
                denominator_label(metric),
                range.from(),
                range.to()
            )));
        }
        Count::Withheld => {
            return Err(Status::failed_precondition(
                "your node withholds your count (1 to k-1 events in a calendar year of the range); \
                 ask for a range of whole years or a metric with more events",
            ));
        }
    };
    let k = metric.multiplier;
    let names = Pseudonyms::new(
        inputs.totals.facilities.iter().map(|f| f.id.as_str()),
        Some(caller),
    );
    let rules = BenchmarkRules {
        network: rule,
        small_cells,
        names: &names,
    };
    let peers = benchmark(
        metric,
        range,
        Centre::Funnel,
        &inputs.totals.facilities,
        &rules,
        Some(caller),
    );
    let exposure = exposure as f64;
    let rate = events as f64 / exposure * k;
    let mut card = pb::FacilityScorecardResponse {
        facility_id: caller.to_string(),
        events,
        exposure,
        rate,
        rate_interval_95: Some(interval_to_wire(garwood(events, 0.95).scaled(k / exposure))),
        ..Default::default()
    };
    if peers.released {
        // On exact rates: the funnel shows the peers banded (see `peer_points`).
        let rates = exact_rates(metric, &inputs.totals.facilities);
        let better = if metric.higher_is_better {
            Better::Higher
        } else {
            Better::Lower
        };
        card.percentile_rank = percentile_rank(rate, &rates, better).unwrap_or(0.0);
        card.funnel_position = peers
            .funnel
            .iter()
            .find(|p| p.is_caller)
            .map_or(0, |p| p.position);
        card.observed_expected =
            observed_expected(events, caller, &inputs.strata, peers.pooled_rate / k, rule);
    }
    let own_months = own(&inputs.monthly, caller)?;
    card.trend = Some(trend::chart(
        &trend::facility_series(range, &own_months.counts),
        k,
        false,
    ));
    card.flags = flags(&card, &peers, metric);
    card.peers = Some(peers);
    Ok(card)
}

/// O/E against the peers' unit-type rates. A unit type's peer rate is used only when the
/// release rule allows it (enough facilities with a known count there, none dominant); other
/// unit types fall back to the peers' overall pooled rate, so every own event has an
/// expectation and no single peer's unit-type rate can be read back from E.
fn observed_expected(
    observed: u64,
    caller: &str,
    strata: &Fetched<UnitType>,
    pooled: f64,
    rule: &NetworkReleaseRule,
) -> Option<pb::ObservedExpected> {
    let stratum_rate = |unit: UnitType| {
        let sum = network_sum(&strata.facilities, &unit);
        sum.release(rule).ok()?;
        Some(sum.events as f64 / sum.exposure as f64)
    };
    let mine = strata.facilities.iter().find(|f| f.id == caller)?;
    let own_strata: Vec<Stratum> = mine
        .counts
        .keys()
        .into_iter()
        .map(|unit| Stratum {
            peer_rate: stratum_rate(unit).unwrap_or(pooled),
            exposure: mine.counts.exposure_of(&unit) as f64,
        })
        .collect();
    let compared = observed_expected::compare(observed, observed_expected::expected(&own_strata))?;
    Some(pb::ObservedExpected {
        observed: compared.observed,
        expected: compared.expected,
        ratio: compared.ratio,
        interval_95: Some(interval_to_wire(compared.interval)),
        p_value: compared.p_value,
    })
}

/// Plain-language findings.
fn flags(
    card: &pb::FacilityScorecardResponse,
    peers: &pb::MetricBenchmark,
    metric: &pb::Metric,
) -> Vec<String> {
    let mut out = Vec::new();
    if !peers.released {
        out.push(format!("no peer comparison: {}", peers.withheld_reason));
    }
    use pb::FunnelPosition as P;
    let better_high = metric.higher_is_better;
    match P::try_from(card.funnel_position) {
        Ok(P::Above998) => out.push(format!(
            "above the 99.8% funnel limit ({})",
            if better_high {
                "better than peers"
            } else {
                "alarm"
            }
        )),
        Ok(P::Above95) => out.push("above the 95% funnel limit (alert)".into()),
        Ok(P::Below998) => out.push("below the 99.8% funnel limit".into()),
        Ok(P::Below95) => out.push("below the 95% funnel limit".into()),
        _ => {}
    }
    if let Some(oe) = &card.observed_expected
        && oe.p_value < 0.05
    {
        out.push(format!(
            "observed/expected {:.2} differs from 1 (mid-P p = {:.3})",
            oe.ratio, oe.p_value
        ));
    }
    for s in card.trend.iter().flat_map(|t| &t.signals) {
        let rule = pb::SignalRule::try_from(s.rule)
            .map(|r| {
                r.as_str_name()
                    .trim_start_matches("SIGNAL_RULE_")
                    .to_lowercase()
            })
            .unwrap_or_default()
            .replace('_', " ");
        let way = if s.upward { "upward" } else { "downward" };
        out.push(format!(
            "trend signal: {way} {rule}, {} to {}",
            s.first_month, s.last_month
        ));
    }
    out
}
