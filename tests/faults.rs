//! Faults with real processes: a node killed (SIGKILL), frozen (SIGSTOP), slow, or serving an
//! expired certificate. In each case the benchmark returns within its deadline + 10 %, its
//! coverage names the failure, the node is no longer asked (its breaker is open, or it has no
//! link left to ask it over), and once the node is back the same gateway process uses it again.
//!
//! Each scenario runs with the gateway dialling the nodes and with every node dialling out. A
//! node that dials out and dies, freezes or is refused loses its link: the gateway finds a
//! killed node's link closed at once, a frozen node's by HTTP/2 keepalive within seconds (a
//! half-open link), a refused one never gets a link — and then says "not linked" at once,
//! without sending anything.

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

/// The longest a frozen node's link may stay up: the gateway's keepalive (a PING after 2 s of
/// silence, 3 s for its answer) and some slack for a loaded machine.
const HALF_OPEN_FOUND_WITHIN: Duration = Duration::from_secs(8);

/// A network of three nodes whose third has fixed ports, and a gateway.
async fn three_nodes_and_a_gateway(reach: ReachOf) -> Network {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).reach_each(reach).start().await.unwrap();
    assert_reach(&net);
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

/// Asserts the next benchmark is on time, the healthy facilities contribute, and the faulty
/// one's coverage names the fault (`status`, `words`).
async fn assert_first_fault(client: &Client, status: CoverageStatus, words: &str) {
    let (coverage, took) = benchmark(client).await;
    assert!(took < DEADLINE + DEADLINE / 10, "took {took:?}");
    let faulty = &coverage[FAULTY];
    assert_eq!(faulty.facility_id, "facility-3");
    assert_eq!(faulty.status, status as i32, "{faulty:?}");
    assert!(faulty.detail.contains(words), "{faulty:?}");
    assert!(all_ok(&coverage[..FAULTY]), "{coverage:?}");
}

/// Asserts the faulty facility's coverage while the fault lasts, over several benchmarks:
/// the first names the fault (`status`, `words`), later ones the open breaker; all are on time
/// and the healthy facilities keep contributing.
async fn assert_fault_reported(client: &Client, status: CoverageStatus, words: &str) {
    assert_first_fault(client, status, words).await;

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

/// For a node that dials out: benchmarks, each on time, until the faulty facility shows as not
/// linked — which must happen `within` — and from then on it is not asked at all: the
/// benchmark answers at once, saying so.
async fn assert_not_linked(client: &Client, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let (coverage, took) = benchmark(client).await;
        assert!(took < DEADLINE + DEADLINE / 10, "took {took:?}");
        assert!(all_ok(&coverage[..FAULTY]), "{coverage:?}");
        if coverage[FAULTY].detail.contains("not linked") {
            break;
        }
        assert!(Instant::now() < until, "still linked: {coverage:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        let (coverage, took) = benchmark(client).await;
        let faulty = &coverage[FAULTY];
        assert_eq!(
            faulty.status,
            CoverageStatus::Unavailable as i32,
            "{faulty:?}"
        );
        assert!(
            faulty.detail.contains("facility facility-3 is not linked"),
            "{faulty:?}"
        );
        assert!(
            took < DEADLINE / 2,
            "nothing to ask over: answered at once, took {took:?}"
        );
    }
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

async fn a_killed_node_is_reported_unavailable_and_used_again_after_its_restart(reach: ReachOf) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut net = three_nodes_and_a_gateway(reach).await;
    let pid = net.gateway_process().unwrap().pid();
    let client = net.benchmark_client().unwrap();
    assert!(all_ok(&benchmark(&client).await.0));

    net.nodes[FAULTY].kill();
    if net.nodes[FAULTY].reach().listens() {
        assert_fault_reported(
            &client,
            CoverageStatus::Unavailable,
            "refused the connection",
        )
        .await;
    } else {
        // The node's kernel closes the link: the gateway knows at once.
        assert_not_linked(&client, Duration::from_secs(2)).await;
    }

    net.nodes[FAULTY].start().await.unwrap();
    assert_used_again(&net, &client, pid).await;
}

async fn a_frozen_node_times_out_and_is_used_again_when_it_thaws(reach: ReachOf) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let net = three_nodes_and_a_gateway(reach).await;
    let pid = net.gateway_process().unwrap().pid();
    let client = net.benchmark_client().unwrap();
    assert!(all_ok(&benchmark(&client).await.0));

    net.nodes[FAULTY].signal("STOP").unwrap();
    let words = format!("did not answer within {} ms", DEADLINE.as_millis());
    if net.nodes[FAULTY].reach().listens() {
        assert_fault_reported(&client, CoverageStatus::TimedOut, &words).await;
    } else {
        // Half-open: the node's kernel still acknowledges, nothing answers. The benchmark
        // times the node out; keepalive then finds the link dead.
        assert_first_fault(&client, CoverageStatus::TimedOut, &words).await;
        assert_not_linked(&client, HALF_OPEN_FOUND_WITHIN).await;
    }

    net.nodes[FAULTY].signal("CONT").unwrap();
    assert_used_again(&net, &client, pid).await;
}

