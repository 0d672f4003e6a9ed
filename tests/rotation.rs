//! Certificate rotation without a restart: the gateway's certificate and key are replaced on
//! disk mid-run and SIGHUP is sent; new connections see the new certificate at once, benchmarks
//! running through the rotation never fail, and a node the gateway reconnects to after it
//! accepts the gateway's new client certificate (the same reloaded identity resolves both; the
//! swap itself is unit-tested in `psonet_serve::tls`).

mod common;

use common::*;
use psonet_core::month::Month;
use psonet_core::pb::{CoverageStatus, benchmark_service_client::BenchmarkServiceClient};
use psonet_serve::tls::ReloadableIdentity;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The certificate the gateway presents to a new connection.
async fn presented_certificate(net: &Network) -> CertificateDer<'static> {
    let identity = ReloadableIdentity::load(
        &psonet_serve::tls::TlsFiles {
            ca: net.layout.partner_identity.join("ca.pem"),
            cert: net.layout.partner_identity.join("cert.pem"),
            key: net.layout.partner_identity.join("key.pem"),
        },
        "partner",
    )
    .unwrap();
    let connector = tokio_rustls::TlsConnector::from(identity.client_config().unwrap());
    let tcp = tokio::net::TcpStream::connect(net.gateway_addr().unwrap())
        .await
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

fn pem_certificate(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// Benchmarks over a fresh connection each time until `stop`; returns (benchmarks, failures).
async fn benchmark_continuously(
    net_addr: std::net::SocketAddr,
    identity: std::path::PathBuf,
    stop: Arc<AtomicBool>,
) -> (u32, Vec<String>) {
    let (mut done, mut failures) = (0, Vec::new());
    while !stop.load(Ordering::SeqCst) {
        let mut client = BenchmarkServiceClient::new(channel(&net_addr, &identity));
        match client.network_benchmark(this_month_benchmark()).await {
            Ok(r) if all_ok(&r.get_ref().coverage) => {}
            Ok(r) => failures.push(format!("{:?}", r.into_inner().coverage)),
            Err(s) => failures.push(format!("{s:?}")),
        }
        done += 1;
    }
    (done, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_certificate_rotates_on_sighup_without_a_failed_call() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).start().await.unwrap();
    net.nodes[0].pin_ports().unwrap();
    net.start_gateway(|config| {
        config.fanout.node_deadline_ms = 2_000;
        release_with_three_facilities(config);
    })
    .await
    .unwrap();
    let gateway_dir = net.gateway_identity();
    let original = std::fs::read_to_string(gateway_dir.join("cert.pem")).unwrap();
    assert_eq!(
        presented_certificate(&net).await,
        pem_certificate(&original)
    );

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(benchmark_continuously(
        net.gateway_addr().unwrap(),
        net.layout.partner_identity.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let year = Month::current().year() as i32;
    let (cert, key) = issue_certificate(
        &net,
        &format!("spiffe://{NETWORK}/gateway"),
        &[
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ],
        (year - 1, 1, 1),
        (year + 1, 1, 1),
    );
    std::fs::write(gateway_dir.join("key.pem"), &key).unwrap();
    std::fs::write(gateway_dir.join("cert.pem"), &cert).unwrap();
    net.gateway_process().unwrap().signal("HUP").unwrap();

    let until = Instant::now() + Duration::from_secs(5);
    while presented_certificate(&net).await != pem_certificate(&cert) {
        assert!(
            Instant::now() < until,
            "the new certificate was never presented"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let (done, failures) = load.await.unwrap();
    assert!(done >= 5, "only {done} benchmarks ran");
    assert!(failures.is_empty(), "{failures:?}");

    // A node restarted after the rotation gets a new connection with the new client
    // certificate, and accepts it.
    net.nodes[0].kill();
    net.nodes[0].start().await.unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let response = benchmark_this_month(&net).await;
        if response.coverage[0].status == CoverageStatus::Ok as i32 {
            break;
        }
        assert!(Instant::now() < until, "{:?}", response.coverage[0]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(pem_certificate(&original), pem_certificate(&cert));
}
