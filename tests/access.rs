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
        &node.federation(),
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
        &node.federation(),
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
        .unwrap()
        .aggregate(aggregate_request("2026-01", "2026-01"))
        .await
        .unwrap();
}
