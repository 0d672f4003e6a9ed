//! The learning loop end to end, with real node and gateway processes over mTLS: eight
//! facilities report falls for two years; four of them adopt a fall-prevention practice in
//! January 2025, after which their falls drop by a planted 35%; the other four change nothing.
//! The network's `PracticeEffect` must recover the drop (its 95% interval contains 0.65 and
//! excludes 1), the non-adopters must show none (their interval contains 1), an adopter's own
//! interrupted time series must find the level change, and nobody but the facility may read its
//! interventions.

mod common;

use common::*;
use psonet_core::month::Month;
use psonet_core::pb::{
    self, intervention_service_client::InterventionServiceClient,
    practice_effect_service_client::PracticeEffectServiceClient,
};
use psonet_gateway::metric::catalogue::MetricCatalogue;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::Code;
use tonic::transport::Channel;

/// The practice the adopters record.
const PRACTICE: &str = "fall-bundle";
/// Its start month at every adopter.
const START: &str = "2025-01";
/// The planted rate ratio after adoption.
const PLANTED: f64 = 0.65;
/// What the narrative says: it must never leave the node.
const NARRATIVE: &str = "Bed alarms on every night shift; the nurse manager owns it.";
/// Facilities 1 to 4 adopt; 5 to 8 do not.
const ADOPTERS: usize = 4;

/// The months of data: two years around the start month, and a month more.
fn months() -> Vec<Month> {
    let first: Month = "2024-01".parse().unwrap();
    (0..25)
        .map(|k| Month::from_index(first.index() + k).unwrap())
        .collect()
}

/// A Poisson draw by inversion (means here are below 100).
fn poisson(rng: &mut StdRng, mean: f64) -> u64 {
    let (mut k, mut p, mut cumulative) = (0u64, (-mean).exp(), (-mean).exp());
    let u: f64 = rng.random();
    while u > cumulative {
        k += 1;
        p *= mean / k as f64;
        cumulative += p;
    }
    k
}

/// Patient days of facility `i` (0-based) in a month.
fn patient_days(i: usize) -> u64 {
    3_000 + 400 * i as u64
}

/// Facility `i`'s falls per patient day in `month`: 12 per 1,000, times 0.65 after an adopter's
/// start month (halfway in the start month itself, a month of transition).
fn fall_rate(i: usize, month: Month) -> f64 {
    let start: Month = START.parse().unwrap();
    let base = 0.012;
    match (i < ADOPTERS, month.cmp(&start)) {
        (true, std::cmp::Ordering::Greater) => base * PLANTED,
        (true, std::cmp::Ordering::Equal) => base * (1.0 + PLANTED) / 2.0,
        _ => base,
    }
}

/// Facility `i`'s falls and patient days, month by month.
fn facility_data(i: usize) -> (Vec<pb::Event>, Vec<pb::ExposureRecord>) {
    let mut rng = StdRng::seed_from_u64(2026 + i as u64);
    let (mut events, mut exposure) = (Vec::new(), Vec::new());
    for month in months() {
        let days = patient_days(i);
        let falls = poisson(&mut rng, fall_rate(i, month) * days as f64);
        for n in 0..falls {
            let key = format!("f{i}-{month}-{n}");
            events.push(event(
                &key,
                &month.to_string(),
                pb::EventCategory::Fall,
                pb::HarmLevel::NoHarm,
            ));
        }
        exposure.push(pb::ExposureRecord {
            month: month.to_string(),
            unit_type: pb::UnitType::Medical as i32,
            denominator: pb::DenominatorType::PatientDays as i32,
            value: days,
        });
    }
    (events, exposure)
}

fn bundle(i: usize) -> pb::Intervention {
    pb::Intervention {
        intervention_id: format!("bundle-{i}"),
        practice_code: PRACTICE.into(),
        title: "Fall-prevention bundle".into(),
        start_month: START.into(),
        target_metric_ids: vec!["falls".into()],
        narrative: NARRATIVE.into(),
        ..Default::default()
    }
}

