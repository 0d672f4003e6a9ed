//! Exact network figures (issue 11), tried as a new user would: a six-facility network of mixed
//! sizes (80 to 600 beds) from `psonet pki init`, each node loaded with a year of `psonet synth`
//! data through `psonet import`, every server a real process on mTLS.
//!
//! Against a brute-force count of the imported files (differential privacy off):
//! - every released monthly category row equals the truth exactly — events, patient days, rate
//!   and contributing facilities — and every withheld row is withheld for the reason it gives;
//! - the category table releases at least 99% of the true events of the last six months;
//! - the network trends of falls with injury and of harmful medication events release every
//!   month, each equal to the truth.
//!
//! The same network is asked once more with the gateway summing node-suppressed answers (the
//! path before secure aggregation), and both figures are printed.

mod common;

use common::*;
use psonet::ndjson::{Codec, Line};
use psonet_core::month::Month;
use psonet_core::pb::{self, benchmark_service_client::BenchmarkServiceClient};
use std::collections::{BTreeMap, BTreeSet};
use tonic::transport::Channel;

/// Facilities, staffed beds and reports per year: about seven reports per bed-year.
const FACILITIES: [(&str, u32, usize); 6] = [
    ("critical-access", 80, 560),
    ("community", 150, 1_050),
    ("st-marys", 250, 1_750),
    ("county-general", 350, 2_450),
    ("university", 450, 3_150),
    ("regional-medical", 600, 4_200),
];
const K: u64 = 11;
const MIN_FACILITIES: u32 = 5;

/// What the imported files hold, counted by brute force.
#[derive(Default)]
struct Truth {
    /// (month, category) -> (events, facilities with at least one).
    rows: BTreeMap<(String, i32), (u64, BTreeSet<usize>)>,
    /// Patient days per month, all facilities and unit types.
    patient_days: BTreeMap<String, u64>,
    /// Every event, with its facility.
    events: Vec<(usize, pb::Event)>,
}

impl Truth {
    fn add_file(&mut self, facility: usize, text: &str) {
        let codec = Codec::new().unwrap();
        for line in text.lines() {
            match codec.parse_json(line).unwrap() {
                Line::Event(event) => {
                    for category in &event.categories {
                        let row = self
                            .rows
                            .entry((event.discovery_month.clone(), *category))
                            .or_default();
                        row.0 += 1;
                        row.1.insert(facility);
                    }
                    self.events.push((facility, *event));
                }
                Line::Exposure(record) => {
                    if record.denominator == pb::DenominatorType::PatientDays as i32 {
                        *self.patient_days.entry(record.month).or_default() += record.value;
                    }
                }
            }
        }
    }

    /// Events of `month` matching a metric's numerator, and the facilities they come from.
    fn metric_month(&self, numerator: &pb::AggregateFilter, month: &str) -> (u64, usize) {
        let matching: Vec<usize> = self
            .events
            .iter()
            .filter(|(_, e)| e.discovery_month == month && matches(numerator, e))
            .map(|(f, _)| *f)
            .collect();
        let facilities: BTreeSet<usize> = matching.iter().copied().collect();
        (matching.len() as u64, facilities.len())
    }
}

/// Whether `event` is counted by `filter` (the fields the built-in metrics use).
fn matches(filter: &pb::AggregateFilter, event: &pb::Event) -> bool {
    let any = |listed: &[i32], value: i32| listed.is_empty() || listed.contains(&value);
    let ncc_merp = event.medication.as_ref().map_or(0, |m| m.ncc_merp);
    assert!(
        filter.age_bands.is_empty()
            && filter.sexes.is_empty()
            && filter.contributing_factors.is_empty()
            && filter.preventabilities.is_empty(),
        "a filter this brute force does not read: {filter:?}"
    );
    (filter.categories.is_empty()
        || filter
            .categories
            .iter()
            .any(|c| event.categories.contains(c)))
        && any(&filter.event_types, event.event_type)
        && any(&filter.harms, event.harm)
        && any(&filter.unit_types, event.unit_type)
        && any(&filter.ncc_merp, ncc_merp)
}

/// Writes `psonet synth` output for facility `i` and imports it with `psonet import`; returns
/// the file's text.
fn synth_and_import(net: &Network, i: usize) -> String {
    let (_, beds, events) = FACILITIES[i];
    let synth = psonet(&[
        "synth",
        "--events",
        &events.to_string(),
        "--months",
        "12",
        "--beds",
        &beds.to_string(),
        "--seed",
        &(i + 1).to_string(),
        "--key-prefix",
        FACILITIES[i].0,
    ]);
    assert!(synth.status.success());
    let text = String::from_utf8(synth.stdout).unwrap();
    let file = net.dir().join(format!("{}.ndjson", FACILITIES[i].0));
    std::fs::write(&file, &text).unwrap();
    let node = &net.nodes[i];
    let import = psonet(&[
        "import",
        "--node",
        &node.local().to_string(),
        "--identity",
        node.client_identity.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&import.stdout).to_string();
    assert!(import.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "events: {events} accepted, 0 duplicates, 0 rejected"
        )),
        "{said}"
    );
    text
}

/// The category table of `from..=to`, all categories.
async fn category_table(
    client: &mut BenchmarkServiceClient<Channel>,
    from: Month,
    to: Month,
) -> pb::NetworkBenchmarkResponse {
    client
        .network_benchmark(pb::NetworkBenchmarkRequest {
            month_from: from.to_string(),
            month_to: to.to_string(),
            ..Default::default()
        })
        .await
        .expect("the category table")
        .into_inner()
}

