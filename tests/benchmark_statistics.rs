//! Metric benchmarks end to end over eight real nodes: the pooled rate and distribution equal a
//! brute-force computation from the planted data, the funnel flags exactly the planted outlier
//! above its 99.8% limit, a planted upward shift in one facility's months signals on its own
//! control chart, peers are pseudonymous, a too-small peer group is refused, and the scorecard
//! is for facilities only.

mod common;

use common::*;
use psonet_core::month::Month;
use psonet_core::pb::{self, benchmark_service_client::BenchmarkServiceClient};
use psonet_gateway::metric::peer_points::{
    RATE_SIGNIFICANT_FIGURES, exposure_band, round_significant,
};
use tonic::transport::Channel;

const MONTHS: u32 = 12;
/// Staffed beds and falls per 1,000 patient days of each facility; facility-3 (None) has the
/// planted shift, facility-8 is the planted outlier.
const PLAN: [(u32, Option<f64>); 8] = [
    (220, Some(2.8)),
    (260, Some(3.2)),
    (300, None),
    (340, Some(2.9)),
    (380, Some(3.1)),
    (420, Some(3.0)),
    (460, Some(2.9)),
    (200, Some(7.0)),
];
/// facility-3: 1.9 for the first 8 months, then 5.5.
const SHIFT_FROM: usize = 8;

fn patient_days(beds: u32) -> u64 {
    (f64::from(beds) * 30.4 * 0.8).round() as u64
}

fn rate(facility: usize, month: usize) -> f64 {
    PLAN[facility]
        .1
        .unwrap_or(if month < SHIFT_FROM { 1.9 } else { 5.5 })
}

/// Falls of each facility in each month.
fn planted() -> Vec<Vec<u64>> {
    (0..PLAN.len())
        .map(|f| {
            let days = patient_days(PLAN[f].0) as f64;
            (0..MONTHS as usize)
                .map(|m| (rate(f, m) * days / 1000.0).round() as u64)
                .collect()
        })
        .collect()
}

