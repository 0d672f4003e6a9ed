//! Secure aggregation end to end: facility nodes as real `psonet node` processes over mTLS, the
//! gateway's two-round client (`psonet_gateway::secure`) in this process, and — where a test
//! plays a dishonest gateway — the test itself holding the gateway's certificate and calling the
//! nodes directly, recording everything they send.
//!
//! What it shows: exact sums equal a brute-force count of what was submitted; round-1 vectors
//! look uniform and no single one can be opened from a transcript; a member falsely called
//! dropped stays masked; nodes killed between or after rounds give a correct sum or a refusal;
//! small and differencing cohorts and substituted keys are refused; distributed noise has the
//! configured σ.

mod common;

use common::*;
use psonet_core::month::Month;
use psonet_core::pb::{
    self, EventCategory, HarmLevel,
    secure_aggregation_service_client::SecureAggregationServiceClient,
};
use psonet_core::query::{Grain, Period};
use psonet_core::secagg::field::FieldElement;
use psonet_core::secagg::lanes::{self, LaneDomain};
use psonet_core::secagg::mask::{MaskKey, QueryId, Sign, apply_mask, keystream, self_mask_key};
use psonet_core::secagg::masking_key::{Epoch, signed_message};
use psonet_core::secagg::protocol::min_threshold;
use psonet_core::secagg::shamir::{self, Share};
use psonet_core::secagg::share_box::SEALED_LEN;
use psonet_gateway::GatewayConfig;
use psonet_gateway::client::registry::Registry;
use psonet_gateway::secure::{SecureAggregation, SecureContext, SecureRun, SecureSum, aggregate};
use psonet_serve::metrics::Metrics;
use psonet_serve::tls::ReloadableIdentity;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// The whole execution's deadline in these tests.
const DEADLINE: Duration = Duration::from_secs(8);

/// (facility index, month, category, harm) → events submitted: what brute force counts.
type Truth = BTreeMap<(usize, Month, EventCategory, HarmLevel), u64>;

const CATEGORIES: [EventCategory; 3] = [
    EventCategory::Fall,
    EventCategory::Medication,
    EventCategory::PressureInjury,
];
const HARMS: [HarmLevel; 3] = [HarmLevel::NoHarm, HarmLevel::Mild, HarmLevel::Severe];

/// Patient days facility `i` records for every month.
fn patient_days(i: usize) -> u64 {
    1_000 + 137 * i as u64
}

/// Submits small counts (0–4 events per facility, month, category and harm — every one of them
/// below the small-cell rule) and patient days to every node for `months`; returns the truth.
async fn load(net: &Network, months: &[Month], salt: usize) -> Truth {
    let mut truth = Truth::new();
    for (i, node) in net.nodes.iter().enumerate() {
        let mut events = Vec::new();
        let mut exposure = Vec::new();
        for (mi, month) in months.iter().enumerate() {
            for (ci, category) in CATEGORIES.iter().enumerate() {
                for (hi, harm) in HARMS.iter().enumerate() {
                    let n = (((i * 7 + mi * 3 + ci * 5 + hi + salt) * 2654435761) >> 7) % 5;
                    for e in 0..n {
                        let key = format!("{}-{month}-{ci}-{hi}-{e}-{salt}", node.id);
                        events.push(event(&key, &month.to_string(), *category, *harm));
                    }
                    *truth.entry((i, *month, *category, *harm)).or_default() += n as u64;
                }
            }
            exposure.push(pb::ExposureRecord {
                month: month.to_string(),
                unit_type: pb::UnitType::Medical as i32,
                denominator: pb::DenominatorType::PatientDays as i32,
                value: patient_days(i),
            });
        }
        let addr = node.local().to_string();
        let summary = psonet::client::submit::events(&addr, &node.client_identity, events)
            .await
            .expect("submit");
        assert_eq!(summary.rejected, 0);
        psonet::client::submit::exposure(&addr, &node.client_identity, exposure)
            .await
            .expect("exposure");
    }
    truth
}

/// `n` months ending `back` months before this one, oldest first.
fn months(back: u32, n: u32) -> Vec<Month> {
    let last = Month::current().minus(back);
    (0..n).rev().map(|k| last.minus(k)).collect()
}

/// By category and harm, per month, over `months` (the category table's query).
fn query(months: &[Month]) -> pb::AggregateRequest {
    pb::AggregateRequest {
        month_from: months[0].to_string(),
        month_to: months[months.len() - 1].to_string(),
        group_by: vec![pb::Dimension::Category as i32, pb::Dimension::Harm as i32],
        querier: format!("spiffe://{NETWORK}/partner/analyst"),
        ..Default::default()
    }
}

