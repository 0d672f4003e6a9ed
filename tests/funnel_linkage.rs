//! Funnel points cannot be followed from one request to the next (issue 12, item 10).
//!
//! Pseudonyms are drawn afresh for every request, but an exact exposure is the same for every
//! metric with the same denominator: with exact patient days a partner matches the points of
//! two answers (and names them from a bed-size table). Five nodes, two of them close in size
//! and three close in size, are asked two metrics as a partner: every other facility's point
//! shows a 1-2-5 exposure band, a two-figure rate and no count, so each exposure shown is
//! shared by several points; and a facility's own scorecard still shows its exact figures.

mod common;

use common::*;
use psonet::synth::SynthOptions;
use psonet_core::month::Month;
use psonet_core::pb::{self, benchmark_service_client::BenchmarkServiceClient};
use std::collections::BTreeMap;

/// The README's rule: an exposure rounded on a log scale to the nearest of 1, 2 or 5 × 10ⁿ.
fn exposure_band(exposure: f64) -> f64 {
    let decade = 10f64.powf(exposure.log10().floor());
    let m = exposure / decade;
    let step = [(2f64.sqrt(), 1.0), (10f64.sqrt(), 2.0), (50f64.sqrt(), 5.0)]
        .into_iter()
        .find(|(edge, _)| m < *edge)
        .map_or(10.0, |(_, step)| step);
    step * decade
}

/// Whether `rate` has at most two significant figures.
fn two_figures(rate: f64) -> bool {
    let scale = 10f64.powi(1 - rate.abs().log10().floor() as i32);
    let scaled = rate * scale;
    (scaled - scaled.round()).abs() < 1e-6
}

/// Staffed beds of each facility: two bands' worth of hospitals.
const BEDS: [u32; 5] = [200, 210, 220, 400, 420];

fn request(metric: &str, from: Month, to: Month) -> pb::NetworkBenchmarkRequest {
    pb::NetworkBenchmarkRequest {
        month_from: from.to_string(),
        month_to: to.to_string(),
        metric: metric.into(),
        ..Default::default()
    }
}

/// How many points show each exposure.
fn exposures(bench: &pb::MetricBenchmark) -> BTreeMap<u64, usize> {
    let mut shown = BTreeMap::new();
    for p in &bench.funnel {
        *shown.entry(p.exposure as u64).or_default() += 1;
    }
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_funnel_points_are_banded_and_the_callers_own_are_exact() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(5).start().await.unwrap();
    let last = Month::current().minus(1);
    let first = Month::new(last.year(), 1).unwrap();
    net.load_synthetic(|i, _| SynthOptions {
        events: 2_500,
        months: last.index() - first.index() + 1,
        last_month: last,
        key_prefix: format!("fl{i}"),
        beds: BEDS[i],
        seed: 40 + i as u64,
    })
    .await
    .unwrap();
    net.start_gateway(|_| {}).await.unwrap();
    let mut partner = net.benchmark_client().unwrap();

    let mut answers = Vec::new();
    for metric in ["falls", "pressure-injuries"] {
        let bench = partner
            .network_benchmark(request(metric, first, last))
            .await
            .unwrap()
            .into_inner()
            .metric
            .unwrap();
        assert!(bench.released, "{metric}: {}", bench.withheld_reason);
        assert_eq!(bench.funnel.len(), 5, "{metric}: {:#?}", bench.funnel);
        for p in &bench.funnel {
            assert!(!p.is_caller);
            assert_eq!(p.events, 0, "{metric}: a peer's count is shown: {p:?}");
            assert_eq!(p.exposure, exposure_band(p.exposure), "{metric}: {p:?}");
            assert!(two_figures(p.rate), "{metric}: {p:?}");
        }
        // The limit curve starts at half the smallest shown exposure, not an exact one.
        let start = bench.funnel_curve.first().unwrap().exposure;
        let smallest = bench.funnel[0].exposure;
        assert!(
            (start - smallest * 0.5).abs() < 1e-6 * smallest,
            "{start} vs {smallest}"
        );
        println!("{metric}: exposures shown {:?}", exposures(&bench));
        answers.push(bench);
    }
    // The same facilities, the same exposures: no exposure shown singles out one point, so
    // no point of one answer can be matched to a point of the other by it.
    assert_eq!(exposures(&answers[0]), exposures(&answers[1]));
    assert!(
        exposures(&answers[0]).values().all(|&n| n >= 2),
        "{:?}",
        exposures(&answers[0])
    );

    // A facility's own scorecard keeps its exact figures, in the card and on its own point.
    let mut own = BenchmarkServiceClient::new(channel(
        &net.gateway_addr().unwrap(),
        &net.nodes[0].client_identity,
    ));
    let card = own
        .facility_scorecard(pb::FacilityScorecardRequest {
            metric: "falls".into(),
            month_from: first.to_string(),
            month_to: last.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let peers = card.peers.as_ref().unwrap();
    let mine = peers.funnel.iter().find(|p| p.is_caller).unwrap();
    assert_eq!(mine.facility, "facility-1");
    assert_eq!((mine.events, mine.exposure), (card.events, card.exposure));
    assert!(card.events > 0);
    assert_ne!(
        card.exposure,
        exposure_band(card.exposure),
        "own exposure banded"
    );
    assert!((mine.rate - card.rate).abs() < 1e-9 * card.rate);
    for p in peers.funnel.iter().filter(|p| !p.is_caller) {
        assert_eq!((p.events, p.exposure), (0, exposure_band(p.exposure)));
    }
}
