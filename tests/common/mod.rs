//! What the end-to-end tests share. Their networks start with the builder `psonet demo` and the
//! measurements use ([`psonet::network`]): certificates from `pki init`, then
//! `psonet node --config …` and `psonet gateway --config …` as real processes on loopback.

// Each test file uses a part of what is here.
#![allow(dead_code, unused_imports)]

pub mod raw;

pub use psonet::network::{Launcher, Network, NetworkBuilder, Node, Reach, ServerProcess, Servers};
use psonet_core::pb::{self, reporting_service_client::ReportingServiceClient};
use psonet_gateway::GatewayConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tonic::transport::Channel;

/// The trust domain of every test network.
pub const NETWORK: &str = "testnet";

/// Servers from the `psonet` binary cargo built for these tests, each logging at `info` to a
/// file of its own in the network's directory.
pub fn launcher() -> Launcher {
    Launcher::new(env!("CARGO_BIN_EXE_psonet")).log_files()
}

/// A network of `facilities` nodes named `facility-1`…, every server a real `psonet` process.
pub fn network(facilities: usize) -> NetworkBuilder {
    Network::builder(NETWORK)
        .facilities(facilities)
        .servers(Servers::Processes(launcher()))
}

/// Node `i`'s reach in a scenario (a plain function, so the same scenario can run all
/// listening, all dialling out, or mixed).
pub type ReachOf = fn(usize) -> Reach;

/// Every node listens; the gateway dials them.
pub fn listening(_: usize) -> Reach {
    Reach::Listens
}

/// Every node dials out to the gateway and binds no federation listener.
pub fn dialling_out(_: usize) -> Reach {
    Reach::DialsOut
}

/// Runs each named scenario (an `async fn(ReachOf)`) twice, as `<scenario>::listening` with
/// the gateway dialling the nodes' federation listeners and as `<scenario>::dialling_out` with
/// every node dialling out to the gateway instead: the suite's scenarios hold whichever side
/// dials.
#[macro_export]
macro_rules! each_reach {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn listening() {
                super::$scenario($crate::common::listening).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dialling_out() {
                super::$scenario($crate::common::dialling_out).await
            }
        }
    )*};
}

/// Asserts each node's ports match its reach: a node that dials out listens on its local
/// port (and metrics) only — no federation port is open — and one that listens has its
/// federation port open.
pub fn assert_reach(net: &Network) {
    for node in &net.nodes {
        let Some(process) = node.process() else {
            continue;
        };
        let open = process
            .listening_ports()
            .expect("the node's listening ports");
        let mut expected = std::collections::BTreeSet::from([node.local().port()]);
        expected.extend(node.metrics().map(|m| m.port()));
        expected.extend(node.federation().map(|f| f.port()));
        assert_eq!(open, expected, "node {} listens on", node.id);
        assert_eq!(
            node.federation().is_some(),
            node.reach().listens(),
            "node {}",
            node.id
        );
    }
}

/// Runs the `psonet` command line and returns what it did.
pub fn psonet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_psonet"))
        .args(args)
        .output()
        .expect("run psonet")
}

/// A certificate and key (PEM) for `uri` and the loopback host names, issued by the network's
/// CA (read back from `ca.pem` and `ca.key`), valid from `from` to `to` (y, m, d).
pub fn issue_certificate(
    net: &Network,
    uri: &str,
    usages: &[rcgen::ExtendedKeyUsagePurpose],
    from: (i32, u8, u8),
    to: (i32, u8, u8),
) -> (String, String) {
    issue_certificate_with_uris(net, &[uri], usages, from, to)
}

/// As [`issue_certificate`], with every one of `uris` as a URI SAN (the first is its name).
pub fn issue_certificate_with_uris(
    net: &Network,
    uris: &[&str],
    usages: &[rcgen::ExtendedKeyUsagePurpose],
    from: (i32, u8, u8),
    to: (i32, u8, u8),
) -> (String, String) {
    let read = |name: &str| std::fs::read_to_string(net.layout.out.join(name)).unwrap();
    let ca_key = rcgen::KeyPair::from_pem(&read("ca.key")).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&read("ca.pem"), ca_key).unwrap();
    let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let mut params = rcgen::CertificateParams::new(hosts).unwrap();
    for uri in uris {
        params
            .subject_alt_names
            .push(rcgen::SanType::URI((*uri).try_into().unwrap()));
    }
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, uris[0]);
    params.extended_key_usages = usages.to_vec();
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// This month's benchmark, asked as the partner on a new connection.
pub async fn benchmark_this_month(net: &Network) -> pb::NetworkBenchmarkResponse {
    net.benchmark_client()
        .unwrap()
        .network_benchmark(this_month_benchmark())
        .await
        .expect("the benchmark answers")
        .into_inner()
}