/// Events the released rows hold, of `true_events`.
fn released(response: &pb::NetworkBenchmarkResponse) -> u64 {
    response
        .rows
        .iter()
        .filter(|r| !r.withheld)
        .map(|r| r.events)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_six_facility_network_of_mixed_sizes_gets_exact_figures() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = Network::builder(NETWORK)
        .facility_ids(FACILITIES.iter().map(|(id, ..)| *id))
        .servers(Servers::Processes(launcher()))
        .start()
        .await
        .unwrap();
    let mut truth = Truth::default();
    for i in 0..FACILITIES.len() {
        let text = synth_and_import(&net, i);
        truth.add_file(i, &text);
    }
    let last = Month::current();
    let (from, to) = (last.minus(5), last);
    let months: Vec<String> = (0..6).rev().map(|b| last.minus(b).to_string()).collect();
    let true_events: u64 = truth
        .rows
        .iter()
        .filter(|((m, _), _)| months.contains(m))
        .map(|(_, (n, _))| n)
        .sum();

    // Before: the gateway sums what each node releases after suppressing its own small cells.
    net.start_gateway(|c| {
        c.fanout.node_deadline_ms = 10_000;
        node_suppressed_sums(c);
    })
    .await
    .unwrap();
    let before = category_table(&mut net.benchmark_client().unwrap(), from, to).await;
    assert!(!before.exact && all_ok(&before.coverage));
    let before = released(&before);

    // After: secure aggregation, disclosure control on the exact network sum.
    net.start_gateway(|c| c.fanout.node_deadline_ms = 10_000)
        .await
        .unwrap();
    let mut client = net.benchmark_client().unwrap();
    let table = category_table(&mut client, from, to).await;
    assert!(table.exact);
    assert!(all_ok(&table.coverage), "{:?}", table.coverage);
    let after = released(&table);
    let percent = |n: u64| n as f64 * 100.0 / true_events as f64;
    println!(
        "category table, {from} to {to}, six facilities of 80 to 600 beds: {} true events; \
         node-suppressed sums released {before} ({:.1}%); exact sums release {after} ({:.1}%)",
        true_events,
        percent(before),
        percent(after)
    );

    // Every released row is the truth; every withheld row is withheld for its stated reason.
    let mut shown = BTreeSet::new();
    for row in &table.rows {
        let key = (row.month.clone(), row.category);
        shown.insert(key.clone());
        let (events, facilities) = truth.rows.get(&key).cloned().unwrap_or_default();
        let contributing = facilities.len() as u32;
        if row.withheld {
            match row.withheld_reason.as_str() {
                "fewer than 11 events" => assert!((1..K).contains(&events), "{row:?}"),
                "fewer than 5 facilities contributed" => {
                    assert!(events >= K && contributing < MIN_FACILITIES, "{row:?}")
                }
                reason => {
                    assert!(reason.contains("cannot be recovered"), "{row:?}");
                    assert!(events >= K && contributing >= MIN_FACILITIES, "{row:?}");
                }
            }
            assert_eq!((row.events, row.patient_days), (0, 0));
            continue;
        }
        let days = truth.patient_days[&row.month];
        assert_eq!(
            (row.events, row.contributing_facilities, row.patient_days),
            (events, contributing, days),
            "row {} {}",
            row.month,
            row.category
        );
        let rate = row.rate_per_1000_patient_days.unwrap();
        assert!((rate - events as f64 * 1000.0 / days as f64).abs() < 1e-9);
        assert_eq!(row.suppressed_cells, 0);
    }
    // A row not shown has no events.
    for ((month, category), (events, _)) in &truth.rows {
        if months.contains(month) {
            assert!(
                shown.contains(&(month.clone(), *category)) || *events == 0,
                "{month} {category}: {events} events missing"
            );
        }
    }
    assert!(
        after * 100 >= true_events * 99,
        "exact sums released {after} of {true_events} events"
    );

    // The network trends of harmful events show every month, each the truth.
    let catalogue = client
        .list_metrics(pb::ListMetricsRequest {})
        .await
        .unwrap()
        .into_inner();
    for id in ["falls-with-injury", "medication-harm"] {
        let metric = catalogue.metrics.iter().find(|m| m.id == id).unwrap();
        let numerator = metric.numerator.clone().unwrap_or_default();
        let trend = client
            .trend(pb::TrendRequest {
                metric: id.into(),
                month_from: last.minus(11).to_string(),
                month_to: last.to_string(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            trend.exact && all_ok(&trend.coverage),
            "{:?}",
            trend.coverage
        );
        let points = trend.chart.unwrap().points;
        let shown = points.iter().filter(|p| p.released).count();
        println!(
            "{id}: network trend released {shown} of {} months",
            points.len()
        );
        for point in &points {
            assert!(
                point.released,
                "{id} {}: {}",
                point.month, point.withheld_reason
            );
            let (events, facilities) = truth.metric_month(&numerator, &point.month);
            let days = truth.patient_days[&point.month];
            assert_eq!(
                (point.events, point.contributing_facilities, point.exposure),
                (events, facilities as u32, days as f64),
                "{id} {}",
                point.month
            );
        }
        assert_eq!(points.len(), 12);
    }
    net.shutdown().await.unwrap();
}
