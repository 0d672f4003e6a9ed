//! Metrics over the Prometheus text endpoint, and load shedding: RPC counts by status,
//! per-node fan-out latency by coverage status, breaker state; a gateway past its concurrency
//! limit refuses benchmarks with RESOURCE_EXHAUSTED at once instead of queueing, counts it, and
//! still answers health checks.

mod common;

use common::*;
use futures::future::join_all;
use psonet_core::pb;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

async fn start(net: &mut Network, max_concurrent: usize) -> SocketAddr {
    net.start_gateway(|config| {
        config.fanout.node_deadline_ms = 600;
        release_with_three_facilities(config);
        config.fanout.breaker_failures = 2;
        config.fanout.max_concurrent_benchmarks = max_concurrent;
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
    .unwrap();
    net.gateway().unwrap().metrics().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_rpcs_node_latency_and_breaker_state() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).start().await.unwrap();
    // Node 1 serves metrics too: restart it with `metrics_listen` set.
    net.nodes[0].stop().await.unwrap();
    let config = &net.nodes[0].config;
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(config, format!("metrics_listen = \"127.0.0.1:0\"\n{text}")).unwrap();
    net.nodes[0].start().await.unwrap();
    let node_metrics = net.nodes[0].metrics().unwrap();
    let month = psonet_core::month::Month::current().to_string();
    let events = (0..30)
        .map(|i| {
            let (category, harm) = (pb::EventCategory::Fall, pb::HarmLevel::Mild);
            event(&format!("m{i}"), &month, category, harm)
        })
        .collect();
    submit_all(&mut net.nodes[0].reporting().unwrap(), events).await;
    let metrics = start(&mut net, 64).await;
    let mut client = net.benchmark_client().unwrap();
    client
        .network_benchmark(this_month_benchmark())
        .await
        .unwrap();
    net.nodes[2].kill();
    for _ in 0..3 {
        client
            .network_benchmark(this_month_benchmark())
            .await
            .unwrap();
    }
    let text = scrape(metrics).await;
    for line in [
        "psonet_rpc_requests_total{rpc=\"/psonet.v1.BenchmarkService/NetworkBenchmark\",code=\"Ok\"} 4",
        "psonet_fanout_node_duration_seconds_count{facility=\"facility-1\",status=\"OK\"} 4",
        "psonet_fanout_node_duration_seconds_count{facility=\"facility-3\",status=\"OK\"} 1",
        "psonet_fanout_node_duration_seconds_count{facility=\"facility-3\",status=\"UNAVAILABLE\"} 3",
        "psonet_node_breaker_state{facility=\"facility-1\",state=\"closed\"} 1",
        "psonet_node_breaker_state{facility=\"facility-3\",state=\"open\"} 1",
        "psonet_node_breaker_state{facility=\"facility-3\",state=\"closed\"} 0",
        "psonet_fanout_suppressed_cells_total{facility=\"facility-1\"} 0",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    let text = scrape(node_metrics).await;
    for line in [
        "psonet_rpc_requests_total{rpc=\"/psonet.v1.AggregateService/Aggregate\",code=\"Ok\"} 4",
        "psonet_rpc_messages_received_total{rpc=\"/psonet.v1.ReportingService/SubmitEvents\"} 30",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_gateway_sheds_with_resource_exhausted_at_once() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).start().await.unwrap();
    let metrics = start(&mut net, 2).await;
    // A frozen node holds each benchmark for the whole deadline: two fill the gateway.
    net.nodes[1].signal("STOP").unwrap();
    let calls = (0..6).map(|_| {
        let mut client = net.benchmark_client().unwrap();
        async move {
            let started = Instant::now();
            let result = client.network_benchmark(this_month_benchmark()).await;
            (result.map(|_| ()).map_err(|s| s.code()), started.elapsed())
        }
    });
    // While the gateway is full, its health check is still answered.
    let health = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        HealthClient::new(channel(
            &net.gateway_addr().unwrap(),
            &net.layout.partner_identity,
        ))
        .check(HealthCheckRequest {
            service: "psonet.v1.BenchmarkService".into(),
        })
        .await
        .map(|r| r.into_inner().status)
    };
    let (outcomes, health) = tokio::join!(join_all(calls), health);
    net.nodes[1].signal("CONT").unwrap();
    assert_eq!(health.unwrap(), ServingStatus::Serving as i32);
    let shed: Vec<_> = outcomes
        .iter()
        .filter(|(r, _)| *r == Err(tonic::Code::ResourceExhausted))
        .collect();
    let served = outcomes.iter().filter(|(r, _)| r.is_ok()).count();
    assert!((1..=2).contains(&served), "{outcomes:?}");
    assert_eq!(shed.len() + served, 6, "{outcomes:?}");
    assert!(
        shed.iter()
            .all(|(_, took)| *took < Duration::from_millis(300)),
        "shedding is immediate: {outcomes:?}"
    );
    let text = scrape(metrics).await;
    let line = format!(
        "psonet_rpc_requests_total{{rpc=\"/psonet.v1.BenchmarkService/NetworkBenchmark\",code=\"ResourceExhausted\"}} {}",
        shed.len()
    );
    assert!(text.contains(&line), "missing {line} in\n{text}");
}