/// An identity directory `name` in the network's directory, holding the network's CA and this
/// certificate and key (PEM), for a client the tests make up.
pub fn write_identity(net: &Network, name: &str, (cert, key): (String, String)) -> PathBuf {
    let dir = net.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(net.layout.out.join("ca.pem"), dir.join("ca.pem")).unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    dir
}

/// `GET /metrics` from a Prometheus endpoint: the whole HTTP answer, which must be 200 OK.
pub async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    text
}

/// An mTLS channel to `addr` with the identity directory `identity`.
pub fn channel(addr: &SocketAddr, identity: &Path) -> Channel {
    psonet::client::channel(&addr.to_string(), identity).expect("channel")
}

/// An mTLS-less channel to `addr`: it trusts the CA in `ca` (a PEM file) but presents no
/// client certificate.
pub fn anonymous_channel(addr: &SocketAddr, ca: &Path) -> Channel {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let ca = std::fs::read(ca).expect("read the CA");
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("an address")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("127.0.0.1"),
        )
        .expect("TLS setup")
        .connect_lazy()
}

/// A minimal valid event.
pub fn event(
    key: &str,
    month: &str,
    category: pb::EventCategory,
    harm: pb::HarmLevel,
) -> pb::Event {
    pb::Event {
        idempotency_key: key.into(),
        cf_version: 0,
        event_type: pb::EventType::Incident as i32,
        categories: vec![category as i32],
        harm: harm as i32,
        discovery_month: month.into(),
        unit_type: pb::UnitType::Medical as i32,
        narrative: format!("test event {key}"),
        ..Default::default()
    }
}

/// Streams `events` to a node and returns the summary.
pub async fn submit_all(
    client: &mut ReportingServiceClient<Channel>,
    events: Vec<pb::Event>,
) -> pb::SubmitEventsResponse {
    psonet::client::submit::stream(client, events)
        .await
        .expect("submit_events")
}

/// Total events in the released cells of an aggregate, and the number of suppressed cells.
pub fn released_total(response: &pb::AggregateResponse) -> (u64, usize) {
    let total = response.cells.iter().map(|c| c.count).sum();
    let suppressed = response.cells.iter().filter(|c| c.suppressed).count();
    (total, suppressed)
}

/// An aggregate of the months `from` to `to` by category and harm.
pub fn aggregate_request(from: &str, to: &str) -> pb::AggregateRequest {
    pb::AggregateRequest {
        month_from: from.into(),
        month_to: to.into(),
        group_by: vec![pb::Dimension::Category as i32, pb::Dimension::Harm as i32],
        ..Default::default()
    }
}

/// Lets a network of three facilities — the smallest the release rule can be set to — release
/// figures, for tests of the fan-out (client stack, breaker, metrics, traces, rotation) that need
/// only a few nodes: the gateway sums node-suppressed answers, as before secure aggregation
/// (whose cohorts the nodes refuse below five members unless configured otherwise).
pub fn release_with_three_facilities(config: &mut GatewayConfig) {
    config.disclosure.min_facilities = 3;
    node_suppressed_sums(config);
}

/// The gateway sums node-suppressed answers instead of opening a secure sum.
pub fn node_suppressed_sums(config: &mut GatewayConfig) {
    config.disclosure.network_sums = psonet_gateway::config::NetworkSums::NodeSuppressed;
}

/// Each cell of an answer grouped by harm as (harm, count, suppressed).
pub fn harm_cells(answer: &pb::AggregateResponse) -> Vec<(i32, u64, bool)> {
    answer
        .cells
        .iter()
        .map(|c| (c.harm, c.count, c.suppressed))
        .collect()
}

/// A benchmark of this month, all categories.
pub fn this_month_benchmark() -> pb::NetworkBenchmarkRequest {
    let month = psonet_core::month::Month::current().to_string();
    pb::NetworkBenchmarkRequest {
        month_from: month.clone(),
        month_to: month,
        categories: vec![],
        ..Default::default()
    }
}

/// Whether every facility answered.
pub fn all_ok(coverage: &[pb::FacilityCoverage]) -> bool {
    coverage
        .iter()
        .all(|c| c.status == pb::CoverageStatus::Ok as i32)
}
