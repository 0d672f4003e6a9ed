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

/// What reflection v1 answers to one request.
async fn reflect(
    channel: Channel,
    request: MessageRequest,
) -> Result<Option<MessageResponse>, tonic::Status> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    Ok(stream
        .message()
        .await?
        .expect("one response")
        .message_response)
}

/// The service names a listener lists through reflection v1.
async fn listed_services(channel: Channel) -> Result<Vec<String>, tonic::Status> {
    let response = reflect(channel, MessageRequest::ListServices(String::new())).await?;
    let Some(MessageResponse::ListServicesResponse(list)) = response else {
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
            "psonet.v1.AggregateService",
            "psonet.v1.GuidanceStatusService",
            "psonet.v1.PracticeOutcomeService",
            "psonet.v1.SecureAggregationService"
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

/// What reflection v1 answers to `describe <symbol>` (or a file by name): the names of the
/// files it sends back, or the status that refuses it.
async fn describe(channel: Channel, request: MessageRequest) -> Result<Vec<String>, tonic::Status> {
    use prost_reflect::prost::Message;
    match reflect(channel, request).await? {
        Some(MessageResponse::FileDescriptorResponse(files)) => Ok(files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                prost_reflect::prost_types::FileDescriptorProto::decode(bytes.as_slice())
                    .unwrap()
                    .name()
                    .to_string()
            })
            .collect()),
        Some(MessageResponse::ErrorResponse(e)) => Err(tonic::Status::new(
            Code::from_i32(e.error_code),
            e.error_message,
        )),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

/// Issue 12, item 4: reflection resolves only the listener's own services and the types they
/// reach. On main `describe psonet.v1.ReportingService` answered on the federation listener
/// (only `list` was scoped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_describes_nothing_of_another_listener() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(1).start().await.unwrap();
    net.start_gateway(|c| c.fanout.node_deadline_ms = 1_000)
        .await
        .unwrap();
    let node = &net.nodes[0];
    let symbol = |s: &str| MessageRequest::FileContainingSymbol(s.to_string());
    let file = |f: &str| MessageRequest::FileByFilename(f.to_string());

    let federation = channel(&node.federation().unwrap(), &net.gateway_identity());
    let own = describe(federation.clone(), symbol("psonet.v1.AggregateService"))
        .await
        .unwrap();
    assert!(
        own.contains(&"psonet/v1/aggregate.proto".to_string()),
        "{own:?}"
    );
    for foreign in [
        "psonet.v1.ReportingService",
        "psonet.v1.BenchmarkService",
        "psonet.v1.BackupService",
        "psonet.v1.InterventionService",
        "psonet.v1.Intervention",
        "psonet.v1.FacilityGuidanceService",
        "psonet.v1.GuidanceItem",
        "psonet.v1.Event",
        "psonet.v1.SubmitEventsResponse",
    ] {
        let refused = describe(federation.clone(), symbol(foreign)).await;
        assert_eq!(
            refused.as_ref().map_err(tonic::Status::code),
            Err(Code::NotFound),
            "{foreign} described on the federation listener: {refused:?}"
        );
    }
    for foreign in ["psonet/v1/reporting.proto", "psonet/v1/event.proto"] {
        let refused = describe(federation.clone(), file(foreign)).await;
        assert!(refused.is_err(), "{foreign} served: {refused:?}");
    }

    let local = channel(&node.local(), &node.client_identity);
    describe(local.clone(), symbol("psonet.v1.ReportingService"))
        .await
        .unwrap();
    let refused = describe(local, symbol("psonet.v1.AggregateService")).await;
    assert!(refused.is_err(), "{refused:?}");

    let gateway = channel(&net.gateway_addr().unwrap(), &net.layout.partner_identity);
    describe(gateway.clone(), symbol("psonet.v1.BenchmarkService"))
        .await
        .unwrap();
    let refused = describe(gateway, symbol("psonet.v1.ReportingService")).await;
    assert!(refused.is_err(), "{refused:?}");
    net.shutdown().await.unwrap();
}