async fn load(net: &Network, months: &[Month], falls: &[Vec<u64>]) {
    for (f, node) in net.nodes.iter().enumerate() {
        let mut events = Vec::new();
        let mut exposure = Vec::new();
        for (m, month) in months.iter().enumerate() {
            let month = month.to_string();
            for i in 0..falls[f][m] {
                let key = format!("f{f}-{month}-{i}");
                events.push(event(
                    &key,
                    &month,
                    pb::EventCategory::Fall,
                    pb::HarmLevel::NoHarm,
                ));
            }
            exposure.push(pb::ExposureRecord {
                month: month.clone(),
                unit_type: pb::UnitType::Medical as i32,
                denominator: pb::DenominatorType::PatientDays as i32,
                value: patient_days(PLAN[f].0),
            });
        }
        let n = events.len() as u64;
        let summary = submit_all(&mut node.reporting().unwrap(), events).await;
        assert_eq!((summary.accepted, summary.rejected), (n, 0));
        node.reporting()
            .unwrap()
            .record_exposure(pb::RecordExposureRequest { records: exposure })
            .await
            .expect("record exposure");
    }
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

fn as_facility(net: &Network, i: usize) -> BenchmarkServiceClient<Channel> {
    BenchmarkServiceClient::new(channel(
        &net.gateway_addr().unwrap(),
        &net.nodes[i].client_identity,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnel_flags_the_outlier_and_a_shift_signals() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(PLAN.len()).start().await.unwrap();
    net.start_gateway(|config| {
        config.fanout.node_deadline_ms = 5_000;
        for (i, f) in config.facilities.iter_mut().enumerate() {
            f.peer.beds = Some(PLAN[i].0);
            f.peer.urbanicity = Some(if i >= 6 { "rural" } else { "urban" }.into());
        }
    })
    .await
    .unwrap();
    let last = Month::current();
    let months: Vec<Month> = (0..MONTHS).rev().map(|back| last.minus(back)).collect();
    let falls = planted();
    load(&net, &months, &falls).await;
    let (from, to) = (months[0].to_string(), last.to_string());

    // The catalogue lists the built-in metrics.
    let mut partner = net.benchmark_client().unwrap();
    let catalogue = partner
        .list_metrics(pb::ListMetricsRequest {})
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = catalogue.metrics.iter().map(|m| m.id.as_str()).collect();
    assert!(
        ids.contains(&"falls") && ids.contains(&"medication-harm"),
        "{ids:?}"
    );

    // Network benchmark as a partner: brute force from the planted data.
    let request = pb::NetworkBenchmarkRequest {
        month_from: from.clone(),
        month_to: to.clone(),
        metric: "falls".into(),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let bench = partner
        .network_benchmark(request.clone())
        .await
        .unwrap()
        .into_inner()
        .metric
        .expect("metric benchmark");
    println!(
        "NetworkBenchmark(falls, 12 months) over 8 nodes: {:?}",
        started.elapsed()
    );
    assert!(bench.released, "{}", bench.withheld_reason);
    let totals: Vec<(u64, f64)> = (0..PLAN.len())
        .map(|f| {
            let days = patient_days(PLAN[f].0) as f64 * f64::from(MONTHS);
            (falls[f].iter().sum(), days)
        })
        .collect();
    let events: u64 = totals.iter().map(|t| t.0).sum();
    let days: f64 = totals.iter().map(|t| t.1).sum();
    assert_eq!((bench.events, bench.contributing_facilities), (events, 8));
    close(
        bench.pooled_rate,
        events as f64 / days * 1000.0,
        "pooled rate",
    );
    let ci = bench.pooled_interval_95.unwrap();
    assert!(ci.lower < bench.pooled_rate && bench.pooled_rate < ci.upper);
    let mut rates: Vec<f64> = totals.iter().map(|(e, d)| *e as f64 / d * 1000.0).collect();
    rates.sort_by(f64::total_cmp);
    // Quantiles are shown to two significant figures, as peers' rates are (peer_points).
    close(
        bench.distribution.unwrap().p50,
        round_significant((rates[3] + rates[4]) / 2.0, RATE_SIGNIFICANT_FIGURES),
        "median",
    );

    // Exactly the planted outlier is above its 99.8% limit, and nobody is named.
    let above: Vec<&pb::FunnelPoint> = bench
        .funnel
        .iter()
        .filter(|p| p.position == pb::FunnelPosition::Above998 as i32)
        .collect();
    assert_eq!(above.len(), 1, "{:#?}", bench.funnel);
    // Shown banded, without its count (peer_points): found by its band, not its exact days.
    assert_eq!(above[0].exposure, exposure_band(totals[7].1));
    assert!(
        bench.funnel.iter().all(|p| p.events == 0),
        "{:#?}",
        bench.funnel
    );
    assert!(
        bench
            .funnel
            .iter()
            .all(|p| p.facility.starts_with("peer-") && !p.is_caller)
    );
    assert!(!bench.funnel_curve.is_empty());

    // A peer group of two rural facilities is refused by the gateway before any node is asked:
    // a frozen urban node does not hold the refusal for the 5 s node deadline.
    net.nodes[0].signal("STOP").unwrap();
    let asked = std::time::Instant::now();
    let rural = partner
        .network_benchmark(pb::NetworkBenchmarkRequest {
            peer_group: Some(pb::PeerGroup {
                urbanicity: vec![pb::Urbanicity::Rural as i32],
                ..Default::default()
            }),
            ..request.clone()
        })
        .await;
    let took = asked.elapsed();
    net.nodes[0].signal("CONT").unwrap();
    let refused = rural.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("at least 5"),
        "{}",
        refused.message()
    );
    assert!(
        took < std::time::Duration::from_millis(2_500),
        "a node outside the peer group was waited for: {took:?}"
    );

    // The network trend: one released point per month whose centre is the pooled rate.
    let trend = partner
        .trend(pb::TrendRequest {
            metric: "falls".into(),
            month_from: from.clone(),
            month_to: to.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .chart
        .unwrap();
    assert_eq!(trend.points.len(), MONTHS as usize);
    for (m, point) in trend.points.iter().enumerate() {
        assert!(point.released, "{point:?}");
        assert_eq!(point.events, falls.iter().map(|f| f[m]).sum::<u64>());
    }
    close(trend.centre, bench.pooled_rate, "trend centre");

    // facility-3's own chart signals upward in the shifted months.
    let request = pb::FacilityScorecardRequest {
        metric: "falls".into(),
        month_from: from.clone(),
        month_to: to.clone(),
        ..Default::default()
    };
    let shifted = as_facility(&net, 2)
        .facility_scorecard(request.clone())
        .await
        .unwrap()
        .into_inner();
    let shift_start = months[SHIFT_FROM].to_string();
    let signals = &shifted.trend.as_ref().unwrap().signals;
    assert!(
        signals
            .iter()
            .any(|s| s.upward && s.first_month >= shift_start),
        "{signals:?}"
    );
    assert!(
        shifted
            .flags
            .iter()
            .any(|f| f.starts_with("trend signal: upward")),
        "{:?}",
        shifted.flags
    );

    // facility-8 sees itself by name, flagged, ranked last, with O/E.
    let started = std::time::Instant::now();
    let outlier = as_facility(&net, 7)
        .facility_scorecard(request.clone())
        .await
        .unwrap()
        .into_inner();
    println!(
        "FacilityScorecard (3 fan-outs) over 8 nodes: {:?}",
        started.elapsed()
    );
    assert_eq!(outlier.facility_id, "facility-8");
    assert_eq!(outlier.funnel_position, pb::FunnelPosition::Above998 as i32);
    close(
        outlier.percentile_rank,
        100.0 * 0.5 / 8.0,
        "percentile rank",
    );
    let peers = outlier.peers.as_ref().unwrap();
    let named: Vec<&str> = peers
        .funnel
        .iter()
        .filter(|p| p.is_caller)
        .map(|p| p.facility.as_str())
        .collect();
    assert_eq!(named, ["facility-8"]);
    assert!(
        peers
            .funnel
            .iter()
            .filter(|p| !p.is_caller)
            .all(|p| p.facility.starts_with("peer-"))
    );
    let oe = outlier.observed_expected.as_ref().unwrap();
    close(oe.ratio, outlier.rate / bench.pooled_rate, "O/E");
    assert!(oe.p_value < 1e-6);
    assert!(
        outlier.flags.iter().any(|f| f.contains("99.8%")),
        "{:?}",
        outlier.flags
    );

    cli_plots_and_exports(&net, &from, &to);

    // Scorecards are for facilities; metrics must exist.
    let denied = partner
        .facility_scorecard(request.clone())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let unknown = partner
        .trend(pb::TrendRequest {
            metric: "bed-days".into(),
            month_from: from,
            month_to: to,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument);
    let details = tonic_types::StatusExt::get_details_bad_request(&unknown).unwrap();
    assert_eq!(details.field_violations[0].field, "metric");
}

/// Runs `psonet benchmark` as the README shows, returning its standard output.
fn cli(net: &Network, identity: &std::path::Path, args: &[&str]) -> String {
    let gateway = net.gateway_addr().unwrap().to_string();
    let identity = identity.to_str().unwrap();
    let mut command = vec!["benchmark", "--gateway", &gateway, "--identity", identity];
    command.extend(args);
    let output = psonet(&command);
    assert!(
        output.status.success(),
        "psonet benchmark {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The funnel plot, control chart, CSV and scorecard table from the command line.
fn cli_plots_and_exports(net: &Network, from: &str, to: &str) {
    let partner = &net.layout.partner_identity;
    let range = ["--from", from, "--to", to, "--metric", "falls"];
    let funnel = net.dir().join("funnel.svg");
    let csv = cli(
        net,
        partner,
        &[
            &range[..],
            &["--format", "csv", "--plot", funnel.to_str().unwrap()],
        ]
        .concat(),
    );
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 1 + PLAN.len(), "{csv}");
    assert_eq!(
        rows.iter()
            .filter(|r| r.ends_with("FUNNEL_POSITION_ABOVE_998"))
            .count(),
        1
    );
    let svg = std::fs::read_to_string(&funnel).expect("funnel.svg");
    for text in [
        "<svg",
        "Funnel plot: Falls",
        "patient days",
        "per 1,000 patient days",
        "99.8% limits",
        "95% limits",
        "target: network pooled rate",
        "peer-",
    ] {
        assert!(svg.contains(text), "funnel.svg lacks {text:?}");
    }
    let chart = net.dir().join("chart.svg");
    let table = cli(
        net,
        partner,
        &[&range[..], &["--trend", "--plot", chart.to_str().unwrap()]].concat(),
    );
    assert!(
        table.contains("network u-chart") && table.contains("UCL"),
        "{table}"
    );
    let svg = std::fs::read_to_string(&chart).expect("chart.svg");
    for text in [
        "<svg",
        "Falls: network u-chart",
        "month",
        "3-sigma limits",
        "centre",
        to,
    ] {
        assert!(svg.contains(text), "chart.svg lacks {text:?}");
    }
    let card = cli(
        net,
        &net.nodes[7].client_identity,
        &[&range[..], &["--scorecard"]].concat(),
    );
    assert!(
        card.starts_with("facility-8: Falls")
            && card.contains("flag: above the 99.8% funnel limit"),
        "{card}"
    );
    let json = cli(net, partner, &["--list-metrics", "--format", "json"]);
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(
        parsed["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "falls")
    );
}
