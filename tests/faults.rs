//! Faults with real processes: a node killed (SIGKILL), frozen (SIGSTOP), slow, or serving an
//! expired certificate. In each case the benchmark returns within its deadline + 10 %, its
//! coverage names the failure, the breaker stops asking the node, and once the node is back the
//! same gateway process uses it again.

mod common;

use common::*;
use psonet_core::month::Month;
use psonet_core::pb::benchmark_service_client::BenchmarkServiceClient;
use psonet_core::pb::{CoverageStatus, FacilityCoverage};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::Channel;

/// A partner's benchmark client on one warm connection (clones share it).
type Client = BenchmarkServiceClient<Channel>;

const DEADLINE: Duration = Duration::from_millis(800);

/// The scenarios run one at a time: each times its benchmarks against the deadline, and four
/// networks of processes at once on a small machine would measure the machine, not the gateway.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// The facility every scenario breaks (index 2 of 3).
const FAULTY: usize = 2;

/// A network of three nodes whose third has fixed ports, and a gateway.
async fn three_nodes_and_a_gateway() -> Network {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).start().await.unwrap();
    net.nodes[FAULTY].pin_ports().unwrap();
    start_gateway(&mut net, None).await;
    net
}

/// A gateway with a short deadline and a quick breaker; `endpoint` may point it elsewhere for
/// the faulty node.
async fn start_gateway(net: &mut Network, endpoint: Option<String>) {
    net.start_gateway(|config| {
        config.fanout.node_deadline_ms = DEADLINE.as_millis() as u64;
        release_with_three_facilities(config);
        config.fanout.breaker_failures = 2;
        config.fanout.breaker_backoff_ms = 200;
        config.fanout.breaker_max_backoff_ms = 400;
        if let Some(endpoint) = endpoint {
            config.facilities[FAULTY].endpoint = Some(endpoint);
        }
    })
    .await
    .unwrap();
}

/// One benchmark for this month: its coverage and how long it took.
async fn benchmark(client: &Client) -> (Vec<FacilityCoverage>, Duration) {
    let started = Instant::now();
    let response = client
        .clone()
        .network_benchmark(this_month_benchmark())
        .await
        .expect("the benchmark answers whatever the nodes do")
        .into_inner();
    (response.coverage, started.elapsed())
}

/// Asserts the faulty facility's coverage while the fault lasts, over several benchmarks:
/// the first names the fault (`status`, `words`), later ones the open breaker; all are on time
/// and the healthy facilities keep contributing.
async fn assert_fault_reported(client: &Client, status: CoverageStatus, words: &str) {
    let (coverage, took) = benchmark(client).await;
    assert!(took < DEADLINE + DEADLINE / 10, "took {took:?}");
    let faulty = &coverage[FAULTY];
    assert_eq!(faulty.facility_id, "facility-3");
    assert_eq!(faulty.status, status as i32, "{faulty:?}");
    assert!(faulty.detail.contains(words), "{faulty:?}");
    assert!(all_ok(&coverage[..FAULTY]), "{coverage:?}");

    // The second failure opens the breaker; from then on the node is not asked at all.
    let (_, took) = benchmark(client).await;
    assert!(took < DEADLINE + DEADLINE / 10, "took {took:?}");
    let (coverage, took) = benchmark(client).await;
    let faulty = &coverage[FAULTY];
    assert_eq!(faulty.status, CoverageStatus::Unavailable as i32);
    assert!(faulty.detail.contains("not asked"), "{faulty:?}");
    assert!(faulty.detail.contains(words), "{faulty:?}");
    assert!(
        took < DEADLINE / 2,
        "an open breaker answers at once, took {took:?}"
    );
}

