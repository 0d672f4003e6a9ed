//! Outbound links with real processes: nodes that dial out to the gateway and open no inbound
//! port, a gateway that crashes and comes back, refused certificates, two gateway replicas
//! behind one name and a replica roll, certificate rotation, and what operators see (metrics,
//! `psonet links`, `psonet health`).
//!
//! The replicas are two loopback addresses (127.0.0.2 and 127.0.0.3) behind one name in a hosts
//! file the nodes read before DNS (`gateway_link.hosts_file`), as a headless Service's name
//! resolves to its pods.

mod common;

use common::*;
use psonet_core::month::Month;
use psonet_core::pb;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// The links `addr` lists, asked as `identity`.
async fn links(addr: &str, identity: &Path) -> Vec<pb::Link> {
    psonet::links::list(addr, identity, Duration::from_secs(5))
        .await
        .expect("ListLinks answers")
        .links
}

/// The links node `i` holds, from its local listener.
async fn node_links(net: &Network, i: usize) -> Vec<pb::Link> {
    let node = &net.nodes[i];
    links(&node.local().to_string(), &node.client_identity).await
}

/// Waits until every node holds exactly `count` links up (to gateway addresses).
async fn wait_for_node_links(net: &Network, count: usize, within: Duration) {
    let until = Instant::now() + within;
    for i in 0..net.nodes.len() {
        loop {
            let held = node_links(net, i).await;
            if held.iter().filter(|l| l.up).count() == count && held.len() == count {
                break;
            }
            assert!(Instant::now() < until, "node {i} holds {held:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_is_linked_again_by_every_node_and_answers_within_ten_seconds() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(5).reach(Reach::DialsOut).start().await.unwrap();
    assert_reach(&net);
    let with_metrics = |config: &mut psonet_gateway::GatewayConfig| {
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    };
    net.start_gateway(with_metrics).await.unwrap();
    assert!(all_ok(&benchmark_this_month(&net).await.coverage));

    net.kill_gateway().await.unwrap();
    let restarted = Instant::now();
    net.start_gateway(with_metrics).await.unwrap();
    let response = benchmark_this_month(&net).await;
    let took = restarted.elapsed();
    assert!(all_ok(&response.coverage), "{:?}", response.coverage);
    assert!(
        took < Duration::from_secs(10),
        "restart, every node re-linked and a benchmark answered took {took:?}"
    );

    // The gateway lists every facility linked; each node counts one reconnect.
    let gateway = net.gateway_addr().unwrap().to_string();
    let listed = links(&gateway, &net.layout.partner_identity).await;
    let linked: Vec<&str> = listed
        .iter()
        .filter(|l| l.up)
        .map(|l| l.facility_id.as_str())
        .collect();
    assert_eq!(
        linked,
        [
            "facility-1",
            "facility-2",
            "facility-3",
            "facility-4",
            "facility-5"
        ]
    );
    assert!(listed.iter().all(|l| l.since.is_some()));
    for i in 0..net.nodes.len() {
        let held = node_links(&net, i).await;
        assert_eq!(held.len(), 1, "{held:?}");
        assert!(held[0].up && held[0].reconnects >= 1, "{held:?}");
    }
    let text = scrape(net.gateway().unwrap().metrics().unwrap()).await;
    for line in [
        "psonet_links_up{facility=\"facility-1\"} 1",
        "psonet_link_reconnects_total{facility=\"facility-5\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("psonet_link_age_seconds{facility=\"facility-3\"} ")),
        "{text}"
    );
}

/// A client that dials the gateway's link listener with `cert` and `key` (PEM), trusting the
/// network CA: `Ok` once the gateway sends its first frame, else the refusal in words.
async fn dial_link(net: &Network, cert: &str, key: &str) -> Result<(), String> {
    let ca = std::fs::read(net.layout.out.join("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let link = net.gateway().unwrap().links().unwrap();
    let tcp = tokio::net::TcpStream::connect(link).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut first = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut first)).await {
        Ok(Ok(n)) if n > 0 => Ok(()),
        Ok(Ok(_)) => Err("closed without a frame".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no frame within 5 s".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_from_another_ca_or_an_unregistered_facility_is_refused_at_the_first_frame() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).reach(Reach::DialsOut).start().await.unwrap();
    // The registry lists facilities 1 and 2 only: facility-3's own node is refused too.
    net.start_gateway(|config| {
        config.facilities.truncate(2);
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
    .unwrap();
    let year = Month::current().year() as i32;
    let valid = ((year - 1, 1, 1), (year + 1, 1, 1));
    let usage = [rcgen::ExtendedKeyUsagePurpose::ClientAuth];

    // A registered facility's certificate from the network CA gets the gateway's first frame.
    let uri = format!("spiffe://{NETWORK}/facility/facility-1");
    let (cert, key) = issue_certificate(&net, &uri, &usage, valid.0, valid.1);
    dial_link(&net, &cert, &key)
        .await
        .expect("a registered facility may link");

    // The same facility, from a CA the network does not trust.
    let other = tempfile::tempdir().unwrap();
    psonet::pki::init(&psonet::pki::InitOptions {
        network: NETWORK.into(),
        out: other.path().join("pki"),
        facilities: vec!["facility-1".into()],
        hosts: Vec::new(),
        base_port: None,
        years: 1,
    })
    .unwrap();
    let rogue = other.path().join("pki/facility-1/node");
    let read = |name: &str| std::fs::read_to_string(rogue.join(name)).unwrap();
    let refused = dial_link(&net, &read("cert.pem"), &read("key.pem"))
        .await
        .unwrap_err();
    assert!(refused.contains("UnknownCA"), "{refused}");

    // A certificate from the network CA for a facility the registry does not list.
    let uri = format!("spiffe://{NETWORK}/facility/intruder");
    let (cert, key) = issue_certificate(&net, &uri, &usage, valid.0, valid.1);
    let refused = dial_link(&net, &cert, &key).await.unwrap_err();
    assert!(refused.contains("AccessDenied"), "{refused}");

    // A real node of an unlisted facility: refused, and both sides say so. The gateway's
    // security log has a line per refusal, naming who and why.
    let line_with = |who: &str, reason: &str| {
        let log = std::fs::read_to_string(net.dir().join("gateway.log")).unwrap();
        let found = log.lines().any(|l| {
            l.contains("WARN")
                && l.contains("listener=links")
                && l.contains(who)
                && l.contains(&format!("reason=\"{reason}\""))
        });
        (found, log)
    };
    let logged = Instant::now() + Duration::from_secs(3);
    for (who, reason) in [
        ("spiffe://testnet/facility/facility-3", "not_admitted"),
        ("spiffe://testnet/facility/intruder", "not_admitted"),
        ("spiffe://testnet/facility/facility-1", "unknown_ca"),
    ] {
        // The refusal is written as the handshake fails, a moment after the client sees it.
        loop {
            let (found, log) = line_with(who, reason);
            if found {
                break;
            }
            assert!(
                Instant::now() < logged,
                "no {reason} line for {who} in\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let node_log = net.nodes[2].log();
    assert!(
        node_log.contains("cannot link") && node_log.contains("access denied"),
        "{node_log}"
    );
    let held = node_links(&net, 2).await;
    assert!(
        held.len() == 1 && !held[0].up && held[0].last_error.contains("access denied"),
        "{held:?}"
    );
    let text = scrape(net.gateway().unwrap().metrics().unwrap()).await;
    let refusals = |reason: &str| {
        let prefix = format!(
            "psonet_refusals_total{{listener=\"links\",stage=\"handshake\",reason=\"{reason}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(refusals("not_admitted") >= 2, "{text}");
    assert!(refusals("unknown_ca") >= 1, "{text}");
    // The gateway holds links from the registered facilities only.
    let gateway = net.gateway_addr().unwrap().to_string();
    let listed = links(&gateway, &net.layout.partner_identity).await;
    let linked: Vec<(&str, bool)> = listed
        .iter()
        .map(|l| (l.facility_id.as_str(), l.up))
        .collect();
    assert_eq!(linked, [("facility-1", true), ("facility-2", true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_replicas_behind_one_name_each_answer_for_every_node_and_roll() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).reach(Reach::DialsOut).start().await.unwrap();
    assert_reach(&net);
    net.start_replicas(2, release_with_three_facilities)
        .await
        .unwrap();
    // Each node resolved the name to both replicas and holds one link to each.
    wait_for_node_links(&net, 2, Duration::from_secs(10)).await;
    let addresses: Vec<String> = node_links(&net, 0)
        .await
        .iter()
        .map(|l| l.peer_address.clone())
        .collect();
    assert_eq!(
        addresses,
        [
            net.gateways()[0].links().unwrap().to_string(),
            net.gateways()[1].links().unwrap().to_string()
        ]
    );
    for k in 0..2 {
        let response = net
            .benchmark_client_of(k)
            .unwrap()
            .network_benchmark(this_month_benchmark())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.coverage.len(), 3);
        assert!(
            all_ok(&response.coverage),
            "replica {k}: {:?}",
            response.coverage
        );
    }

    // A rollout replaces replica 1 by one on a new address: the nodes follow the name.
    let rolled_from = net.gateways()[0].links().unwrap();
    net.roll_replica(0, release_with_three_facilities)
        .await
        .unwrap();
    let rolled_to = net.gateways()[0].links().unwrap();
    assert_ne!(rolled_from, rolled_to);
    wait_for_node_links(&net, 2, Duration::from_secs(10)).await;
    for i in 0..net.nodes.len() {
        let held: Vec<String> = node_links(&net, i)
            .await
            .iter()
            .map(|l| l.peer_address.clone())
            .collect();
        assert!(!held.contains(&rolled_from.to_string()), "{held:?}");
        assert!(held.contains(&rolled_to.to_string()), "{held:?}");
    }
    for k in 0..2 {
        let response = net
            .benchmark_client_of(k)
            .unwrap()
            .network_benchmark(this_month_benchmark())
            .await
            .unwrap()
            .into_inner();
        assert!(
            all_ok(&response.coverage),
            "replica {k}: {:?}",
            response.coverage
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rotated_with_sighup_is_presented_on_the_next_link() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).reach(Reach::DialsOut).start().await.unwrap();
    net.start_gateway(release_with_three_facilities)
        .await
        .unwrap();
    let gateway = net.gateway_addr().unwrap().to_string();
    let until = |facility: &str, listed: &[pb::Link]| {
        listed
            .iter()
            .find(|l| l.facility_id == facility && l.up)
            .and_then(|l| l.peer_certificate_not_after.as_ref())
            .map(|t| t.seconds)
    };
    let before = until(
        "facility-1",
        &links(&gateway, &net.layout.partner_identity).await,
    );

    // A new certificate with a later end of validity, reloaded on SIGHUP.
    let year = Month::current().year() as i32;
    let uri = format!("spiffe://{NETWORK}/facility/facility-1");
    let usage = [
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let (cert, key) = issue_certificate(&net, &uri, &usage, (year - 1, 1, 1), (year + 5, 1, 1));
    let dir = net.layout.out.join("facility-1").join("node");
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    net.nodes[0].signal("HUP").unwrap();
    let reloaded = Instant::now() + Duration::from_secs(5);
    while !net.nodes[0].log().contains("certificate reloaded") {
        assert!(Instant::now() < reloaded, "{}", net.nodes[0].log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The link already open keeps the certificate it was made with.
    let listed = links(&gateway, &net.layout.partner_identity).await;
    assert_eq!(until("facility-1", &listed), before);

    // The next link (the gateway restarts) presents the new one.
    net.kill_gateway().await.unwrap();
    net.start_gateway(release_with_three_facilities)
        .await
        .unwrap();
    let gateway = net.gateway_addr().unwrap().to_string();
    let listed = links(&gateway, &net.layout.partner_identity).await;
    let after = until("facility-1", &listed).expect("facility-1 is linked");
    assert!(after > before.unwrap_or(0) + 3 * 365 * 86_400, "{listed:?}");
    assert!(all_ok(&benchmark_this_month(&net).await.coverage));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psonet_links_and_health_list_linked_facilities_for_pso_staff_only() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3)
        .reach_each(|i| {
            if i == 2 {
                Reach::Listens
            } else {
                Reach::DialsOut
            }
        })
        .start()
        .await
        .unwrap();
    assert_reach(&net);
    net.start_gateway(release_with_three_facilities)
        .await
        .unwrap();
    let gateway = net.gateway_addr().unwrap().to_string();
    let partner = net.layout.partner_identity.to_str().unwrap().to_string();
    let listed = psonet(&["links", "--addr", &gateway, "--identity", &partner]);
    let out = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.status.success(), "{out}{listed:?}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "the listening facility has no link: {out}");
    assert!(
        rows[0].starts_with("facility-1 ") && rows[0].contains(" up "),
        "{out}"
    );
    assert!(
        rows[1].starts_with("facility-2 ") && rows[1].contains(" up "),
        "{out}"
    );

    // Facility 2's node stops: it is listed as down, since when, and why.
    net.nodes[1].stop().await.unwrap();
    let health = psonet(&["health", "--addr", &gateway, "--identity", &partner]);
    let out = String::from_utf8_lossy(&health.stdout).to_string();
    assert!(health.status.success(), "{out}");
    assert!(out.starts_with("SERVING\n"), "{out}");
    let down = out
        .lines()
        .find(|l| l.starts_with("facility-2 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(down.contains(" DOWN "), "{out}");

    // A facility may not read which facilities are linked.
    let facility = net.nodes[0].client_identity.to_str().unwrap().to_string();
    let refused = psonet(&["links", "--addr", &gateway, "--identity", &facility]);
    let err = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(!refused.status.success());
    assert!(err.contains("only spiffe://testnet/partner/*"), "{err}");

    // A node's own staff see its link from its local listener.
    let local = net.nodes[0].local().to_string();
    let own = psonet(&["links", "--addr", &local, "--identity", &facility]);
    let out = String::from_utf8_lossy(&own.stdout).to_string();
    assert!(own.status.success(), "{out}");
    let link = net.gateway().unwrap().links().unwrap().to_string();
    assert!(
        out.lines()
            .any(|l| l.starts_with("facility-1 ") && l.contains(&link) && l.contains(" up ")),
        "{out}"
    );
}
