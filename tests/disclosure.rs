//! Attacks on disclosure control (6a–6e), each against real node and gateway processes over
//! mTLS, and each of which would succeed if its protection were removed. Each runs twice: with
//! the gateway dialling the nodes, and with every node dialling out to the gateway.

mod common;

use common::*;
use prost_reflect::DescriptorPool;
use prost_reflect::prost::Message;
use prost_reflect::prost_types::FileDescriptorProto;
use psonet_core::month::Month;
use psonet_core::pb::aggregate_service_client::AggregateServiceClient;
use psonet_core::pb::{self, EventCategory as C, HarmLevel as H};
use psonet_node::NodeConfig;
use psonet_node::policy::PolicyRule;
use std::collections::{BTreeMap, BTreeSet};
use tonic::Code;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};
use tonic_types::StatusExt;

const K: u64 = 11;

fn month() -> String {
    Month::current().minus(1).to_string()
}

/// `n` events of one category and harm.
fn events(prefix: &str, category: C, harm: H, n: usize) -> Vec<pb::Event> {
    (0..n)
        .map(|i| event(&format!("{prefix}-{i}"), &month(), category, harm))
        .collect()
}

fn by_category_and_harm(querier: &str) -> pb::AggregateRequest {
    pb::AggregateRequest {
        querier: querier.into(),
        ..aggregate_request(&month(), &month())
    }
}

/// 6a. Each event total of an answer is the sum of the cells that share its harm level. For
/// every withheld cell, solve what the released answer allows: with `r` withheld cells under a
/// total, each is at least 1 (a listed cell is not zero) and together they hold
/// `total - released`, so a lone one is exactly that and each of several lies in
/// `1 ..= total - released - (r - 1)`. It must never be a single value, and must stay as wide
/// as the suppression flag's own 1..k-1.
async fn a6_no_suppressed_cell_can_be_solved_from_the_released_margins(reach: ReachOf) {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).reach_each(reach).start().await.unwrap();
    assert_reach(&net);
    let mut batch = Vec::new();
    // Mild: a lone small cell (4) under a total of 34: 34 - 30 would give it away.
    batch.extend(events("mild-fall", C::Fall, H::Mild, 30));
    batch.extend(events("mild-med", C::Medication, H::Mild, 4));
    // Moderate: two single events under a total of 27: each would be pinned at 1.
    batch.extend(events("mod-fall", C::Fall, H::Moderate, 25));
    batch.extend(events("mod-med", C::Medication, H::Moderate, 1));
    batch.extend(events("mod-dev", C::Device, H::Moderate, 1));
    // No harm: nothing small.
    batch.extend(events("none-fall", C::Fall, H::NoHarm, 40));
    batch.extend(events("none-med", C::Medication, H::NoHarm, 15));
    let summary = submit_all(&mut net.nodes[0].reporting().unwrap(), batch).await;
    assert_eq!(summary.rejected, 0);

    let answer = net
        .aggregate_client(0)
        .await
        .unwrap()
        .aggregate(by_category_and_harm(""))
        .await
        .unwrap()
        .into_inner();
    let mut checked = 0;
    for total in answer.event_totals.iter().filter(|t| !t.suppressed) {
        let members: Vec<&pb::AggregateCell> = answer
            .cells
            .iter()
            .filter(|c| c.period == total.period && c.harm == total.harm)
            .collect();
        let released: u64 = members
            .iter()
            .filter(|c| !c.suppressed)
            .map(|c| c.count)
            .sum();
        let withheld = members.iter().filter(|c| c.suppressed).count() as u64;
        if withheld == 0 {
            assert_eq!(released, total.count, "harm {} adds up", total.harm);
            continue;
        }
        // Σ withheld = residual, each ≥ 1 and with no upper bound the answer gives away.
        let residual = total.count - released;
        let high = residual - (withheld - 1);
        let low = if withheld == 1 { residual } else { 1 };
        assert!(
            high > low,
            "harm {}: a withheld cell is pinned to {low}",
            total.harm
        );
        assert!(
            high >= K - 1,
            "harm {}: withheld cells narrowed to 1..={high}",
            total.harm
        );
        checked += 1;
    }
    assert_eq!(
        checked, 2,
        "mild and moderate each hide cells under a released total"
    );
}

fn with_privacy(config: &mut NodeConfig) {
    config.privacy.differential_privacy = true;
    config.privacy.rho_per_query = 0.2;
    config.privacy.querier_budget = 0.5;
    config.privacy.global_budget = 0.6;
}