/// Asserts that `sum` is exactly the brute-force count over the facilities `members` (indexes):
/// every count, total and exposure lane, and every contributor count.
fn assert_exact(sum: &SecureSum, truth: &Truth, members: &[usize]) {
    let month_of = |p: Period| -> Month { p.label().parse().unwrap() };
    let count = |i: usize, m: Month, c: u8, h: u8| -> u64 {
        truth
            .iter()
            .filter(|((f, month, cat, harm), _)| {
                *f == i && *month == m && (c == 0 || *cat as u8 == c) && *harm as u8 == h
            })
            .map(|(_, n)| n)
            .sum()
    };
    let check = |lanes: &[psonet_core::secagg::lanes::LaneSum],
                 cells: &[psonet_core::query::CellKey]| {
        for (lane, cell) in lanes.iter().zip(cells) {
            let m = month_of(cell.period);
            let per: Vec<u64> = members
                .iter()
                .map(|i| count(*i, m, cell.values[0], cell.values[2]))
                .collect();
            assert_eq!(lane.value, per.iter().sum::<u64>() as i64, "{cell:?}");
            assert_eq!(
                lane.contributors as usize,
                per.iter().filter(|n| **n > 0).count(),
                "{cell:?}"
            );
        }
    };
    check(&sum.sums.counts, &sum.domain.cells);
    check(&sum.sums.totals, &sum.domain.totals);
    for (lane, key) in sum.sums.exposure.iter().zip(&sum.domain.exposure) {
        let expected: u64 = if key.denominator == pb::DenominatorType::PatientDays {
            members.iter().map(|i| patient_days(*i)).sum()
        } else {
            0
        };
        assert_eq!(lane.value, expected as i64, "{key:?}");
    }
    let ids: Vec<String> = members
        .iter()
        .map(|i| format!("facility-{}", i + 1))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sum.survivors, sorted);
}

/// The gateway's side in this process: the registry (each node's client stack, as the gateway
/// builds it from `gateway.toml`) and the key cache.
struct SecureGateway {
    registry: Registry,
    secure: SecureAggregation,
}

impl SecureGateway {
    fn of(net: &Network) -> Self {
        let ports: Vec<u16> = net.nodes.iter().map(|n| n.federation().port()).collect();
        Self::at(&net.layout.gateway_config, &ports)
    }

    /// From the network's `gateway.toml`, with the nodes' federation `ports` in order.
    fn at(gateway_toml: &std::path::Path, ports: &[u16]) -> Self {
        let mut loaded = GatewayConfig::load(gateway_toml).expect("gateway.toml");
        for (entry, port) in loaded.config.facilities.iter_mut().zip(ports) {
            entry.endpoint = format!("https://127.0.0.1:{port}");
        }
        let identity = ReloadableIdentity::load(&loaded.config.tls, "tls").unwrap();
        let registry = Registry::new(
            NETWORK,
            &loaded.config.facilities,
            identity.client_config().unwrap(),
            &loaded.config.fanout,
            &Metrics::new(),
        )
        .unwrap();
        let ca = std::fs::read(&loaded.config.tls.ca).unwrap();
        let secure = SecureAggregation::new(NETWORK, &ca).unwrap();
        Self { registry, secure }
    }

    fn context(&self) -> SecureContext<'_> {
        SecureContext {
            registry: &self.registry,
            deadline: DEADLINE,
            secure: &self.secure,
            min_cohort: 5,
        }
    }

    fn everyone(&self) -> Vec<String> {
        self.registry
            .facilities()
            .iter()
            .map(|f| f.id.clone())
            .collect()
    }
}

/// A dishonest gateway: the test with the gateway's certificate, calling every node itself.
struct Recorder {
    nodes: Vec<(String, SecureAggregationServiceClient<Channel>)>,
}

impl Recorder {
    fn of(net: &Network) -> Self {
        let nodes = net
            .nodes
            .iter()
            .map(|n| {
                let channel = channel(&n.federation(), &net.gateway_identity());
                (n.id.clone(), SecureAggregationServiceClient::new(channel))
            })
            .collect();
        Self { nodes }
    }

    /// Every node's current signed key, in node order.
    async fn keys(&mut self) -> Vec<pb::SignedMaskingKey> {
        let mut keys = Vec::new();
        for (_, client) in &mut self.nodes {
            let response = client
                .get_masking_key(pb::GetMaskingKeyRequest {
                    epoch: Epoch::current().value(),
                })
                .await
                .expect("a masking key")
                .into_inner();
            keys.push(response.key.unwrap());
        }
        keys
    }

    async fn round_one(
        &mut self,
        i: usize,
        request: &pb::MaskedRoundRequest,
    ) -> Result<pb::MaskedRoundResponse, tonic::Status> {
        self.nodes[i]
            .1
            .masked_round(request.clone())
            .await
            .map(tonic::Response::into_inner)
    }

    async fn round_two(
        &mut self,
        i: usize,
        request: pb::UnmaskRoundRequest,
    ) -> Result<pb::UnmaskRoundResponse, tonic::Status> {
        self.nodes[i]
            .1
            .unmask_round(request)
            .await
            .map(tonic::Response::into_inner)
    }
}

/// A round-1 request for `keys` (a cohort) under a fresh query id.
fn masked_request(months: &[Month], keys: Vec<pb::SignedMaskingKey>) -> pb::MaskedRoundRequest {
    let n = keys.len();
    pb::MaskedRoundRequest {
        query_id: QueryId(rand::random()).0.to_vec(),
        query: Some(query(months)),
        cohort: keys,
        threshold: min_threshold(n) as u32,
    }
}