/// A TCP relay that holds every chunk the node sends for `delay` ms before passing it on —
/// the node's answers, whichever side dialled.
struct SlowLink {
    delay_ms: Arc<AtomicU64>,
    endpoint: String,
}

impl SlowLink {
    /// A relay to `to`. When the gateway dials the node through it, `to` is the node and its
    /// replies are held; when the node dials the gateway through it (`node_dials`), what the
    /// node sends to `to` is.
    async fn start(to: std::net::SocketAddr, node_dials: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("https://{}", listener.local_addr().unwrap());
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = delay_ms.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = TcpStream::connect(to).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (upstream_read, upstream_write) = upstream.into_split();
                let (to_upstream, to_client) = match node_dials {
                    true => (delay.clone(), Arc::new(AtomicU64::new(0))),
                    false => (Arc::new(AtomicU64::new(0)), delay.clone()),
                };
                tokio::spawn(relay(client_read, upstream_write, to_upstream));
                tokio::spawn(relay(upstream_read, client_write, to_client));
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

/// Keepalive that tolerates the relay's delays on a slow link (a slow node is alive: it is the
/// deadline's business, not keepalive's).
const PATIENT_KEEPALIVE_MS: u64 = 15_000;

async fn a_slow_node_counts_while_within_the_deadline_and_times_out_past_it(reach: ReachOf) {
    let _turn = ONE_AT_A_TIME.lock().await;
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).reach_each(reach).start().await.unwrap();
    assert_reach(&net);
    let link = match net.nodes[FAULTY].federation() {
        Some(federation) => {
            let link = SlowLink::start(federation, false).await;
            start_gateway(&mut net, Some(link.endpoint.clone())).await;
            link
        }
        None => {
            // The node dials the gateway's link listener through the relay.
            net.start_gateway(|config| {
                config.fanout.node_deadline_ms = DEADLINE.as_millis() as u64;
                release_with_three_facilities(config);
                config.fanout.breaker_failures = 2;
                config.fanout.breaker_backoff_ms = 200;
                config.fanout.breaker_max_backoff_ms = 400;
                config.links.keepalive_timeout_ms = PATIENT_KEEPALIVE_MS;
            })
            .await
            .unwrap();
            let to = net.gateway().unwrap().links().unwrap();
            let link = SlowLink::start(to, true).await;
            let node = &mut net.nodes[FAULTY];
            node.stop().await.unwrap();
            node.edit_config(|config| {
                let dial = config.gateway_link.as_mut().unwrap();
                dial.endpoint = link.endpoint.clone();
                dial.keepalive_timeout_ms = PATIENT_KEEPALIVE_MS;
            })
            .unwrap();
            node.start().await.unwrap();
            link
        }
    };
    let pid = net.gateway_process().unwrap().pid();
    let client = net.benchmark_client().unwrap();
    if net.nodes[FAULTY].reach().listens() {
        assert!(all_ok(&benchmark(&client).await.0));
    } else {
        // Restarted to dial through the relay: linked again within seconds.
        assert_used_again(&net, &client, pid).await;
    }

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

/// A certificate for facility-3's node from the network's CA, valid from `from` to `to`: it
/// serves the federation listener and is presented on links, as `pki` issues it.
fn node_certificate(net: &Network, from: (i32, u8, u8), to: (i32, u8, u8)) -> (String, String) {
    let uri = format!("spiffe://{NETWORK}/facility/facility-3");
    issue_certificate(
        net,
        &uri,
        &[
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ],
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

async fn a_node_with_an_expired_certificate_is_named_and_used_again_once_renewed(reach: ReachOf) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut net = three_nodes_and_a_gateway(reach).await;
    let pid = net.gateway_process().unwrap().pid();
    let client = net.benchmark_client().unwrap();
    assert!(all_ok(&benchmark(&client).await.0));

    let expired = node_certificate(&net, (2020, 1, 1), (2021, 1, 1));
    restart_with_certificate(&mut net, expired).await;
    if net.nodes[FAULTY].reach().listens() {
        assert_fault_reported(&client, CoverageStatus::Unavailable, "expired certificate").await;
    } else {
        // The gateway refuses the link in the handshake; the node's log says why.
        assert_not_linked(&client, Duration::from_secs(3)).await;
        let log = net.nodes[FAULTY].log();
        assert!(
            log.contains("cannot link: the gateway at")
                && log.contains("refused our certificate as expired or not yet valid"),
            "{log}"
        );
    }

    let year = Month::current().year() as i32;
    let renewed = node_certificate(&net, (year - 1, 1, 1), (year + 2, 1, 1));
    restart_with_certificate(&mut net, renewed).await;
    assert_used_again(&net, &client, pid).await;
}

crate::each_reach!(
    a_killed_node_is_reported_unavailable_and_used_again_after_its_restart,
    a_frozen_node_times_out_and_is_used_again_when_it_thaws,
    a_slow_node_counts_while_within_the_deadline_and_times_out_past_it,
    a_node_with_an_expired_certificate_is_named_and_used_again_once_renewed,
);