fn interventions(net: &Network, i: usize) -> InterventionServiceClient<Channel> {
    let node = &net.nodes[i];
    let channel =
        psonet::client::channel(&node.local().to_string(), &node.client_identity).unwrap();
    InterventionServiceClient::new(channel)
}

fn node_local(net: &Network, i: usize) -> String {
    net.nodes[i].local().to_string()
}

fn falls() -> pb::Metric {
    MetricCatalogue::default().get("falls").unwrap().clone()
}

/// Loads every facility's data and records the adopters' interventions.
async fn load(net: &Network) {
    for i in 0..net.nodes.len() {
        let (events, exposure) = facility_data(i);
        let mut reporting = net.nodes[i].reporting().unwrap();
        let summary = submit_all(&mut reporting, events).await;
        assert_eq!(summary.rejected, 0, "{summary:?}");
        reporting
            .record_exposure(pb::RecordExposureRequest { records: exposure })
            .await
            .unwrap();
    }
    for i in 0..ADOPTERS {
        let mut client = interventions(net, i);
        let request = pb::RecordInterventionRequest {
            intervention: Some(bundle(i)),
        };
        let first = client.record_intervention(request.clone()).await.unwrap();
        assert!(!first.get_ref().duplicate);
        let again = client.record_intervention(request).await.unwrap();
        assert!(
            again.get_ref().duplicate,
            "a retried record stores nothing new"
        );
    }
}