/// A round-2 request for `query_id`.
fn unmask_request(
    query_id: QueryId,
    survivors: &[String],
    dropped: &[String],
    shares: Vec<u8>,
) -> pb::UnmaskRoundRequest {
    pb::UnmaskRoundRequest {
        query_id: query_id.0.to_vec(),
        survivors: survivors.to_vec(),
        dropped: dropped.to_vec(),
        shares,
    }
}

/// The ErrorInfo reason and `facility` metadata of a refusal.
fn reason(status: &tonic::Status) -> (String, String) {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    let facility = info.metadata.get("facility").cloned().unwrap_or_default();
    (info.reason, facility)
}

/// Pearson's χ² of `values` against uniform over `bins` equal bins of `bucket(v)`.
fn chi_square(values: &[u32], bins: usize, bucket: impl Fn(u32) -> usize) -> f64 {
    let mut counts = vec![0f64; bins];
    for v in values {
        counts[bucket(*v)] += 1.0;
    }
    let expected = values.len() as f64 / bins as f64;
    counts
        .iter()
        .map(|c| (c - expected).powi(2) / expected)
        .sum()
}

/// Asserts `values` look uniform mod 2^32: top 4 bits and low 8 bits each pass χ² at
/// p = 10⁻⁴ (critical values of χ²(15) and χ²(255)).
fn assert_uniform(values: &[u32], what: &str) {
    let top = chi_square(values, 16, |v| (v >> 28) as usize);
    let low = chi_square(values, 256, |v| (v & 0xff) as usize);
    println!(
        "{what}: {} lanes, χ² top nibble {top:.1} (df 15), low byte {low:.1} (df 255)",
        values.len()
    );
    assert!(top < 44.26, "{what}: χ² of the top nibble {top:.1}");
    assert!(low < 339.0, "{what}: χ² of the low byte {low:.1}");
}

/// Rebuilds member `j`'s self-mask seed from the round-2 answers (node order = cohort order
/// here) and returns its mask stream over `lanes` lanes.
fn self_mask(
    answers: &[(usize, pb::UnmaskRoundResponse)],
    slot: usize,
    t: usize,
    query_id: QueryId,
    lanes: usize,
) -> Vec<u32> {
    let shares: Vec<Share> = answers
        .iter()
        .take(t)
        .map(|(holder, a)| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&a.seed_shares[16 * slot..16 * (slot + 1)]);
            Share {
                x: *holder as u32 + 1,
                y: FieldElement::from_bytes(b).unwrap(),
            }
        })
        .collect();
    let seed = shamir::reconstruct(&shares, t).unwrap();
    keystream(&self_mask_key(seed, &query_id), lanes)
}

/// Facility `i`'s exact lane vector for `months`, by brute force (what it should have sent).
fn exact_lanes(truth: &Truth, i: usize, months: &[Month]) -> Vec<u32> {
    let q = psonet_core::query::AggregateQuery::from_wire(&query(months)).unwrap();
    let domain = LaneDomain::of(&q).unwrap();
    let mut cells = BTreeMap::new();
    let mut totals = BTreeMap::new();
    for ((f, m, c, h), n) in truth {
        if *f != i || !months.contains(m) || *n == 0 {
            continue;
        }
        let period = Period::of(*m, Grain::Month);
        let mut key = psonet_core::query::CellKey {
            period,
            values: [0; 9],
        };
        key.values[2] = *h as u8;
        *totals.entry(key).or_insert(0) += n;
        key.values[0] = *c as u8;
        *cells.entry(key).or_insert(0) += n;
    }
    let exposure = months
        .iter()
        .map(|m| {
            (
                (
                    Period::of(*m, Grain::Month),
                    pb::UnitType::Medical,
                    pb::DenominatorType::PatientDays,
                ),
                patient_days(i),
            )
        })
        .collect();
    let exact = domain.exact_values(&cells, &totals, &exposure);
    domain.layout().encode(&exact, &[], 5).unwrap()
}