/// Benchmarks until the faulty facility contributes again (the breaker probes with backoff).
async fn assert_used_again(net: &Network, client: &Client, gateway_pid: u32) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (coverage, _) = benchmark(client).await;
        if all_ok(&coverage) {
            break;
        }
        assert!(Instant::now() < until, "node not used again: {coverage:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        net.gateway_process().unwrap().pid(),
        gateway_pid,
        "no restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_reported_unavailable_and_used_again_after_its_restart() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut net = three_nodes_and_a_gateway().await;
    let pid = net.gateway_process().unwrap().pid();
    let client = net.benchmark_client().unwrap();
    assert!(all_ok(&benchmark(&client).await.0));

    net.nodes[FAULTY].kill();
    assert_fault_reported(
        &client,
        CoverageStatus::Unavailable,
        "refused the connection",
    )
    .await;

    net.nodes[FAULTY].start().await.unwrap();
    assert_used_again(&net, &client, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_times_out_and_is_used_again_when_it_thaws() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let net = three_nodes_and_a_gateway().await;
    let pid = net.gateway_process().unwrap().pid();
    let client = net.benchmark_client().unwrap();
    assert!(all_ok(&benchmark(&client).await.0));

    net.nodes[FAULTY].signal("STOP").unwrap();
    let words = format!("did not answer within {} ms", DEADLINE.as_millis());
    assert_fault_reported(&client, CoverageStatus::TimedOut, &words).await;

    net.nodes[FAULTY].signal("CONT").unwrap();
    assert_used_again(&net, &client, pid).await;
}

/// A TCP relay that holds every chunk from the node for `delay` ms before passing it on.
struct SlowLink {
    delay_ms: Arc<AtomicU64>,
    endpoint: String,
}

impl SlowLink {
    async fn start(to: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("https://{}", listener.local_addr().unwrap());
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = delay_ms.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(node) = TcpStream::connect(to).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (node_read, node_write) = node.into_split();
                tokio::spawn(relay(client_read, node_write, Arc::new(AtomicU64::new(0))));
                tokio::spawn(relay(node_read, client_write, delay.clone()));
            }
        });
        Self { delay_ms, endpoint }
    }

    fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay_ms: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        let delay = delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_node_counts_while_within_the_deadline_and_times_out_past_it() {
    let _turn = ONE_AT_A_TIME.lock().await;
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).start().await.unwrap();
    let link = SlowLink::start(net.nodes[FAULTY].federation().unwrap()).await;
    start_gateway(&mut net, Some(link.endpoint.clone())).await;
    let pid = net.gateway_process().unwrap().pid();
    let client = net.benchmark_client().unwrap();
    assert!(all_ok(&benchmark(&client).await.0));

    // Slow but on time: it still contributes.
    link.set_delay(DEADLINE / 3);
    let (coverage, _) = benchmark(&client).await;
    assert!(all_ok(&coverage), "{coverage:?}");
    assert!(coverage[FAULTY].latency_ms >= (DEADLINE / 3).as_millis() as u32);

    // Slower than the deadline: timed out, on time.
    link.set_delay(DEADLINE * 2);
    let words = format!("did not answer within {} ms", DEADLINE.as_millis());
    assert_fault_reported(&client, CoverageStatus::TimedOut, &words).await;

    link.set_delay(Duration::ZERO);
    assert_used_again(&net, &client, pid).await;
}

/// A server certificate for facility-3's node from the network's CA, valid from `from` to `to`.
fn node_certificate(net: &Network, from: (i32, u8, u8), to: (i32, u8, u8)) -> (String, String) {
    let uri = format!("spiffe://{NETWORK}/facility/facility-3");
    issue_certificate(
        net,
        &uri,
        &[rcgen::ExtendedKeyUsagePurpose::ServerAuth],
        from,
        to,
    )
}

/// Replaces the faulty node's federation certificate and restarts it on the same ports.
async fn restart_with_certificate(net: &mut Network, (cert, key): (String, String)) {
    let dir = net.layout.out.join("facility-3").join("node");
    net.nodes[FAULTY].stop().await.unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    net.nodes[FAULTY].start().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_an_expired_certificate_is_named_and_used_again_once_renewed() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut net = three_nodes_and_a_gateway().await;
    let pid = net.gateway_process().unwrap().pid();
    let client = net.benchmark_client().unwrap();
    assert!(all_ok(&benchmark(&client).await.0));

    let expired = node_certificate(&net, (2020, 1, 1), (2021, 1, 1));
    restart_with_certificate(&mut net, expired).await;
    assert_fault_reported(&client, CoverageStatus::Unavailable, "expired certificate").await;

    let year = Month::current().year() as i32;
    let renewed = node_certificate(&net, (year - 1, 1, 1), (year + 2, 1, 1));
    restart_with_certificate(&mut net, renewed).await;
    assert_used_again(&net, &client, pid).await;
}
