//! Refusals on record (issue 12, item 5): every refused TLS handshake and every refused call is
//! logged at WARN with who, from where and why, counted in `psonet_refusals_total` by reason,
//! and — on a node's federation listener — appended to the audit trail. On main none of this
//! happened: a failed handshake was a DEBUG line, a denied call nothing at all.

mod common;

use common::*;
use psonet_core::pb::aggregate_service_client::AggregateServiceClient;
use psonet_core::pb::reporting_service_client::ReportingServiceClient;
use psonet_core::pb::{self};
use rcgen::ExtendedKeyUsagePurpose as Eku;
use std::net::SocketAddr;
use std::path::Path;

/// Asks the federation listener at `addr` for an aggregate as `identity`; it must fail.
async fn refused_aggregate(addr: SocketAddr, identity: &Path) {
    let result = AggregateServiceClient::new(channel(&addr, identity))
        .aggregate(aggregate_request("2026-01", "2026-01"))
        .await;
    assert!(result.is_err(), "served {}", identity.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_handshakes_and_calls_are_logged_counted_and_audited() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(1)
        .node_config(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap()))
        .start()
        .await
        .unwrap();
    let federation = net.nodes[0].federation().unwrap();
    let gateway = format!("spiffe://{NETWORK}/gateway");

    // Handshakes: no certificate; another CA's certificate claiming to be facility-1; the
    // gateway's principal on an expired certificate and on one without clientAuth.
    let anonymous = anonymous_channel(&federation, &net.layout.out.join("ca.pem"));
    let result = AggregateServiceClient::new(anonymous)
        .aggregate(aggregate_request("2026-01", "2026-01"))
        .await;
    assert!(result.is_err());
    let rogue_ca = psonet::pki::Authority::new(NETWORK, 1).unwrap();
    let rogue = rogue_ca
        .issue(
            &psonet_serve::identity::Principal::facility(NETWORK, "facility-1"),
            psonet::pki::Usage::Client,
            &[],
        )
        .unwrap();
    let rogue = write_identity(&net, "rogue", (rogue.cert_pem, rogue.key_pem));
    refused_aggregate(federation, &rogue).await;
    let expired = issue_certificate(
        &net,
        &gateway,
        &[Eku::ClientAuth],
        (2020, 1, 1),
        (2021, 1, 1),
    );
    let expired = write_identity(&net, "expired", expired);
    refused_aggregate(federation, &expired).await;
    let server_only = issue_certificate(
        &net,
        &gateway,
        &[Eku::ServerAuth],
        (2020, 1, 1),
        (2090, 1, 1),
    );
    let server_only = write_identity(&net, "server-only", server_only);
    refused_aggregate(federation, &server_only).await;
    // Calls: a partner on the federation listener, the gateway on the local listener.
    refused_aggregate(federation, &net.layout.partner_identity).await;
    let local =
        ReportingServiceClient::new(channel(&net.nodes[0].local(), &net.gateway_identity()))
            .get_event(pb::GetEventRequest {
                key: Some(pb::get_event_request::Key::IdempotencyKey("x".into())),
            })
            .await;
    assert!(local.is_err());

    // Counted by listener, stage and reason.
    let text = scrape(net.nodes[0].metrics().unwrap()).await;
    for (listener, stage, reason) in [
        ("federation", "handshake", "no_certificate"),
        ("federation", "handshake", "unknown_ca"),
        ("federation", "handshake", "expired"),
        ("federation", "handshake", "not_for_clients"),
        ("federation", "call", "not_admitted"),
        ("local", "call", "not_admitted"),
    ] {
        let series = format!(
            "psonet_refusals_total{{listener=\"{listener}\",stage=\"{stage}\",reason=\"{reason}\"}} "
        );
        assert!(
            text.lines().any(|l| l.starts_with(&series)),
            "no {series} in\n{text}"
        );
    }

    // Logged at WARN with who, from where and why.
    let log = net.nodes[0].log();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("refused"))
        .collect();
    assert_eq!(warned.len(), 6, "{log}");
    let line_with = |reason: &str| {
        warned
            .iter()
            .find(|l| l.contains(reason))
            .unwrap_or_else(|| panic!("no WARN line for {reason} in {warned:#?}"))
            .to_string()
    };
    let unknown_ca = line_with("unknown_ca");
    assert!(
        unknown_ca.contains("spiffe://testnet/facility/facility-1")
            && unknown_ca.contains("peer=127.0.0.1:"),
        "{unknown_ca}"
    );
    assert!(line_with("\"expired").contains(&gateway), "{warned:#?}");
    let denied = line_with("not_admitted");
    assert!(
        denied.contains("spiffe://testnet/partner/analyst")
            && denied.contains("/psonet.v1.AggregateService/Aggregate"),
        "{denied}"
    );

    // On the federation listener, in the audit trail too (the local listener's refusal not).
    net.nodes[0].stop().await.unwrap();
    let config = net.nodes[0].config.to_str().unwrap().to_string();
    let listed = psonet(&["node", "audit", "--config", &config, "--verify"]);
    let listing = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let refusals: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains(" refused "))
        .collect();
    assert_eq!(refusals.len(), 5, "{listing}");
    assert!(
        refusals.iter().all(|l| l.contains("from 127.0.0.1:")),
        "{listing}"
    );
    for words in [
        "(no certificate)",
        "spiffe://testnet/facility/facility-1",
        "(expired)",
        "(not_for_clients)",
        "/psonet.v1.AggregateService/Aggregate",
    ] {
        assert!(
            refusals.iter().any(|l| l.contains(words)),
            "{words} not audited: {listing}"
        );
    }
    assert!(
        listing.contains("audit trail intact: 5 records"),
        "{listing}"
    );
}
