//! `psonet health`, the command container probes run: a real gRPC health call over mTLS that
//! exits 0 only when the service is SERVING, and fails (with the reason) when the listener
//! refuses the caller or does not know the service.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;

fn health(addr: SocketAddr, identity: &Path, service: &str) -> Output {
    psonet(&[
        "health",
        "--addr",
        &addr.to_string(),
        "--identity",
        identity.to_str().unwrap(),
        "--service",
        service,
        "--timeout",
        "5",
    ])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_succeeds_only_for_a_serving_service_and_an_admitted_caller() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(1).start().await.unwrap();
    net.start_gateway(|c| c.fanout.node_deadline_ms = 1_000)
        .await
        .unwrap();
    let partner = net.layout.partner_identity.clone();
    let node = &net.nodes[0];

    // The probes of deploy/kubernetes: the gateway as a partner, the node as its facility.
    let ok = health(
        net.gateway_addr().unwrap(),
        &partner,
        "psonet.v1.BenchmarkService",
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "SERVING");
    for service in ["", "psonet.v1.ReportingService", "psonet.v1.BackupService"] {
        let ok = health(node.local(), &node.client_identity, service);
        assert!(ok.status.success(), "{service}: {}", stderr(&ok));
    }

    // A caller the listener does not admit, and a service it does not serve, fail.
    let refused = health(net.gateway_addr().unwrap(), &net.gateway_identity(), "");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("may not call"),
        "{}",
        stderr(&refused)
    );
    let unknown = health(
        node.local(),
        &node.client_identity,
        "psonet.v1.AggregateService",
    );
    assert!(!unknown.status.success());
    // A stopped server fails too.
    let addr = node.federation().unwrap();
    net.nodes[0].kill();
    let down = health(addr, &net.gateway_identity(), "");
    assert!(!down.status.success());
}