fn sub(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_sub(*y)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_sums_equal_brute_force_and_a_recording_gateway_sees_only_noise() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(5).start().await.unwrap();
    let (m1, m2) = (months(1, 3), months(4, 3));
    let mut all = m2.clone();
    all.extend(&m1);
    let truth = load(&net, &all, 0).await;

    // (a) The gateway's two rounds: the sum equals brute force exactly, small cells included.
    let gateway = SecureGateway::of(&net);
    let started = Instant::now();
    let sum = aggregate(&gateway.context(), &gateway.everyone(), query(&m1))
        .await
        .expect("a secure sum");
    assert!(started.elapsed() < DEADLINE);
    assert_exact(&sum, &truth, &[0, 1, 2, 3, 4]);
    assert!(all_ok(&sum.coverage), "{:?}", sum.coverage);
    assert_eq!(sum.noise_variance, 0.0);
    let small: usize = sum
        .sums
        .counts
        .iter()
        .filter(|l| l.value > 0 && l.value < 11)
        .count();
    println!(
        "exact sum over 5 facilities: {} count lanes, {small} of them 1..10 (all released exactly by the sum)",
        sum.sums.counts.len()
    );
    for node in &sum.nodes {
        println!(
            "{}: round 1 {} µs CPU (masking {} µs), round 2 {:?} µs",
            node.facility, node.round1_cpu_micros, node.masking_cpu_micros, node.round2_cpu_micros
        );
    }

    // (b) A recording gateway runs the protocol honestly on other months and keeps everything.
    let mut rec = Recorder::of(&net);
    let keys = rec.keys().await;
    let request = masked_request(&m2, keys);
    let query_id = QueryId(request.query_id.clone().try_into().unwrap());
    let t = request.threshold as usize;
    let mut vectors = Vec::new();
    let mut shares = Vec::new();
    for i in 0..5 {
        let answer = rec.round_one(i, &request).await.expect("round 1");
        vectors.push(lanes::from_bytes(&answer.masked).unwrap());
        shares.push(answer.shares);
    }
    let everything: Vec<u32> = vectors.iter().flatten().copied().collect();
    assert_uniform(&everything, "round-1 vectors of 5 facilities");
    let exact: Vec<Vec<u32>> = (0..5).map(|i| exact_lanes(&truth, i, &m2)).collect();
    let plain: Vec<u32> = exact.iter().flatten().copied().collect();
    assert!(
        chi_square(&plain, 16, |v| (v >> 28) as usize) > 1000.0,
        "the exact vectors are far from uniform, so the test above means something"
    );
    let survivors: Vec<String> = rec.nodes.iter().map(|(id, _)| id.clone()).collect();
    let mut answers = Vec::new();
    for p in 0..5 {
        let relayed: Vec<u8> = shares
            .iter()
            .flat_map(|s| s[p * SEALED_LEN..(p + 1) * SEALED_LEN].to_vec())
            .collect();
        let answer = rec
            .round_two(p, unmask_request(query_id, &survivors, &[], relayed))
            .await
            .expect("round 2");
        assert!(answer.dropped_keys.is_empty());
        answers.push((p, answer));
    }
    // With everything recorded, the sum opens ...
    let lanes = vectors[0].len();
    let mut total = vec![0u32; lanes];
    for (j, y) in vectors.iter().enumerate() {
        let unmasked = sub(y, &self_mask(&answers, j, t, query_id, lanes));
        for (acc, v) in total.iter_mut().zip(unmasked) {
            *acc = acc.wrapping_add(v);
        }
    }
    let expected: Vec<u32> = (0..lanes)
        .map(|l| exact.iter().fold(0u32, |a, x| a.wrapping_add(x[l])))
        .collect();
    assert_eq!(total, expected, "the transcript opens the sum");
    // ... but no single facility's vector: without its self mask it is still uniform noise
    // (the pairwise masks need secrets the gateway never sees), and it matches the facility's
    // true lanes nowhere but by chance.
    for j in 0..5 {
        let attempt = sub(&vectors[j], &self_mask(&answers, j, t, query_id, lanes));
        assert_uniform(
            &attempt,
            &format!("facility-{} without its self mask", j + 1),
        );
        let hits = attempt
            .iter()
            .zip(&exact[j])
            .filter(|(a, x)| a == x)
            .count();
        assert!(hits <= 2, "facility-{}: {hits} lanes opened", j + 1);
    }
    net.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_member_called_dropped_gets_no_seed_share_and_stays_masked() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(6).start().await.unwrap();
    let m = months(1, 2);
    let truth = load(&net, &m, 1).await;
    let mut rec = Recorder::of(&net);
    let request = masked_request(&m, rec.keys().await);
    let query_id = QueryId(request.query_id.clone().try_into().unwrap());
    let mut vectors = Vec::new();
    let mut shares = Vec::new();
    for i in 0..6 {
        let answer = rec.round_one(i, &request).await.expect("round 1");
        vectors.push(lanes::from_bytes(&answer.masked).unwrap());
        shares.push(answer.shares);
    }
    // facility-3 (position 2) answered, but the gateway claims it dropped.
    let victim = 2;
    let survivors: Vec<String> = [
        "facility-1",
        "facility-2",
        "facility-4",
        "facility-5",
        "facility-6",
    ]
    .map(String::from)
    .to_vec();
    let dropped = vec!["facility-3".to_string()];
    let alive: Vec<usize> = vec![0, 1, 3, 4, 5];
    // The victim's share cannot be slipped in for a survivor's: shares are sealed from one
    // member to another, so a node refuses one that is not from whom it claims to be.
    let swapped: Vec<u8> = std::iter::once(&shares[victim])
        .chain(alive[1..].iter().map(|s| &shares[*s]))
        .flat_map(|s| s[..SEALED_LEN].to_vec())
        .collect();
    let refused = rec
        .round_two(0, unmask_request(query_id, &survivors, &dropped, swapped))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused).0, "BAD_SURVIVORS", "{refused:?}");
    assert!(refused.message().contains("does not open"), "{refused:?}");
    let mut answers = Vec::new();
    let mut pair_keys = Vec::new();
    for p in alive.iter().copied() {
        let relayed: Vec<u8> = alive
            .iter()
            .flat_map(|s| shares[*s][p * SEALED_LEN..(p + 1) * SEALED_LEN].to_vec())
            .collect();
        let answer = rec
            .round_two(p, unmask_request(query_id, &survivors, &dropped, relayed))
            .await
            .expect("round 2");
        // One seed share per survivor — none for the victim — and one key, with the victim.
        assert_eq!(answer.seed_shares.len(), 16 * 5);
        assert_eq!(answer.dropped_keys.len(), 32);
        let mut key = [0u8; 32];
        key.copy_from_slice(&answer.dropped_keys);
        pair_keys.push((p, MaskKey::from_bytes(key)));
        answers.push((p, answer));
    }
    // The gateway strips every pairwise mask off the victim's vector ...
    let lanes = vectors[victim].len();
    let mut stripped = vectors[victim].clone();
    for (p, key) in &pair_keys {
        let sign = Sign::between(
            &format!("facility-{}", victim + 1),
            &format!("facility-{}", p + 1),
        );
        apply_mask(&mut stripped, key, sign.opposite());
    }
    // ... and is left with x + PRG(b): the self mask, whose seed no survivor shared.
    assert_uniform(&stripped, "the victim's vector without its pairwise masks");
    let exact = exact_lanes(&truth, victim, &m);
    let hits = stripped.iter().zip(&exact).filter(|(a, x)| a == x).count();
    assert!(hits <= 2, "{hits} lanes of the victim opened");
    // Asking again, now calling the victim a survivor, is refused by everyone.
    let everyone: Vec<String> = (1..=6).map(|i| format!("facility-{i}")).collect();
    for p in alive.iter().copied() {
        let again = rec
            .round_two(
                p,
                unmask_request(query_id, &everyone, &[], vec![0; 6 * SEALED_LEN]),
            )
            .await
            .unwrap_err();
        assert_eq!(reason(&again).0, "ROUND_TWO_ANSWERED");
    }
    // The honest part works: the survivors' sum opens to their exact total.
    let t = request.threshold as usize;
    let mut total = vec![0u32; lanes];
    for (slot, i) in alive.iter().enumerate() {
        let mut y = sub(&vectors[*i], &self_mask(&answers, slot, t, query_id, lanes));
        let (_, key) = pair_keys.iter().find(|(p, _)| p == i).unwrap();
        let sign = Sign::between(
            &format!("facility-{}", i + 1),
            &format!("facility-{}", victim + 1),
        );
        apply_mask(&mut y, key, sign.opposite());
        for (acc, v) in total.iter_mut().zip(y) {
            *acc = acc.wrapping_add(v);
        }
    }
    let exacts: Vec<Vec<u32>> = alive.iter().map(|i| exact_lanes(&truth, *i, &m)).collect();
    let expected: Vec<u32> = (0..lanes)
        .map(|l| exacts.iter().fold(0u32, |a, x| a.wrapping_add(x[l])))
        .collect();
    assert_eq!(total, expected);
    net.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_killed_after_round_one_or_round_two_give_a_correct_sum_or_a_refusal() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(6).start().await.unwrap();
    for node in &net.nodes {
        node.pin_ports().unwrap();
    }
    let (m1, m2, m3, m4) = (months(1, 1), months(2, 1), months(3, 1), months(4, 1));
    let mut all = m4.clone();
    all.extend(m3.iter().chain(&m2).chain(&m1));
    let truth = load(&net, &all, 2).await;
    let gateway = SecureGateway::of(&net);
    let everyone = gateway.everyone();

    // facility-2 is killed after answering round 1: its vector is in the sum, its seed is
    // rebuilt from the others' shares.
    let started = Instant::now();
    let run = SecureRun::round_one(&gateway.context(), &everyone, query(&m1))
        .await
        .expect("round 1");
    net.nodes[1].kill();
    let sum = run.finish().await.expect("a sum despite the dead member");
    assert!(started.elapsed() < DEADLINE);
    assert_exact(&sum, &truth, &[0, 1, 2, 3, 4, 5]);
    let row = sum
        .coverage
        .iter()
        .find(|c| c.facility_id == "facility-2")
        .unwrap();
    assert_eq!(row.status, pb::CoverageStatus::Ok as i32);
    assert!(row.detail.contains("round 2"), "{}", row.detail);

    // With facility-2 dead from the start, it is dropped in round 1: the sum is the others'.
    let started = Instant::now();
    let sum = aggregate(&gateway.context(), &everyone, query(&m2))
        .await
        .expect("a sum over the survivors");
    assert!(started.elapsed() < DEADLINE);
    assert_exact(&sum, &truth, &[0, 2, 3, 4, 5]);
    let row = sum
        .coverage
        .iter()
        .find(|c| c.facility_id == "facility-2")
        .unwrap();
    assert_ne!(row.status, pb::CoverageStatus::Ok as i32);
    // facility-4 is killed after answering round 2 of that execution.
    net.nodes[3].kill();

    // Four survivors are too few (t = 5, minimum 5): a refusal, on time.
    let started = Instant::now();
    let refused = aggregate(&gateway.context(), &everyone, query(&m3))
        .await
        .unwrap_err();
    assert!(started.elapsed() < DEADLINE);
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("facility-4"),
        "{}",
        refused.message()
    );

    // And a month already summed over all six cannot be summed over five: the nodes refuse
    // rather than let the two sums difference out facility-4.
    net.nodes[1].start().await.unwrap();
    let refused = aggregate(&gateway.context(), &everyone, query(&m1))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );

    // Both come back with new masking keys: the gateway's cached ones are stale, it fetches
    // them again once, and the sum is whole again.
    net.nodes[3].start().await.unwrap();
    let sum = aggregate(&gateway.context(), &everyone, query(&m4))
        .await
        .expect("a sum after restarts");
    assert_exact(&sum, &truth, &[0, 1, 2, 3, 4, 5]);
    net.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_cohorts_differencing_cohorts_and_substituted_keys_are_refused() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(6).start().await.unwrap();
    let (m1, m2) = (months(1, 2), months(3, 2));
    let mut all = m2.clone();
    all.extend(&m1);
    load(&net, &all, 3).await;
    let mut rec = Recorder::of(&net);
    let keys = rec.keys().await;

    // (e) Four members, below every node's minimum of five.
    let small = masked_request(&m1, keys[..4].to_vec());
    let status = rec.round_one(0, &small).await.unwrap_err();
    assert_eq!(reason(&status).0, "COHORT_TOO_SMALL", "{status:?}");

    // (e) A sum over all six, then the same months over five: each of the five refuses.
    let gateway = SecureGateway::of(&net);
    aggregate(&gateway.context(), &gateway.everyone(), query(&m1))
        .await
        .expect("a sum over six");
    let five = masked_request(&m1, keys[..5].to_vec());
    for i in 0..5 {
        let status = rec.round_one(i, &five).await.unwrap_err();
        assert_eq!(
            reason(&status),
            ("COHORT_DIFFERENCING".to_string(), "facility-6".to_string()),
            "{status:?}"
        );
    }
    // Another shape of query over one of those months is refused too (history per month).
    let mut by_harm = five.clone();
    by_harm.query_id = QueryId(rand::random()).0.to_vec();
    by_harm.query.as_mut().unwrap().group_by = vec![pb::Dimension::Harm as i32];
    by_harm.query.as_mut().unwrap().month_to = m1[0].to_string();
    let status = rec.round_one(2, &by_harm).await.unwrap_err();
    assert_eq!(reason(&status).0, "COHORT_DIFFERENCING");
    // Months never summed take the five.
    rec.round_one(0, &masked_request(&m2, keys[..5].to_vec()))
        .await
        .expect("a fresh month");
    // A query id is answered once; an identical retry gets the same bytes, another is refused.
    let fresh = masked_request(&m2, keys.clone());
    let first = rec.round_one(0, &fresh).await.unwrap();
    let again = rec.round_one(0, &fresh).await.unwrap();
    assert_eq!(first.masked, again.masked);
    assert_eq!(first.shares, again.shares);
    let mut altered = fresh.clone();
    altered.threshold += 1;
    let status = rec.round_one(0, &altered).await.unwrap_err();
    assert_eq!(reason(&status).0, "QUERY_ID_REUSED");

    // (f) Substituted keys for facility-2 (index 1), each sent to facility-1 in a cohort.
    let epoch = Epoch::current();
    let original = keys[1].clone();
    let mut substitutes: Vec<(&str, pb::SignedMaskingKey)> = Vec::new();
    // The gateway's own X25519 key under facility-2's certificate and signature.
    substitutes.push((
        "another public key, same signature",
        pb::SignedMaskingKey {
            public_key: vec![9; 32],
            ..original.clone()
        },
    ));
    // Signed by a key that is not the certificate's.
    let rng = ring::rand::SystemRandom::new();
    let stranger = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .unwrap();
    let stranger = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        stranger.as_ref(),
        &rng,
    )
    .unwrap();
    let forged_key = [9u8; 32];
    let message = signed_message(NETWORK, epoch, "facility-2", &forged_key);
    substitutes.push((
        "signed by another key",
        pb::SignedMaskingKey {
            public_key: forged_key.to_vec(),
            signature: stranger.sign(&rng, &message).unwrap().as_ref().to_vec(),
            ..original.clone()
        },
    ));
    // Properly signed — by facility-3's certificate key, with facility-3's certificate.
    let node3 = psonet_node::NodeConfig::load(&net.layout.facilities[2].node_config).unwrap();
    let pem = |p: &std::path::Path| std::fs::read(p).unwrap();
    let key3 = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(&pem(&node3
            .config
            .federation
            .tls
            .key))
        .unwrap()
    };
    let signer3 = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        key3.secret_pkcs8_der(),
        &rng,
    )
    .unwrap();
    let cert3 = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(&pem(&node3.config.federation.tls.cert))
            .unwrap()
    };
    substitutes.push((
        "another facility's certificate",
        pb::SignedMaskingKey {
            public_key: forged_key.to_vec(),
            signature: signer3.sign(&rng, &message).unwrap().as_ref().to_vec(),
            certificate: cert3.to_vec(),
            ..original.clone()
        },
    ));
    // A certificate for facility-2 from a CA that is not the network's.
    let other_ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_ca = rcgen::Issuer::new(ca_params, other_ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names.push(rcgen::SanType::URI(
        format!("spiffe://{NETWORK}/facility/facility-2")
            .try_into()
            .unwrap(),
    ));
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &other_ca).unwrap();
    let leaf_signer = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &leaf_key.serialize_der(),
        &rng,
    )
    .unwrap();
    substitutes.push((
        "a certificate of another CA",
        pb::SignedMaskingKey {
            public_key: forged_key.to_vec(),
            signature: leaf_signer.sign(&rng, &message).unwrap().as_ref().to_vec(),
            certificate: leaf_cert.der().to_vec(),
            ..original.clone()
        },
    ));
    for (what, substitute) in substitutes {
        let mut cohort = keys.clone();
        cohort[1] = substitute;
        let status = rec
            .round_one(0, &masked_request(&m2, cohort))
            .await
            .unwrap_err();
        assert_eq!(
            reason(&status),
            (
                "UNTRUSTED_MASKING_KEY".to_string(),
                "facility-2".to_string()
            ),
            "{what}: {status:?}"
        );
    }
    // A cohort carrying an old key of the node itself is refused as stale.
    let mut cohort = keys.clone();
    cohort[0].public_key = vec![7; 32];
    let status = rec
        .round_one(0, &masked_request(&m2, cohort))
        .await
        .unwrap_err();
    assert_eq!(reason(&status).0, "STALE_MASKING_KEY");
    // Keys of other epochs are not served.
    let status = rec.nodes[0]
        .1
        .get_masking_key(pb::GetMaskingKeyRequest {
            epoch: epoch.value() + 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    net.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_noise_gives_the_sum_the_configured_sigma() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(5)
        .node_config(|config| config.privacy.differential_privacy = true)
        .start()
        .await
        .unwrap();
    let runs = 8;
    let all = months(1, runs);
    let truth = load(&net, &all, 4).await;
    let gateway = SecureGateway::of(&net);
    // σ_total² = Δ²/(2ρ) with Δ² = 10 categories + 1 total and ρ = 0.02; each of 5 nodes adds
    // max(1, σ_total²/h), h = ⌈5/2⌉ = 3; all five are honest, so the sum carries 5 shares.
    let share = (11.0 / (2.0 * 0.02)) / 3.0;
    let expected = 5.0 * share;
    let mut errors: Vec<f64> = Vec::new();
    for month in &all {
        // Each run on a month of its own: fresh data, a fresh budget, a fresh query id.
        let sum = aggregate(&gateway.context(), &gateway.everyone(), query(&[*month]))
            .await
            .expect("a noisy sum");
        assert!(
            (sum.noise_variance - expected).abs() < 1e-6,
            "{}",
            sum.noise_variance
        );
        let exact = brute_force(&sum, &truth);
        errors.extend(
            sum.sums
                .counts
                .iter()
                .chain(&sum.sums.totals)
                .zip(exact)
                .map(|(lane, truth)| (lane.value - truth) as f64),
        );
        // Exposure carries no noise.
        assert!(sum.sums.exposure.iter().any(|l| l.value > 0));
    }
    let n = errors.len() as f64;
    let mean = errors.iter().sum::<f64>() / n;
    let variance = errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0);
    // The sample variance of n Gaussian errors has relative standard deviation √(2/(n−1)).
    let relative_sd = (2.0 / (n - 1.0)).sqrt();
    println!(
        "distributed DP over {runs} runs, {n} lanes: measured σ {:.2}, expected σ {:.2} \
         (variance {variance:.1} vs {expected:.1}, ±{:.1}% per sd); mean error {mean:.2}",
        variance.sqrt(),
        expected.sqrt(),
        100.0 * relative_sd
    );
    assert!(
        (variance / expected - 1.0).abs() < 5.0 * relative_sd,
        "variance {variance:.1}, expected {expected:.1}"
    );
    assert!(
        mean.abs() < 5.0 * (expected / n).sqrt(),
        "mean error {mean}"
    );
    net.shutdown().await.unwrap();
}

