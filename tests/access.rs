//! Mutual TLS and roles (8b): who is refused, and how the refusal reads.

mod common;

use common::*;
use psonet::client::explain_failure;
use psonet::pki::{Authority, Usage};
use psonet_core::pb::{self, reporting_service_client::ReportingServiceClient};
use psonet_serve::diagnose::Failure;
use psonet_serve::identity::Principal;
use tonic::Code;

fn get_request() -> pb::GetEventRequest {
    pb::GetEventRequest {
        key: Some(pb::get_event_request::Key::IdempotencyKey("none".into())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_refuse_every_caller_they_do_not_serve() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(2).start().await.unwrap();
    let node = &net.nodes[0];
    let peer = "the node";

    // Its own client is served (the event does not exist: NOT_FOUND, not a refusal).
    let own = node
        .reporting()
        .unwrap()
        .get_event(get_request())
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::NotFound);

    // No client certificate at all.
    let anonymous = anonymous_channel(&node.local(), &node.client_identity.join("ca.pem"));
    let status = ReportingServiceClient::new(anonymous)
        .get_event(get_request())
        .await
        .unwrap_err();
    let ca_path = node.client_identity.join("ca.pem");
    let addr = node.local().to_string();
    let failure = explain_failure(&status, &addr, peer, &ca_path, None).await;
    assert!(
        matches!(&failure, Failure::Refused(s) if s.contains("requires a client certificate")),
        "{failure:?} from {status:?}"
    );

    // A certificate for the right principal, from another CA.
    let rogue_ca = Authority::new(NETWORK, 1).unwrap();
    let rogue_dir = net.dir().join("rogue");
    let issued = rogue_ca
        .issue(
            &Principal::facility(NETWORK, "facility-1"),
            Usage::Client,
            &[],
        )
        .unwrap();
    rogue_ca.write_identity(&rogue_dir, &issued).unwrap();
    std::fs::copy(
        node.client_identity.join("ca.pem"),
        rogue_dir.join("ca.pem"),
    )
    .unwrap();
    let status = ReportingServiceClient::new(channel(&node.local(), &rogue_dir))
        .get_event(get_request())
        .await
        .unwrap_err();
    let failure = explain_failure(&status, &addr, peer, &ca_path, Some(&rogue_dir)).await;
    assert!(
        matches!(&failure, Failure::Refused(s) if s.contains("unknown CA")),
        "{failure:?} from {status:?}"
    );

    // A partner calling a node's federation listener.
    let status = pb::aggregate_service_client::AggregateServiceClient::new(channel(
        &node.federation().unwrap(),
        &net.layout.partner_identity,
    ))
    .aggregate(aggregate_request("2026-01", "2026-01"))
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("spiffe://testnet/partner/analyst")
    );

    // A facility's own client calling its node's federation listener.
    let status = pb::aggregate_service_client::AggregateServiceClient::new(channel(
        &node.federation().unwrap(),
        &node.client_identity,
    ))
    .aggregate(aggregate_request("2026-01", "2026-01"))
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // One facility's client calling another facility's local listener.
    let status = ReportingServiceClient::new(channel(&net.nodes[1].local(), &node.client_identity))
        .get_event(get_request())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("spiffe://testnet/facility/facility-1")
    );

    // The gateway calling a node's local listener.
    let status = ReportingServiceClient::new(channel(&node.local(), &net.gateway_identity()))
        .get_event(get_request())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // And the gateway itself is served on the federation listener.
    net.aggregate_client(0)
        .await
        .unwrap()
        .aggregate(aggregate_request("2026-01", "2026-01"))
        .await
        .unwrap();
}

/// Issue 12, item 11: a refused client certificate is explained from the certificate itself.
/// On main a not-yet-valid certificate read "it has expired" and one without clientAuth "refused
/// our certificate as invalid".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_certificate_is_explained_as_not_yet_valid_or_not_for_clients() {
    use rcgen::ExtendedKeyUsagePurpose as Eku;
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).start().await.unwrap();
    let node = &net.nodes[0];
    let addr = node.local().to_string();
    let ca_path = node.client_identity.join("ca.pem");
    let facility = format!("spiffe://{NETWORK}/facility/facility-1");
    let explain = |name: &'static str, usages: &'static [Eku], from: (i32, u8, u8)| {
        let issued = issue_certificate(&net, &facility, usages, from, (2090, 1, 1));
        let dir = write_identity(&net, name, issued);
        let (addr, ca_path, node_local) = (addr.clone(), ca_path.clone(), node.local());
        async move {
            let status = ReportingServiceClient::new(channel(&node_local, &dir))
                .get_event(get_request())
                .await
                .unwrap_err();
            explain_failure(&status, &addr, "the node", &ca_path, Some(&dir)).await
        }
    };

    let failure = explain("future", &[Eku::ClientAuth], (2089, 1, 1)).await;
    assert!(
        matches!(&failure, Failure::Refused(s)
            if s.contains("not valid yet") && s.contains("2089") && !s.contains("has expired")),
        "{failure:?}"
    );
    let failure = explain("server-only", &[Eku::ServerAuth], (2020, 1, 1)).await;
    assert!(
        matches!(&failure, Failure::Refused(s) if s.contains("lacks clientAuth")),
        "{failure:?}"
    );
}
