//! The README and the servers agree (issue 12, item 9). Every row of the README's table "What
//! a refused call looks like" is read from README.md and provoked against a real gateway
//! process: the code a client sees must be the row's. (`.ci/python-client-check` does the same
//! from Python's grpcio.) And the proto's "at most N months after month_from" is taken at its
//! word: a range that long is accepted, one month longer refused.

mod common;

use bytes::Bytes;
use common::raw;
use common::*;
use prost::Message;
use psonet::client::explain_failure;
use psonet::pki::{Authority, Usage};
use psonet_core::month::Month;
use psonet_core::pb::{self, benchmark_service_client::BenchmarkServiceClient};
use psonet_serve::diagnose::Failure;
use psonet_serve::identity::Principal;
use std::path::{Path, PathBuf};
use tonic::Code;
use tonic::transport::Channel;

/// The rows of the README's status table: what the caller sends, and the code.
fn readme_rows() -> Vec<(String, Code)> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| the caller sends | code |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(!table.is_empty(), "no status table in README.md");
    table
        .iter()
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells[2].trim_matches('`');
            let code = code_named(code).unwrap_or_else(|| panic!("unknown code in {line}"));
            (cells[1].to_string(), code)
        })
        .collect()
}

fn code_named(name: &str) -> Option<Code> {
    (0..=16)
        .map(Code::from_i32)
        .find(|c| format!("{c:?}").to_uppercase() == name.replace('_', ""))
}

/// A channel to the gateway trusting the network's CA and presenting `identity` (a directory
/// with cert.pem and key.pem), or no certificate at all.
fn gateway(net: &Network, identity: Option<&Path>) -> Channel {
    let addr = net.gateway_addr().unwrap();
    match identity {
        Some(dir) => channel(&addr, dir),
        None => anonymous_channel(&addr, &net.layout.partner_identity.join("ca.pem")),
    }
}

/// An identity directory (the network's `ca.pem` to trust) with a client certificate signed by
/// `issuer` (`None`: the network's own CA) for `uri` (`None`: no URI SAN at all).
fn identity(net: &Network, name: &str, issuer: Option<&Authority>, uri: Option<&str>) -> PathBuf {
    let dir = net.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = match (issuer, uri) {
        (Some(ca), Some(uri)) => {
            let issued = ca
                .issue(&Principal::from_uri(uri).unwrap(), Usage::Client, &[])
                .unwrap();
            (issued.cert_pem, issued.key_pem)
        }
        (None, Some(uri)) => issue_certificate(
            net,
            uri,
            &[rcgen::ExtendedKeyUsagePurpose::ClientAuth],
            (2020, 1, 1),
            (2099, 1, 1),
        ),
        (None, None) => without_uri(net),
        (Some(_), None) => unreachable!("not needed"),
    };
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    std::fs::copy(
        net.layout.partner_identity.join("ca.pem"),
        dir.join("ca.pem"),
    )
    .unwrap();
    dir
}