/// The exact count and total lanes of `sum`'s domain over every facility, by brute force.
fn brute_force(sum: &SecureSum, truth: &Truth) -> Vec<i64> {
    let lane = |cell: &psonet_core::query::CellKey| -> i64 {
        let m: Month = cell.period.label().parse().unwrap();
        truth
            .iter()
            .filter(|((_, month, c, h), _)| {
                *month == m
                    && (cell.values[0] == 0 || *c as u8 == cell.values[0])
                    && *h as u8 == cell.values[2]
            })
            .map(|(_, n)| *n as i64)
            .sum()
    };
    sum.domain
        .cells
        .iter()
        .chain(&sum.domain.totals)
        .map(lane)
        .collect()
}

/// Gateway CPU per secure aggregation against the plain path's, at 10 and 50 nodes: nodes in
/// this process with a year of synthetic reports each; the gateway's side on a thread of its own
/// (a current-thread runtime holding its registry, so its TLS work is on that thread too),
/// timed with that thread's CPU clock. Both paths ask the category table's query (12 months by
/// category and harm); the plain path also checks and sums the answers as the gateway does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test --test secure_aggregation measure -- --ignored --nocapture"]
async fn measure_gateway_and_node_cpu_per_secure_aggregation() {
    use psonet::synth::SynthOptions;
    use psonet_gateway::answer::NodeQuery;
    use psonet_gateway::category_rows::CategoryRows;
    use psonet_gateway::coverage::AskContext;
    use psonet_node::secure_aggregation::cpu_time::thread_cpu;
    psonet_serve::tls::install_crypto_provider();
    let sizes: Vec<usize> = std::env::var("PSONET_MEASURE_NODES")
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|_| vec![10, 50]);
    for n in sizes {
        let net = Network::builder(NETWORK)
            .facilities(n)
            .servers(Servers::InProcess)
            .start()
            .await
            .unwrap();
        net.load_synthetic(|i, node| SynthOptions {
            events: 1_000,
            months: 12,
            last_month: Month::current(),
            key_prefix: node.id.clone(),
            beds: 80 + 10 * i as u32,
            seed: i as u64,
        })
        .await
        .unwrap();
        let toml = net.layout.gateway_config.clone();
        let ports: Vec<u16> = net.nodes.iter().map(|n| n.federation().port()).collect();
        let twelve = months(0, 12);
        let report = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let gateway = SecureGateway::at(&toml, &ports);
                let everyone = gateway.everyone();
                let range = psonet_core::month::MonthRange::new(twelve[0], twelve[11]).unwrap();
                let plain_query = NodeQuery::categories_by_month(range);
                let small_cells = psonet_core::disclosure::primary::SmallCellRule::default();
                let ask = AskContext {
                    registry: &gateway.registry,
                    deadline: DEADLINE,
                    small_cells: &small_cells,
                    querier: "",
                };
                let runs = 8;
                let (mut secure, mut plain, mut secure_wall, mut plain_wall) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                let mut nodes = Vec::new();
                for run in 0..runs + 2 {
                    let (cpu, wall) = (thread_cpu(), Instant::now());
                    let sum = aggregate(&gateway.context(), &everyone, query(&twelve))
                        .await
                        .expect("a secure sum");
                    let (c, w) = (thread_cpu() - cpu, wall.elapsed());
                    assert_eq!(sum.survivors.len(), everyone.len());
                    let (cpu, wall) = (thread_cpu(), Instant::now());
                    let answers = ask.ask(&plain_query, &|_| true).await;
                    let rows = CategoryRows::sum(&answers.usable);
                    let (pc, pw) = (thread_cpu() - cpu, wall.elapsed());
                    assert_eq!(answers.usable.len(), everyone.len());
                    drop(rows);
                    if run >= 2 {
                        secure.push(c.as_secs_f64() * 1e3);
                        plain.push(pc.as_secs_f64() * 1e3);
                        secure_wall.push(w.as_secs_f64() * 1e3);
                        plain_wall.push(pw.as_secs_f64() * 1e3);
                        nodes.extend(sum.nodes);
                    }
                }
                (secure, plain, secure_wall, plain_wall, nodes)
            })
        })
        .join()
        .unwrap();
        let (secure, plain, secure_wall, plain_wall, nodes) = report;
        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let node_cpu: Vec<f64> = nodes
            .iter()
            .map(|c| c.round1_cpu_micros as f64 / 1e3)
            .collect();
        let masking: Vec<f64> = nodes
            .iter()
            .map(|c| c.masking_cpu_micros as f64 / 1e3)
            .collect();
        let round2: Vec<f64> = nodes
            .iter()
            .filter_map(|c| c.round2_cpu_micros)
            .map(|c| c as f64 / 1e3)
            .collect();
        println!(
            "{n} nodes x 12 months ({} build): gateway CPU per call, median: secure {:.2} ms, plain {:.2} ms ({:.0}%); \
             wall p50 secure {:.1} ms, plain {:.1} ms; node CPU per round-1 answer p50 {:.2} ms (masking {:.2} ms), round 2 {:.2} ms",
            if cfg!(debug_assertions) {
                "unoptimized"
            } else {
                "release"
            },
            median(&secure),
            median(&plain),
            100.0 * median(&secure) / median(&plain),
            median(&secure_wall),
            median(&plain_wall),
            median(&node_cpu),
            median(&masking),
            median(&round2),
        );
        net.shutdown().await.unwrap();
    }
}