fn remaining_rho(status: &tonic::Status) -> (String, String) {
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "PRIVACY_BUDGET_EXHAUSTED");
    assert!(status.get_details_quota_failure().is_some());
    (
        info.metadata["scope"].clone(),
        info.metadata["remaining_rho"].clone(),
    )
}

/// 6b. With differential privacy on (ρ 0.2 per query, 0.5 per querier, 0.6 per month for
/// everyone): querier A is refused once its budget is spent, with what remains in the error;
/// querier B is refused once the month's global budget is spent; repeating a query replays
/// its noisy answer without spending.
async fn a6b_spent_budgets_are_refused_per_querier_and_globally(reach: ReachOf) {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1)
        .reach_each(reach)
        .node_config(with_privacy)
        .start()
        .await
        .unwrap();
    assert_reach(&net);
    let mut batch = events("fall", C::Fall, H::Mild, 40);
    batch.extend(events("med", C::Medication, H::NoHarm, 25));
    submit_all(&mut net.nodes[0].reporting().unwrap(), batch).await;
    let a = format!("spiffe://{NETWORK}/partner/a");
    let b = format!("spiffe://{NETWORK}/partner/b");
    let mut client = net.aggregate_client(0).await.unwrap();
    let by_harm = |q: &str| pb::AggregateRequest {
        group_by: vec![pb::Dimension::Harm as i32],
        ..by_category_and_harm(q)
    };

    let first = client
        .aggregate(by_category_and_harm(&a))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .aggregate(by_category_and_harm(&a))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.cells, again.cells,
        "an identical query replays its noisy answer"
    );
    // Two cells hold events, but every cell of the domain got noise: zeros that came out at
    // 1..k-1 are listed as withheld (each does with probability ≈ 0.4; there are > 100).
    assert!(first.cells.len() > 2, "{:?}", first.cells);
    // Replayed for free: A can still afford exactly one more new query (0.2 + 0.2 <= 0.5).
    client.aggregate(by_harm(&a)).await.unwrap();
    let refused = client.aggregate(pb::AggregateRequest {
        time_grain: pb::TimeGrain::Year as i32,
        ..by_harm(&a)
    });
    let refused = refused.await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(
        remaining_rho(&refused),
        ("querier".into(), "0.100000".into())
    );

    // B's budget is untouched, but the month has 0.4 of 0.6 spent: one more query for anyone.
    client
        .aggregate(pb::AggregateRequest {
            time_grain: pb::TimeGrain::Quarter as i32,
            ..by_harm(&b)
        })
        .await
        .unwrap();
    let refused = client
        .aggregate(pb::AggregateRequest {
            time_grain: pb::TimeGrain::Year as i32,
            ..by_harm(&b)
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        remaining_rho(&refused),
        ("global".into(), "0.000000".into())
    );
    // What is already out may be replayed to anyone: it costs nothing.
    let replay = client
        .aggregate(by_category_and_harm(&b))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.cells, first.cells);
}

