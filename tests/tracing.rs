//! One benchmark is one trace: the gateway's fan-out span has one child per node call, and each
//! node's server span continues the trace as a child of that call — carried in gRPC metadata
//! (W3C `traceparent`) across real processes, exported over OTLP to an in-process collector.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::Span;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

/// A span as received, with the `service.name` of the process that sent it.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    span: Span,
}

/// The collector: keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let attributes = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            let service = string_attribute(&attributes, "service.name").unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| Received {
                    service: service.clone(),
                    span,
                }));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

async fn start_collector() -> (String, Collector) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let collector = Collector::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    (endpoint, collector)
}

async fn one_benchmark_is_one_trace_with_each_node_under_the_fan_out(reach: ReachOf) {
    psonet_serve::tls::install_crypto_provider();
    let (endpoint, collector) = start_collector().await;
    let exporting = launcher()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_TRACES_SAMPLER", "parentbased_always_on")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50");
    let mut net = network(3)
        .reach_each(reach)
        .servers(Servers::Processes(exporting))
        .start()
        .await
        .unwrap();
    assert_reach(&net);
    net.start_gateway(|config| {
        config.fanout.node_deadline_ms = 2_000;
        release_with_three_facilities(config);
    })
    .await
    .unwrap();
    let response = benchmark_this_month(&net).await;
    assert!(all_ok(&response.coverage), "{:?}", response.coverage);

    // Graceful shutdown flushes every process's exporter.
    net.stop_gateway()
        .await
        .expect("the gateway exits 0 after SIGTERM");
    for node in &mut net.nodes {
        node.stop().await.expect("the node exits 0 after SIGTERM");
    }
    // The network's start asks the gateway which nodes are linked before the benchmark: those
    // calls are traces of their own, not part of the benchmark's.
    let spans: Vec<Received> = wait_for_spans(&collector, 1 + 3 + 3 + 1)
        .await
        .into_iter()
        .filter(|r| r.span.name != "/psonet.v1.LinkService/ListLinks")
        .collect();

    let named = |service: &str, name: &str| -> Vec<Span> {
        spans
            .iter()
            .filter(|r| r.service == service && r.span.name == name)
            .map(|r| r.span.clone())
            .collect()
    };
    let benchmark = named(
        "psonet-gateway",
        "/psonet.v1.BenchmarkService/NetworkBenchmark",
    );
    assert_eq!(benchmark.len(), 1, "{spans:#?}");
    let fan_out = named("psonet-gateway", "fan_out");
    assert_eq!(fan_out.len(), 1);
    let fan_out = &fan_out[0];
    let trace = &fan_out.trace_id;
    assert_eq!(&benchmark[0].trace_id, trace);
    assert_eq!(fan_out.parent_span_id, benchmark[0].span_id);

    let calls = named("psonet-gateway", "node_call");
    let served = named("psonet-node", "/psonet.v1.AggregateService/Aggregate");
    assert_eq!((calls.len(), served.len()), (3, 3));
    for node in &net.nodes {
        let call = calls
            .iter()
            .find(|s| string_attribute(&s.attributes, "facility").as_deref() == Some(&node.id))
            .unwrap_or_else(|| panic!("no node_call span for {}", node.id));
        assert_eq!(&call.trace_id, trace);
        assert_eq!(call.parent_span_id, fan_out.span_id);

        let listener = format!("{} federation", node.id);
        let server = served
            .iter()
            .find(|s| string_attribute(&s.attributes, "psonet.listener") == Some(listener.clone()))
            .unwrap_or_else(|| panic!("no server span from {}", node.id));
        assert_eq!(&server.trace_id, trace, "{} is in the same trace", node.id);
        assert_eq!(
            server.parent_span_id, call.span_id,
            "{}'s span is a child of the gateway's call to it",
            node.id
        );
    }
    // Every span this benchmark produced belongs to its one trace.
    let traces: std::collections::BTreeSet<_> = spans.iter().map(|r| &r.span.trace_id).collect();
    assert_eq!(traces.len(), 1, "{spans:#?}");
}

async fn wait_for_spans(collector: &Collector, at_least: usize) -> Vec<Received> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let spans = collector.spans.lock().unwrap().clone();
        if spans.len() >= at_least || Instant::now() > until {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

crate::each_reach!(one_benchmark_is_one_trace_with_each_node_under_the_fan_out);