/// A client certificate of the network's CA with no URI SAN (so it names no principal).
fn without_uri(net: &Network) -> (String, String) {
    let read = |name: &str| std::fs::read_to_string(net.layout.out.join(name)).unwrap();
    let ca_key = rcgen::KeyPair::from_pem(&read("ca.key")).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&read("ca.pem"), ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["client.example".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "nobody in particular");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

const BENCHMARK: &str = "/psonet.v1.BenchmarkService/NetworkBenchmark";

/// A valid benchmark request's bytes.
fn benchmark_bytes() -> Bytes {
    Bytes::from(this_month_benchmark().encode_to_vec())
}

/// The code `channel` gets for `message` sent to `method`.
async fn code_of(channel: &Channel, method: &'static str, message: Bytes) -> Code {
    match raw::call(channel, method, false, message).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// A call whose TLS handshake the gateway refuses (`identity`: the client's certificate, if
/// any): no status comes from the server — the failure is the transport's, and the handshake
/// repeated alone shows the server's alert, `alert`. A client library reports such a failed
/// connection as `UNAVAILABLE` (grpc-core, grpc-go, grpc-java; tonic, whose connection closes
/// just as the call starts, says `CANCELLED` or `UNKNOWN`), which is what this returns.
async fn handshake_refused(net: &Network, identity: Option<&Path>, alert: &str) -> Code {
    let status = BenchmarkServiceClient::new(gateway(net, identity))
        .network_benchmark(this_month_benchmark())
        .await
        .unwrap_err();
    assert!(
        std::error::Error::source(&status).is_some(),
        "the server answered instead of refusing the handshake: {status:?}"
    );
    let addr = net.gateway_addr().unwrap().to_string();
    let ca = net.layout.partner_identity.join("ca.pem");
    match explain_failure(&status, &addr, "the gateway", &ca, identity).await {
        Failure::Refused(why) if why.contains(alert) => Code::Unavailable,
        other => panic!("expected a handshake refused with {alert:?}, got {other:?}"),
    }
}

/// Provokes the situation of a README row and returns the code the client saw.
async fn provoke(row: &str, net: &Network) -> Code {
    let partner = gateway(net, Some(&net.layout.partner_identity));
    match row {
        "no client certificate" => {
            handshake_refused(net, None, "requires a client certificate").await
        }
        "a certificate another CA issued" => {
            let rogue = Authority::new(NETWORK, 1).unwrap();
            let dir = identity(
                net,
                "rogue",
                Some(&rogue),
                Some("spiffe://testnet/partner/analyst"),
            );
            handshake_refused(net, Some(&dir), "unknown CA").await
        }
        "a certificate of the network's CA naming no principal" => {
            let dir = identity(net, "nobody", None, None);
            code_of(&gateway(net, Some(&dir)), BENCHMARK, benchmark_bytes()).await
        }
        "a principal the listener does not serve" => {
            let gateway_identity = gateway(net, Some(&net.gateway_identity()));
            code_of(&gateway_identity, BENCHMARK, benchmark_bytes()).await
        }
        "a method the listener does not serve" => {
            let get = pb::GetEventRequest::default().encode_to_vec();
            code_of(&partner, "/psonet.v1.ReportingService/GetEvent", get.into()).await
        }
        "a request that breaks a field rule" => {
            let mut request = this_month_benchmark();
            request.month_from = "last spring".into();
            request.categories = vec![pb::EventCategory::Fall as i32; 1000];
            let status = BenchmarkServiceClient::new(partner)
                .network_benchmark(request)
                .await
                .unwrap_err();
            let bad = tonic_types::StatusExt::get_details_bad_request(&status);
            assert!(bad.is_some(), "no BadRequest details: {status:?}");
            status.code()
        }
        "bytes that do not decode as the request message" => {
            code_of(&partner, BENCHMARK, Bytes::from_static(&[0xff; 64])).await
        }
        "a message over 4 MB" => code_of(&partner, BENCHMARK, vec![0u8; 5 << 20].into()).await,
        other => panic!("README row {other:?} has no probe here: add one"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_readme_status_table_is_what_clients_see() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(1).start().await.unwrap();
    net.start_gateway(|_| {}).await.unwrap();
    let rows = readme_rows();
    assert!(rows.len() >= 8, "{rows:?}");
    for (row, code) in rows {
        let seen = provoke(&row, &net).await;
        println!("{row}: README {code:?}, seen {seen:?}");
        assert_eq!(seen, code, "README row {row:?}");
    }
}

/// N in "at most N months after month_from", as each proto file says it.
fn documented_months_after() -> Vec<(String, u32)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/psonet/v1");
    let mut found = Vec::new();
    for file in ["aggregate.proto", "benchmark.proto"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for (at, _) in text.match_indices(" months after month_from") {
            let before = &text[..at];
            let n = before.rsplit(' ').next().unwrap().parse().unwrap();
            found.push((file.to_string(), n));
        }
    }
    assert_eq!(found.len(), 4, "{found:?}");
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_as_long_as_the_proto_allows_is_accepted_and_one_month_more_refused() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).start().await.unwrap();
    let mut node = net.aggregate_client(0).await.unwrap();
    for (file, n) in documented_months_after() {
        let to = Month::current();
        for (after, accepted) in [(n, true), (n + 1, false)] {
            let from = to.minus(after).to_string();
            let status = node
                .aggregate(aggregate_request(&from, &to.to_string()))
                .await
                .err();
            let refused_range = status.as_ref().is_some_and(|s| {
                s.code() == Code::InvalidArgument && s.message().contains("months")
            });
            assert_eq!(
                !refused_range, accepted,
                "{file} allows {n} months after month_from; {from}..{to}: {status:?}"
            );
        }
    }
}
