//! Health and reflection on every listener, behind the listener's own access rule: the
//! federation listener describes nothing but aggregates, health and reflection.

mod common;

use common::*;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

/// The service names a listener lists through reflection v1.
async fn listed_services(channel: Channel) -> Result<Vec<String>, tonic::Status> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let response = stream.message().await?.expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    Ok(names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_serve_health_and_reflection_of_exactly_their_services() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(1).start().await.unwrap();
    net.start_gateway(|c| c.fanout.node_deadline_ms = 1_000)
        .await
        .unwrap();
    let node = &net.nodes[0];
    let as_gateway = channel(&node.federation().unwrap(), &net.gateway_identity());

    let federation = listed_services(as_gateway.clone()).await.unwrap();
    assert_eq!(
        federation,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "psonet.v1.AggregateService"
        ]
    );
    let local = listed_services(channel(&node.local(), &node.client_identity))
        .await
        .unwrap();
    assert!(
        local.contains(&"psonet.v1.ReportingService".to_string()),
        "{local:?}"
    );
    assert!(
        !local.contains(&"psonet.v1.AggregateService".to_string()),
        "{local:?}"
    );
    let gateway = listed_services(channel(
        &net.gateway_addr().unwrap(),
        &net.layout.partner_identity,
    ))
    .await
    .unwrap();
    assert!(
        gateway.contains(&"psonet.v1.BenchmarkService".to_string()),
        "{gateway:?}"
    );

    let health = HealthClient::new(as_gateway)
        .check(HealthCheckRequest {
            service: "psonet.v1.AggregateService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);

    // Reflection and health are behind the listener's access rule like everything else.
    let partner = channel(&node.federation().unwrap(), &net.layout.partner_identity);
    let refused = listed_services(partner.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = HealthClient::new(partner)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}