fn contains(interval: &pb::Interval, x: f64) -> bool {
    interval.lower <= x && x <= interval.upper
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_practice_effect_is_recovered_and_interventions_stay_at_the_facility() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(8).start().await.unwrap();
    net.start_gateway(|config| config.disclosure.min_facilities = ADOPTERS as u32)
        .await
        .unwrap();
    load(&net).await;

    // The network's practice effect, as a partner asks for it.
    let gateway = net.gateway_addr().unwrap().to_string();
    let channel = psonet::client::channel(&gateway, &net.layout.partner_identity).unwrap();
    let effect = PracticeEffectServiceClient::new(channel.clone())
        .practice_effect(pb::PracticeEffectRequest {
            practice_code: PRACTICE.into(),
            metric: "falls".into(),
            window_months: 12,
            heterogeneity_estimator: pb::HeterogeneityEstimator::Reml as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let adopters = effect.adopters.clone().unwrap();
    let interval = adopters.interval.unwrap();
    println!(
        "adopters: RR {:.3} (95% HK {:.3}-{:.3}), tau2 {:.4}, I2 {:.2}, k {}",
        adopters.ratio,
        interval.lower,
        interval.upper,
        adopters.tau2,
        adopters.i2,
        adopters.facilities
    );
    assert_eq!(adopters.facilities, ADOPTERS as u32);
    assert!(contains(&interval, PLANTED), "{interval:?}");
    assert!(!contains(&interval, 1.0), "{interval:?}");
    let others = effect.non_adopters.clone().expect("non-adopters pooled");
    let other_interval = others.interval.unwrap();
    println!(
        "non-adopters: RR {:.3} (95% HK {:.3}-{:.3}), k {}; ratio of RRs {:.3} {:?}",
        others.ratio,
        other_interval.lower,
        other_interval.upper,
        others.facilities,
        effect.ratio_of_rate_ratios,
        effect.ratio_of_rate_ratios_interval
    );
    assert_eq!(others.facilities, 8 - ADOPTERS as u32);
    assert!(contains(&other_interval, 1.0), "{other_interval:?}");
    // Adopters appear only as pseudonyms, and nothing the facility wrote leaves it.
    for row in adopters.studies.iter().chain(&others.studies) {
        assert!(row.facility.starts_with("peer-"), "{}", row.facility);
        assert_eq!(row.counts.unwrap().before_months, 12, "each month once");
    }
    let text = format!("{effect:?}");
    for secret in [NARRATIVE, "bundle-0", "Fall-prevention bundle"] {
        assert!(!text.contains(secret), "{secret} left a node");
    }
    // Coverage lists every facility asked (adopter or not), as every benchmark does.
    assert_eq!(effect.coverage.len(), 8);
    assert!(
        effect
            .coverage
            .iter()
            .all(|c| c.status == pb::CoverageStatus::Ok as i32),
        "{:?}",
        effect.coverage
    );

    // A practice too few facilities adopted cannot be pooled, and windows are fixed lengths.
    let mut effects = PracticeEffectServiceClient::new(channel.clone());
    let too_few = effects
        .practice_effect(pb::PracticeEffectRequest {
            practice_code: "nobody-does-this".into(),
            metric: "falls".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(too_few.code(), Code::FailedPrecondition, "{too_few:?}");
    let odd = effects
        .practice_effect(pb::PracticeEffectRequest {
            practice_code: PRACTICE.into(),
            metric: "falls".into(),
            window_months: 13,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(odd.code(), Code::InvalidArgument, "{odd:?}");
    assert!(odd.message().contains("window_months"), "{odd:?}");

    // The same from the command line, with the forest plot.
    let forest = net.dir().join("forest.svg");
    let cli = psonet(&[
        "practice-effect",
        "--gateway",
        &gateway,
        "--identity",
        net.layout.partner_identity.to_str().unwrap(),
        "--practice",
        PRACTICE,
        "--metric",
        "falls",
        "--tau2",
        "dl",
        "--plot",
        forest.to_str().unwrap(),
    ]);
    let printed = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    println!("{printed}");
    assert!(printed.contains("adopters"), "{printed}");
    assert!(printed.contains("non-adopters"), "{printed}");
    let chart = std::fs::read_to_string(&forest).unwrap();
    for text in ["fall-bundle", "log scale", "no effect", "pooled adopters"] {
        assert!(chart.contains(text), "{text} missing from the forest plot");
    }

    // An adopter's own interrupted time series finds the level change.
    let own = interventions(&net, 0)
        .intervention_effect(pb::InterventionEffectRequest {
            intervention_id: "bundle-0".into(),
            metric: Some(falls()),
            window_months: 12,
        })
        .await
        .unwrap()
        .into_inner();
    let its = own.its.expect("ITS fitted");
    let level = its.level_change_interval.unwrap();
    let ratio = own.rate_ratio.unwrap();
    println!(
        "facility-1: RR {:.3} {:?}; ITS level {:.3} ({:.3}-{:.3}), trend change {:.4}, phi {:.2}",
        ratio.ratio,
        ratio.exact,
        its.level_change,
        level.lower,
        level.upper,
        its.trend_change,
        its.dispersion
    );
    assert_eq!(own.series.len(), 25, "two windows and the start month");
    assert!(level.upper < 1.0, "the level change is found: {level:?}");
    assert!(contains(&level, PLANTED), "{level:?}");
    assert!(!contains(&ratio.exact.unwrap(), 1.0));

    // The same through the command line, with the chart.
    let svg = net.dir().join("effect.svg");
    let (addr, identity) = (node_local(&net, 0), net.nodes[0].client_identity.clone());
    let cli = psonet(&[
        "intervention",
        "--node",
        &addr,
        "--identity",
        identity.to_str().unwrap(),
        "effect",
        "--intervention",
        "bundle-0",
        "--metric",
        "falls",
        "--format",
        "json",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    let level_change = json["its"]["level_change"].as_f64().unwrap();
    assert!((level_change - its.level_change).abs() < 1e-9, "{json}");
    let chart = std::fs::read_to_string(&svg).unwrap();
    for text in [
        "bundle-0",
        "Falls",
        "start month 2025-01",
        "fitted segments",
        "month",
    ] {
        assert!(chart.contains(text), "{text} missing from the chart");
    }
    let compared = psonet(&[
        "intervention",
        "--node",
        &addr,
        "--identity",
        identity.to_str().unwrap(),
        "effect",
        "--intervention",
        "bundle-0",
        "--metric",
        "falls",
        "--gateway",
        &gateway,
    ]);
    let compared = String::from_utf8_lossy(&compared.stdout);
    println!("{compared}");
    assert!(
        compared.contains("this facility's rate ratio over the network's"),
        "{compared}"
    );
    let table = psonet(&[
        "intervention",
        "--node",
        &addr,
        "--identity",
        identity.to_str().unwrap(),
        "list",
    ]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("fall-bundle"));

    // A partner cannot read a facility's interventions: the node's local listener refuses it,
    // and the gateway has no such service.
    let node = &net.nodes[0];
    let as_partner =
        psonet::client::channel(&node.local().to_string(), &net.layout.partner_identity).unwrap();
    let refused = InterventionServiceClient::new(as_partner)
        .list_interventions(pb::ListInterventionsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let at_gateway = InterventionServiceClient::new(channel)
        .list_interventions(pb::ListInterventionsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(at_gateway.code(), Code::Unimplemented, "{at_gateway:?}");
    // The facility itself can.
    let listed = interventions(&net, 0)
        .list_interventions(pb::ListInterventionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.interventions.len(), 1);
    assert_eq!(listed.interventions[0].narrative, NARRATIVE);

    // The PSO publishes the bundle as guidance; the partner's report shows it and the effect.
    let dir = net.dir().join("guidance");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fall-bundle.md"), BUNDLE_GUIDANCE).unwrap();
    net.start_gateway(move |config| {
        config.disclosure.min_facilities = ADOPTERS as u32;
        config.guidance = Some(psonet_gateway::guidance::GuidanceConfig {
            dir,
            reload_interval_ms: 200,
        });
    })
    .await
    .unwrap();
    let html = net.dir().join("report.html");
    let made = psonet(&[
        "report",
        "--gateway",
        &net.gateway_addr().unwrap().to_string(),
        "--identity",
        net.layout.partner_identity.to_str().unwrap(),
        "--from",
        "2024-01",
        "--to",
        "2025-12",
        "--out",
        html.to_str().unwrap(),
    ]);
    let progress = String::from_utf8_lossy(&made.stderr);
    assert!(made.status.success(), "{progress}");
    assert!(
        progress.contains("PracticeEffect(fall-bundle, falls): answered"),
        "{progress}"
    );
    let html = std::fs::read_to_string(html).unwrap();
    let part = &html[html.find("id=\"learning\"").expect("a learning section")..];
    for words in [
        "Fall-prevention bundle",
        "best practice",
        "Adopters (4 facilities): rate ratio after/before",
        "Non-adopters (4 facilities)",
        "<title>fall-bundle: Falls rate ratio after vs before</title>",
        "Forest plot data",
    ] {
        assert!(
            part.contains(words),
            "{words:?} not in the report's learning section"
        );
    }
    assert!(
        (1..=8).all(|i| !html.contains(&format!("facility-{i}"))),
        "the partner's report names a facility"
    );
    assert!(!html.contains(NARRATIVE));
    let config = net.nodes[0].config.clone();
    net.nodes[0].stop().await.unwrap();

    // What the gateway asked and what the node released are on the node's audit trail.
    let audited = psonet(&[
        "node",
        "audit",
        "--config",
        config.to_str().unwrap(),
        "--verify",
    ]);
    let audit = String::from_utf8_lossy(&audited.stdout);
    assert!(
        audited.status.success(),
        "{}",
        String::from_utf8_lossy(&audited.stderr)
    );
    let line = audit
        .lines()
        .find(|l| l.contains("practice-outcome"))
        .unwrap_or_else(|| panic!("no practice-outcome record: {audit}"));
    assert!(
        line.contains("answered") && line.contains("released=2"),
        "{line}"
    );
    assert!(
        line.contains("partner/analyst"),
        "asked on behalf of the partner: {line}"
    );
    net.shutdown().await.unwrap();
}

/// Bad input is refused field by field, and a conflicting record is not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interventions_are_validated_idempotent_and_amendable() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).start().await.unwrap();
    let mut client = interventions(&net, 0);
    let mut bad = bundle(0);
    bad.start_month = "2025-13".into();
    bad.practice_code.clear();
    let status = client
        .record_intervention(pb::RecordInterventionRequest {
            intervention: Some(bad),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("intervention.start_month"),
        "{status:?}"
    );
    assert!(
        status.message().contains("intervention.practice_code"),
        "{status:?}"
    );

    let record = |i: pb::Intervention| pb::RecordInterventionRequest {
        intervention: Some(i),
    };
    client.record_intervention(record(bundle(0))).await.unwrap();
    let mut other = bundle(0);
    other.title = "Something else".into();
    let conflict = client
        .record_intervention(record(other.clone()))
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists);
    let amended = client
        .amend_intervention(pb::AmendInterventionRequest {
            intervention: Some(other),
            reason: "renamed".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(amended.intervention.unwrap().revision, 2);
    let ended = client
        .end_intervention(pb::EndInterventionRequest {
            intervention_id: "bundle-0".into(),
            end_month: "2024-06".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(ended.code(), Code::InvalidArgument, "ends before it starts");
    let ended = client
        .end_intervention(pb::EndInterventionRequest {
            intervention_id: "bundle-0".into(),
            end_month: "2025-12".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .intervention
        .unwrap();
    assert_eq!((ended.revision, ended.end_month.as_str()), (3, "2025-12"));
    let missing = client
        .end_intervention(pb::EndInterventionRequest {
            intervention_id: "nope".into(),
            end_month: "2025-12".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    net.shutdown().await.unwrap();
}

const BUNDLE_GUIDANCE: &str = "---\nversion: 1\nkind: best_practice\ntitle: Fall-prevention \
    bundle\nmetrics: [falls]\npractice: fall-bundle\npublished: 2026-03-01\n---\n# Why\n\
    Hourly rounding and bed alarms cut falls in the network's pilot.\n";
const ALERT_GUIDANCE: &str = "---\nversion: 1\nkind: safety_alert\ntitle: Bed alarm recall\n\
    published: 2026-04-01\n---\nCheck bed alarms of model X.\n";

const RURAL_GUIDANCE: &str = "---\nversion: 1\nkind: safety_alert\ntitle: Transfer delays\n\
    published: 2026-05-01\npeer_group: urbanicity=rural\n---\nCheck transfer agreements.\n";

/// Points node `i` at the gateway for guidance (its own client identity, pulling every
/// second) and restarts it on the same ports.
async fn pull_guidance_from_gateway(net: &mut Network, i: usize) {
    let gateway = net.gateway_addr().unwrap().to_string();
    let node = &mut net.nodes[i];
    node.pin_ports().unwrap();
    node.stop().await.unwrap();
    let text = std::fs::read_to_string(&node.config).unwrap();
    let mut config: psonet_node::NodeConfig = toml::from_str(&text).unwrap();
    let identity = &node.client_identity;
    config.guidance = Some(psonet_node::guidance::GuidancePullConfig {
        gateway,
        tls: psonet_serve::tls::TlsFiles {
            ca: identity.join("ca.pem"),
            cert: identity.join("cert.pem"),
            key: identity.join("key.pem"),
        },
        pull_interval_s: 1,
    });
    std::fs::write(&node.config, toml::to_string(&config).unwrap()).unwrap();
    node.start().await.unwrap();
}

fn facility_guidance(
    net: &Network,
    i: usize,
) -> pb::facility_guidance_service_client::FacilityGuidanceServiceClient<Channel> {
    let node = &net.nodes[i];
    let channel =
        psonet::client::channel(&node.local().to_string(), &node.client_identity).unwrap();
    pb::facility_guidance_service_client::FacilityGuidanceServiceClient::new(channel)
}

/// Waits until every node holds `count` guidance items.
async fn every_node_holds(net: &Network, count: usize) {
    for i in 0..net.nodes.len() {
        let mut client = facility_guidance(net, i);
        let mut held = 0;
        for _ in 0..150 {
            held = client
                .list_facility_guidance(pb::ListFacilityGuidanceRequest {})
                .await
                .map(|r| r.into_inner().guidance.len())
                .unwrap_or(0);
            if held == count {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(held, count, "node {i} holds {held} guidance items");
    }
}

/// Whether node `i` holds guidance `id`.
async fn holds(net: &Network, i: usize, id: &str) -> bool {
    facility_guidance(net, i)
        .list_facility_guidance(pb::ListFacilityGuidanceRequest {})
        .await
        .unwrap()
        .into_inner()
        .guidance
        .iter()
        .any(|g| g.item.as_ref().is_some_and(|item| item.guidance_id == id))
}

async fn acknowledge(net: &Network, i: usize, id: &str, adopt: bool) {
    let acked = facility_guidance(net, i)
        .acknowledge_guidance(pb::AcknowledgeGuidanceRequest {
            guidance_id: id.into(),
            adopt,
        })
        .await
        .unwrap()
        .into_inner()
        .guidance
        .unwrap();
    assert_eq!((acked.acknowledged_version, acked.adopted), (1, adopt));
}

/// Guidance published at the gateway reaches every node, also when published while they run,
/// and acknowledgements come back as network counts under the release rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guidance_reaches_every_node_and_adoption_is_a_released_network_count() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(5).start().await.unwrap();
    let dir = net.dir().join("guidance");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fall-bundle.md"), BUNDLE_GUIDANCE).unwrap();
    let guidance_dir = dir.clone();
    net.start_gateway(move |config| {
        config.guidance = Some(psonet_gateway::guidance::GuidanceConfig {
            dir: guidance_dir,
            reload_interval_ms: 200,
        });
        for entry in config.facilities.iter_mut().take(2) {
            entry.peer.urbanicity = Some("rural".into());
        }
    })
    .await
    .unwrap();
    for i in 0..net.nodes.len() {
        pull_guidance_from_gateway(&mut net, i).await;
    }
    every_node_holds(&net, 1).await;
    // Published while everything runs: the gateway reloads, the nodes pull.
    std::fs::write(dir.join("bed-alarm-recall.md"), ALERT_GUIDANCE).unwrap();
    every_node_holds(&net, 2).await;
    let held = facility_guidance(&net, 2)
        .list_facility_guidance(pb::ListFacilityGuidanceRequest {})
        .await
        .unwrap()
        .into_inner();
    let bundle = held.guidance[1].item.clone().unwrap();
    assert_eq!(bundle.guidance_id, "fall-bundle");
    assert!(bundle.body_markdown.contains("Hourly rounding"));

    // Four facilities acknowledge the bundle, two adopt it; one acknowledges the alert.
    for i in 0..3 {
        acknowledge(&net, i, "fall-bundle", i < 2).await;
    }
    // The fourth through the command line, as the facility's staff would.
    let node = &net.nodes[3];
    let cli = psonet(&[
        "guidance",
        "acknowledge",
        "--at",
        &node.local().to_string(),
        "--identity",
        node.client_identity.to_str().unwrap(),
        "--guidance",
        "fall-bundle",
    ]);
    let printed = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(
        printed.contains("fall-bundle") && printed.contains("yes"),
        "{printed}"
    );
    acknowledge(&net, 0, "bed-alarm-recall", false).await;
    let gateway = net.gateway_addr().unwrap().to_string();
    let channel = psonet::client::channel(&gateway, &net.layout.partner_identity).unwrap();
    let mut client = pb::guidance_service_client::GuidanceServiceClient::new(channel);
    let listed = client
        .list_guidance(pb::ListGuidanceRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.items.len(), 2);
    let adoption = client
        .guidance_adoption(pb::GuidanceAdoptionRequest {})
        .await
        .unwrap()
        .into_inner();
    let row = |id: &str| {
        adoption
            .rows
            .iter()
            .find(|r| r.guidance_id == id)
            .unwrap()
            .clone()
    };
    let bundle = row("fall-bundle");
    assert_eq!(
        (
            bundle.facilities_answering,
            bundle.acknowledged,
            bundle.adopted,
            bundle.withheld
        ),
        (5, 4, 2, false)
    );
    // One facility's acknowledgement is the whole count: withheld, not released.
    let alert = row("bed-alarm-recall");
    assert!(alert.withheld, "{alert:?}");
    assert_eq!(alert.acknowledged, 0);
    let cli = psonet(&[
        "guidance",
        "adoption",
        "--at",
        &gateway,
        "--identity",
        net.layout.partner_identity.to_str().unwrap(),
    ]);
    let printed = String::from_utf8_lossy(&cli.stdout);
    println!("{printed}");
    assert!(
        printed.contains("withheld: one facility holds 100%"),
        "{printed}"
    );

    // Withdrawn by the PSO: the nodes keep it, marked, and no longer report it.
    std::fs::remove_file(dir.join("bed-alarm-recall.md")).unwrap();
    let mut withdrawn = false;
    for _ in 0..150 {
        let held = facility_guidance(&net, 0)
            .list_facility_guidance(pb::ListFacilityGuidanceRequest {})
            .await
            .unwrap()
            .into_inner();
        withdrawn = held
            .guidance
            .iter()
            .any(|g| g.withdrawn && g.item.as_ref().unwrap().guidance_id == "bed-alarm-recall");
        if withdrawn {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(withdrawn, "the withdrawal reached node 0");
    let adoption = client
        .guidance_adoption(pb::GuidanceAdoptionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        adoption
            .rows
            .iter()
            .all(|r| r.guidance_id != "bed-alarm-recall"),
        "a withdrawn item is not counted: {adoption:?}"
    );

    // An alert for rural facilities reaches those two only, and its adoption is counted over
    // them: too few for a network figure.
    std::fs::write(dir.join("rural-alert.md"), RURAL_GUIDANCE).unwrap();
    for i in 0..2 {
        let mut held = false;
        for _ in 0..150 {
            held = holds(&net, i, "rural-alert").await;
            if held {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(held, "node {i} (rural) did not get the rural alert");
    }
    // Three pull intervals more: the others would have had it by now.
    tokio::time::sleep(std::time::Duration::from_millis(3_000)).await;
    for i in 2..5 {
        assert!(
            !holds(&net, i, "rural-alert").await,
            "node {i} is not rural"
        );
    }
    let adoption = client
        .guidance_adoption(pb::GuidanceAdoptionRequest {})
        .await
        .unwrap()
        .into_inner();
    let rural = adoption
        .rows
        .iter()
        .find(|r| r.guidance_id == "rural-alert")
        .unwrap();
    assert_eq!(rural.facilities_answering, 2);
    assert!(rural.withheld, "{rural:?}");
    net.shutdown().await.unwrap();
}

/// `n` falls in `month`, their keys made distinct by `tag`.
fn falls_in(tag: &str, month: &str, n: usize) -> Vec<pb::Event> {
    (0..n)
        .map(|k| {
            event(
                &format!("{tag}-{month}-{k}"),
                month,
                pb::EventCategory::Fall,
                pb::HarmLevel::NoHarm,
            )
        })
        .collect()
}

fn outcome_request(window_months: u32) -> pb::PracticeOutcomeRequest {
    pb::PracticeOutcomeRequest {
        practice_code: PRACTICE.into(),
        metric: Some(falls()),
        window_months,
        querier: format!("spiffe://{NETWORK}/partner/analyst"),
    }
}

fn practice_outcomes(
    net: &Network,
    identity: &std::path::Path,
) -> pb::practice_outcome_service_client::PracticeOutcomeServiceClient<Channel> {
    let channel = psonet::client::channel(
        &net.nodes[0].federation().expect("it listens").to_string(),
        identity,
    )
    .unwrap();
    pb::practice_outcome_service_client::PracticeOutcomeServiceClient::new(channel)
}

/// What a node releases about a practice: the windows' counts under its small-cell rule, for
/// fixed window lengths only, to the gateway only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_outcome_is_small_cell_suppressed_fixed_and_for_the_gateway_only() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).start().await.unwrap();
    // 12 falls a month in 2024, but 3 in February (a month the monthly answers withhold);
    // 4 in the whole year after.
    let mut events = Vec::new();
    for month in months() {
        let n = match month.to_string().as_str() {
            "2024-02" => 3,
            _ if month < START.parse().unwrap() => 12,
            _ => 0,
        };
        events.extend(falls_in("f", &month.to_string(), n));
    }
    events.extend(falls_in("late", "2025-06", 4));
    let mut reporting = net.nodes[0].reporting().unwrap();
    submit_all(&mut reporting, events).await;
    let (_, exposure) = facility_data(0);
    reporting
        .record_exposure(pb::RecordExposureRequest { records: exposure })
        .await
        .unwrap();
    interventions(&net, 0)
        .record_intervention(pb::RecordInterventionRequest {
            intervention: Some(bundle(0)),
        })
        .await
        .unwrap();

    let gateway = net.gateway_identity();
    let answer = practice_outcomes(&net, &gateway)
        .practice_outcome(outcome_request(12))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.adopted);
    assert_eq!(answer.start_month, START);
    // 135 falls, but less the eleven released months of 12 they would give February's 3 away.
    assert_eq!((answer.before_events, answer.before_suppressed), (0, true));
    assert_eq!(
        (answer.after_events, answer.after_suppressed),
        (0, true),
        "4 < k"
    );
    // Six months back, February is not in the window.
    let six = practice_outcomes(&net, &gateway)
        .practice_outcome(outcome_request(6))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((six.before_events, six.before_suppressed), (72, false));
    assert_eq!((six.before_months, six.after_months), (6, 6));
    assert_eq!((answer.before_months, answer.after_months), (12, 12));
    assert_eq!(answer.before_exposure, 12 * 3_000);

    // Another length would let two answers be differenced into single months.
    let odd = practice_outcomes(&net, &gateway)
        .practice_outcome(outcome_request(11))
        .await
        .unwrap_err();
    assert_eq!(odd.code(), Code::InvalidArgument, "{odd:?}");
    // Another practice: not adopted, nothing else.
    let mut other = outcome_request(12);
    other.practice_code = "something-else".into();
    let none = practice_outcomes(&net, &gateway)
        .practice_outcome(other)
        .await
        .unwrap()
        .into_inner();
    assert!(!none.adopted && none.start_month.is_empty() && none.before_exposure == 0);
    // Nobody but the gateway may ask.
    let refused = practice_outcomes(&net, &net.layout.partner_identity)
        .practice_outcome(outcome_request(12))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    net.shutdown().await.unwrap();
}

/// With differential privacy on, a node refuses practice outcomes rather than release exact
/// counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_differential_privacy_refuses_practice_outcomes() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1)
        .node_config(|c| c.privacy.differential_privacy = true)
        .start()
        .await
        .unwrap();
    interventions(&net, 0)
        .record_intervention(pb::RecordInterventionRequest {
            intervention: Some(bundle(0)),
        })
        .await
        .unwrap();
    let refused = practice_outcomes(&net, &net.gateway_identity())
        .practice_outcome(outcome_request(12))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("differential"), "{refused:?}");
    net.shutdown().await.unwrap();
}