/// The service and method names a listener describes through reflection, and every message
/// type and field reachable from their requests and responses.
async fn described(channel: Channel) -> (BTreeMap<String, Vec<String>>, BTreeSet<String>) {
    let ask = |m| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    };
    let mut client = ServerReflectionClient::new(channel);
    let list = client
        .server_reflection_info(tokio_stream::iter([ask(MessageRequest::ListServices(
            String::new(),
        ))]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = list.message_response else {
        panic!("{list:?}");
    };
    let mut files: BTreeMap<String, FileDescriptorProto> = BTreeMap::new();
    let mut undescribed = Vec::new();
    let mut wanted: Vec<MessageRequest> = list
        .service
        .iter()
        .map(|s| MessageRequest::FileContainingSymbol(s.name.clone()))
        .collect();
    while let Some(request) = wanted.pop() {
        let symbol = format!("{request:?}");
        let mut stream = client
            .server_reflection_info(tokio_stream::iter([ask(request)]))
            .await
            .unwrap()
            .into_inner();
        let answer = match stream.message().await {
            Ok(answer) => answer.unwrap(),
            // The legacy v1alpha reflection service is listed but not described by v1.
            Err(s) if s.code() == Code::NotFound && symbol.contains(".v1alpha.") => {
                undescribed.push("grpc.reflection.v1alpha.ServerReflection".to_string());
                continue;
            }
            Err(s) => panic!("{symbol}: {s:?}"),
        };
        let Some(MessageResponse::FileDescriptorResponse(fds)) = answer.message_response else {
            panic!("{answer:?}");
        };
        for bytes in fds.file_descriptor_proto {
            let file = FileDescriptorProto::decode(bytes.as_slice()).unwrap();
            for dep in &file.dependency {
                if !files.contains_key(dep) {
                    wanted.push(MessageRequest::FileByFilename(dep.clone()));
                }
            }
            files.insert(file.name().to_string(), file);
        }
    }
    // Add files after their imports.
    let mut pool = DescriptorPool::new();
    let mut pending: Vec<FileDescriptorProto> = files.into_values().collect();
    while !pending.is_empty() {
        let (ready, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|f| {
            f.dependency
                .iter()
                .all(|d| pool.get_file_by_name(d).is_some())
        });
        assert!(!ready.is_empty(), "unresolvable imports: {rest:?}");
        pool.add_file_descriptor_protos(ready).unwrap();
        pending = rest;
    }
    let mut services: BTreeMap<String, Vec<String>> = undescribed
        .iter()
        .map(|n| (n.clone(), Vec::new()))
        .collect();
    let mut reachable = BTreeSet::new();
    for name in list
        .service
        .iter()
        .map(|s| &s.name)
        .filter(|n| !undescribed.contains(n))
    {
        let service = pool.get_service_by_name(name).expect("described");
        let mut methods = Vec::new();
        for method in service.methods() {
            methods.push(method.name().to_string());
            let mut todo = vec![method.input(), method.output()];
            while let Some(message) = todo.pop() {
                if !reachable.insert(message.full_name().to_string()) {
                    continue;
                }
                for field in message.fields() {
                    reachable.insert(format!("{}.{}", message.full_name(), field.name()));
                    if let Some(inner) = field.kind().as_message() {
                        todo.push(inner.clone());
                    }
                }
            }
        }
        services.insert(name.clone(), methods);
    }
    (services, reachable)
}

/// 6c. The federation API — on its listener, or over the link of a node that dials out —
/// describes, through its own reflection, nothing but the aggregate query, secure aggregation,
/// practice outcomes, guidance status, health and reflection — and nothing reachable from them
/// can carry an event, a narrative, an identifier or a timestamp.
async fn a6c_the_federation_listener_exposes_only_aggregates_health_and_reflection(reach: ReachOf) {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).reach_each(reach).start().await.unwrap();
    assert_reach(&net);
    let as_gateway = net.federation_channel(0).await.unwrap();
    let (services, reachable) = described(as_gateway).await;
    let names: Vec<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "psonet.v1.AggregateService",
            "psonet.v1.GuidanceStatusService",
            "psonet.v1.PracticeOutcomeService",
            "psonet.v1.SecureAggregationService"
        ]
    );
    assert_eq!(services["psonet.v1.AggregateService"], ["Aggregate"]);
    assert_eq!(
        services["psonet.v1.SecureAggregationService"],
        [
            "GetMaskingKey",
            "MaskedRound",
            "MaskedRoundOnKnownCohort",
            "UnmaskRound"
        ]
    );
    assert_eq!(
        services["psonet.v1.PracticeOutcomeService"],
        ["PracticeOutcome"]
    );
    assert_eq!(
        services["psonet.v1.GuidanceStatusService"],
        ["GuidanceStatus"]
    );
    let psonet: Vec<&String> = reachable
        .iter()
        .filter(|n| n.starts_with("psonet."))
        .collect();
    assert!(
        psonet.iter().any(|n| n.ends_with("AggregateCell.count")),
        "{psonet:?}"
    );
    for forbidden in [
        "psonet.v1.Event",
        "narrative",
        "event_id",
        "idempotency_key",
        "Timestamp",
    ] {
        assert!(
            !reachable.iter().any(|n| n.contains(forbidden)),
            "{forbidden} is reachable from the federation listener: {psonet:?}"
        );
    }
}

/// Stores 30 falls at node 0 and asks for them once as a partner: the client and the partner.
async fn thirty_falls_asked_by_a_partner(
    net: &Network,
) -> (AggregateServiceClient<Channel>, String) {
    submit_all(
        &mut net.nodes[0].reporting().unwrap(),
        events("fall", C::Fall, H::Mild, 30),
    )
    .await;
    let mut client = net.aggregate_client(0).await.unwrap();
    let partner = format!("spiffe://{NETWORK}/partner/analyst");
    client
        .aggregate(by_category_and_harm(&partner))
        .await
        .unwrap();
    (client, partner)
}

