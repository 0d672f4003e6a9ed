//! A node answering for another facility (issue 12, item 1): the gateway checks every node's
//! certificate against the facility its registry entry names, so a registry entry that reaches
//! facility-1's listener under facility-5's id counts nobody twice, and coverage says why.

mod common;

use common::*;
use psonet::synth::SynthOptions;
use psonet_core::month::Month;
use psonet_core::pb::{self, CoverageStatus};

fn coverage_of<'a>(
    response: &'a pb::NetworkBenchmarkResponse,
    id: &str,
) -> &'a pb::FacilityCoverage {
    response
        .coverage
        .iter()
        .find(|c| c.facility_id == id)
        .unwrap_or_else(|| panic!("no coverage for {id}: {:?}", response.coverage))
}

/// The most facilities any released row counts.
fn most_contributing(response: &pb::NetworkBenchmarkResponse) -> u32 {
    response
        .rows
        .iter()
        .filter(|r| !r.withheld)
        .map(|r| r.contributing_facilities)
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_answering_for_another_facility_is_refused_and_counted_once() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(5).start().await.unwrap();
    let month = Month::current();
    net.load_synthetic(|i, _| SynthOptions {
        events: 800,
        months: 1,
        last_month: month,
        key_prefix: format!("f{i}"),
        beds: 200 + 50 * i as u32,
        seed: 40 + i as u64,
    })
    .await
    .unwrap();

    // Honest registry: five facilities answer and rows are released with all five.
    net.start_gateway(|_| {}).await.unwrap();
    let honest = benchmark_this_month(&net).await;
    assert!(all_ok(&honest.coverage), "{:?}", honest.coverage);
    assert_eq!(most_contributing(&honest), 5, "{:?}", honest.rows);

    // The registry's entry for facility-5 points at facility-1's federation listener. Its
    // certificate is valid for the host dialled (127.0.0.1), so TLS alone accepts it; on main
    // the gateway counted facility-1 twice and released rows "from five facilities".
    // On the secure path (the default) four usable masking keys are too few for a cohort of
    // five: the benchmark is refused, naming the impostor, and nothing is released.
    net.start_gateway(|config| {
        config.facilities[4].endpoint = config.facilities[0].endpoint.clone();
    })
    .await
    .unwrap();
    let refused = net
        .benchmark_client()
        .unwrap()
        .network_benchmark(this_month_benchmark())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    for words in [
        "4 members have a usable masking key; at least 5 are needed",
        "presented the certificate of spiffe://testnet/facility/facility-1",
    ] {
        assert!(
            refused.message().contains(words),
            "{words:?} not in {refused:?}"
        );
    }
    // On the node-suppressed path the impostor is refused in coverage and counted once.
    net.start_gateway(|config| {
        config.facilities[4].endpoint = config.facilities[0].endpoint.clone();
        node_suppressed_sums(config);
    })
    .await
    .unwrap();
    let hostile = benchmark_this_month(&net).await;
    let impostor = coverage_of(&hostile, "facility-5");
    assert_eq!(
        impostor.status,
        CoverageStatus::Error as i32,
        "{impostor:?}"
    );
    for words in [
        "presented the certificate of spiffe://testnet/facility/facility-1",
        "where spiffe://testnet/facility/facility-5 was expected",
        "the registry's endpoint for facility-5 reaches another node",
    ] {
        assert!(
            impostor.detail.contains(words),
            "{words:?} not in {impostor:?}"
        );
    }
    let answered = hostile
        .coverage
        .iter()
        .filter(|c| c.status == CoverageStatus::Ok as i32)
        .count();
    assert_eq!(answered, 4, "{:?}", hostile.coverage);
    // Four distinct facilities answered: nothing that needs five is released.
    assert_eq!(most_contributing(&hostile), 0, "{:?}", hostile.rows);
    assert!(
        hostile.rows.iter().all(|r| r.withheld),
        "{:?}",
        hostile.rows
    );
    net.shutdown().await.unwrap();
}

/// Issue 12, item 3: exactly one URI SAN per identity. A client certificate naming the gateway
/// and a facility is refused by the federation listener, and a node whose certificate names two
/// facilities is refused by the gateway. On main the first URI won: the client was served as
/// the gateway, and the node counted as its first facility.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_with_two_uri_sans_is_refused_on_both_sides() {
    use rcgen::ExtendedKeyUsagePurpose as Eku;
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).start().await.unwrap();
    let year = Month::current().year() as i32;
    let (gateway, facility_1, facility_2) = (
        format!("spiffe://{NETWORK}/gateway"),
        format!("spiffe://{NETWORK}/facility/facility-1"),
        format!("spiffe://{NETWORK}/facility/facility-2"),
    );

    // Server side: a client presenting gateway + facility-1.
    let issued = issue_certificate_with_uris(
        &net,
        &[&gateway, &facility_1],
        &[Eku::ClientAuth],
        (year - 1, 1, 1),
        (year + 1, 1, 1),
    );
    let dir = write_identity(&net, "two-uris", issued);
    let status = pb::aggregate_service_client::AggregateServiceClient::new(channel(
        &net.nodes[0].federation().unwrap(),
        &dir,
    ))
    .aggregate(aggregate_request("2026-01", "2026-01"))
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("exactly one"), "{status:?}");

    // Client side: the node restarts on a certificate naming facility-1 and facility-2.
    let node_dir = net.layout.out.join("facility-1").join("node");
    net.nodes[0].pin_ports().unwrap();
    net.nodes[0].stop().await.unwrap();
    let (cert, key) = issue_certificate_with_uris(
        &net,
        &[&facility_1, &facility_2],
        &[Eku::ServerAuth],
        (year - 1, 1, 1),
        (year + 1, 1, 1),
    );
    std::fs::write(node_dir.join("cert.pem"), &cert).unwrap();
    std::fs::write(node_dir.join("key.pem"), &key).unwrap();
    // The node itself refuses to run on it: its masking keys are signed with this certificate.
    let refused = net.nodes[0].start().await.unwrap_err().to_string();
    assert!(refused.contains("exactly one"), "{refused}");
    // A hostile node that runs anyway (modified software) is refused by the gateway.
    let _hostile =
        serve_tls_only(net.nodes[0].federation().expect("it listened"), &cert, &key).await;
    net.start_gateway(release_with_three_facilities)
        .await
        .unwrap();
    let response = benchmark_this_month(&net).await;
    let coverage = coverage_of(&response, "facility-1");
    assert_eq!(
        coverage.status,
        CoverageStatus::Error as i32,
        "{coverage:?}"
    );
    assert!(
        coverage.detail.contains("names no psonet identity")
            && coverage.detail.contains("exactly one"),
        "{coverage:?}"
    );
    net.shutdown().await.unwrap();
}

/// A TLS server at `addr` presenting `cert` — the handshake is all the gateway gets to check.
async fn serve_tls_only(
    addr: std::net::SocketAddr,
    cert: &str,
    key: &str,
) -> tokio::task::JoinHandle<()> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    })
}