/// 6d. Every aggregate request is in the node's audit trail; editing one record in the sled
/// tree of the stopped node is caught by `psonet node audit --verify`, which names it.
async fn a6d_a_tampered_audit_record_is_detected_and_named(reach: ReachOf) {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(1).reach_each(reach).start().await.unwrap();
    assert_reach(&net);
    let (mut client, partner) = thirty_falls_asked_by_a_partner(&net).await;
    let too_small = pb::AggregateRequest {
        filter: Some(pb::AggregateFilter {
            categories: vec![C::Medication as i32],
            ..Default::default()
        }),
        ..by_category_and_harm(&partner)
    };
    submit_all(
        &mut net.nodes[0].reporting().unwrap(),
        events("med", C::Medication, H::Mild, 2),
    )
    .await;
    assert_eq!(
        client.aggregate(too_small).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    client.aggregate(by_category_and_harm("")).await.unwrap();

    let mut node = net.nodes[0].take_process().unwrap();
    node.signal("TERM").unwrap();
    assert!(node.wait_success());
    let config = net.nodes[0].config.to_str().unwrap().to_string();
    let listed = psonet(&["node", "audit", "--config", &config, "--verify"]);
    let out = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].contains(&format!("querier={partner}")) && lines[0].contains("answered"));
    assert!(
        lines[1].contains("refused") && lines[1].contains("fewer than 11 events"),
        "{out}"
    );
    assert!(
        lines[2].contains("querier=spiffe://testnet/gateway"),
        "{out}"
    );
    assert!(
        lines[3].starts_with("audit trail intact: 3 records, head "),
        "{out}"
    );
    let later = psonet(&[
        "node",
        "audit",
        "--config",
        &config,
        "--since",
        "2999-01-01",
    ]);
    assert!(later.status.success() && later.stdout.is_empty());

    // Lower the released count of record 1 in place, keeping its stored hash.
    let data_dir = NodeConfig::load(&net.nodes[0].config)
        .unwrap()
        .config
        .data_dir;
    {
        let tree = psonet_node::audit::open(&data_dir).unwrap();
        let key = 1u64.to_be_bytes();
        let value = tree.get(key).unwrap().unwrap().to_vec();
        let text = String::from_utf8_lossy(&value[32..]).to_string();
        assert!(text.contains("\"released_cells\":"), "{text}");
        let forged = text.replacen("\"released_cells\":", "\"released_cells\":1", 1);
        let mut tampered = value[..32].to_vec();
        tampered.extend_from_slice(forged.as_bytes());
        tree.insert(key, tampered).unwrap();
        tree.flush().unwrap();
    }
    let verified = psonet(&["node", "audit", "--config", &config, "--verify"]);
    let err = String::from_utf8_lossy(&verified.stderr).to_string();
    assert!(!verified.status.success());
    assert!(err.contains("audit record 1 has been altered"), "{err}");
}

/// 6e. A peer group of two facilities (here the whole network) would hand each facility the
/// other's exact figures: the gateway refuses it before asking any node.
async fn a6e_a_peer_group_of_two_is_refused_at_the_gateway(reach: ReachOf) {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(2).reach_each(reach).start().await.unwrap();
    assert_reach(&net);
    for node in &net.nodes {
        submit_all(
            &mut node.reporting().unwrap(),
            events(&node.id, C::Fall, H::Mild, 30),
        )
        .await;
    }
    net.start_gateway(|c| c.fanout.node_deadline_ms = 2_000)
        .await
        .unwrap();
    let refused = net
        .benchmark_client()
        .unwrap()
        .network_benchmark(pb::NetworkBenchmarkRequest {
            month_from: month(),
            month_to: month(),
            categories: vec![],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let violation = &refused
        .get_details_precondition_failure()
        .unwrap()
        .violations[0];
    assert_eq!(violation.r#type, "PEER_GROUP_TOO_SMALL");
    assert!(
        refused.message().contains("needs at least 5"),
        "{refused:?}"
    );
}

/// Facility policy: a query kind no rule approves for the querier is refused naming the rule.
async fn queries_outside_the_facility_policy_are_refused_naming_the_rule(reach: ReachOf) {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1)
        .reach_each(reach)
        .node_config(|c| {
            c.policy.rules = vec![PolicyRule {
                name: "partners-benchmark".into(),
                principals: vec!["partner/*".into()],
                dimensions: vec!["category".into(), "harm".into()],
            }]
        })
        .start()
        .await
        .unwrap();
    assert_reach(&net);
    let (mut client, partner) = thirty_falls_asked_by_a_partner(&net).await;
    let by_age = pb::AggregateRequest {
        group_by: vec![pb::Dimension::AgeBand as i32],
        ..by_category_and_harm(&partner)
    };
    let refused = client.aggregate(by_age).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("\"partners-benchmark\""),
        "{refused:?}"
    );
    assert!(refused.message().contains("AGE_BAND"), "{refused:?}");
    let info = refused.get_details_error_info().unwrap();
    assert_eq!(info.metadata["rule"], "partners-benchmark");
    // The gateway itself is named by no rule.
    let refused = client
        .aggregate(by_category_and_harm(""))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("no policy rule"), "{refused:?}");
}

/// A node configured below the CMS/PCORnet minimum says so loudly when it starts, and then
/// applies the k it was given to cells and query sets alike.
async fn a_threshold_below_eleven_is_warned_about_at_start_and_applied(reach: ReachOf) {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1)
        .reach_each(reach)
        .node_config(|c| c.disclosure.min_cell_count = 5)
        .start()
        .await
        .unwrap();
    assert_reach(&net);
    let log = net.nodes[0].log();
    assert!(
        log.contains("WARNING: disclosure.min_cell_count is below 11"),
        "{log}"
    );
    let mut batch = events("fall", C::Fall, H::Mild, 6);
    batch.extend(events("med", C::Medication, H::NoHarm, 4));
    submit_all(&mut net.nodes[0].reporting().unwrap(), batch).await;
    let by_harm = pb::AggregateRequest {
        group_by: vec![pb::Dimension::Harm as i32],
        ..aggregate_request(&month(), &month())
    };
    let answer = net
        .aggregate_client(0)
        .await
        .unwrap()
        .aggregate(by_harm)
        .await
        .unwrap()
        .into_inner();
    let cells = harm_cells(&answer);
    assert_eq!(
        cells,
        [(H::NoHarm as i32, 0, true), (H::Mild as i32, 6, false)]
    );
    assert_eq!(answer.min_cell_count, 5);
}

/// Differential privacy through the node-suppressed path: five noisy nodes answer the
/// gateway's benchmark, every facility answers, and asking again replays the same figures (each
/// node returns its stored noisy answer instead of spending budget on fresh noise). The size of
/// the noisy figures is not asserted: with every cell noised and then suppressed (primary and
/// complementary), a network row can land far from the true count. (On the secure path each
/// execution draws a fresh noise share and is charged again: there is no replay there yet.)
async fn a_noisy_network_benchmark_answers_and_replays(reach: ReachOf) {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(5)
        .reach_each(reach)
        .node_config(|c| c.privacy.differential_privacy = true)
        .start()
        .await
        .unwrap();
    assert_reach(&net);
    for node in &net.nodes {
        let mut batch = events(&format!("{}-fall", node.id), C::Fall, H::Mild, 40);
        batch.extend(events(
            &format!("{}-med", node.id),
            C::Medication,
            H::NoHarm,
            30,
        ));
        submit_all(&mut node.reporting().unwrap(), batch).await;
    }
    net.start_gateway(|c| {
        c.fanout.node_deadline_ms = 3_000;
        node_suppressed_sums(c);
    })
    .await
    .unwrap();
    let ask = || pb::NetworkBenchmarkRequest {
        month_from: month(),
        month_to: month(),
        categories: vec![],
        ..Default::default()
    };
    let mut client = net.benchmark_client().unwrap();
    let first = client.network_benchmark(ask()).await.unwrap().into_inner();
    assert!(
        first
            .coverage
            .iter()
            .all(|c| c.status == pb::CoverageStatus::Ok as i32),
        "{:?}",
        first.coverage
    );
    assert!(
        first.rows.iter().any(|r| r.category == C::Fall as i32),
        "a fall row, released or withheld: {:?}",
        first.rows
    );
    let again = client.network_benchmark(ask()).await.unwrap().into_inner();
    assert_eq!(first.rows, again.rows);
}

crate::each_reach!(
    a6_no_suppressed_cell_can_be_solved_from_the_released_margins,
    a6b_spent_budgets_are_refused_per_querier_and_globally,
    a6c_the_federation_listener_exposes_only_aggregates_health_and_reflection,
    a6d_a_tampered_audit_record_is_detected_and_named,
    a6e_a_peer_group_of_two_is_refused_at_the_gateway,
    queries_outside_the_facility_policy_are_refused_naming_the_rule,
    a_threshold_below_eleven_is_warned_about_at_start_and_applied,
    a_noisy_network_benchmark_answers_and_replays,
);
