//! `psonet pki init --host OWNER=NAME` (issue 12, item 1): each host name goes on the one server
//! certificate it belongs to. On main `--host X` went on every server certificate, so any node
//! could answer for any other host of the network.

mod common;

use common::psonet;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;

/// The DNS names and IP addresses a certificate carries, as text.
fn host_names(cert: &Path) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let der = CertificateDer::from_pem_file(cert).unwrap();
    let (_, parsed) = X509Certificate::from_der(&der).unwrap();
    let Some(san) = parsed.subject_alternative_name().unwrap() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            GeneralName::IPAddress(ip) => <[u8; 4]>::try_from(*ip)
                .ok()
                .map(|v4| std::net::Ipv4Addr::from(v4).to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn each_host_name_is_on_its_own_server_certificate_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let init = psonet(&[
        "pki",
        "init",
        "--network",
        "hostnet",
        "--out",
        out.to_str().unwrap(),
        "--facilities",
        "2",
        "--host",
        "facility-1=node1.example.org",
        "--host",
        "gateway=pso.example.org",
    ]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let names = |who: &str| host_names(&out.join(who).join("cert.pem"));
    let loopback = ["localhost".to_string(), "127.0.0.1".to_string()];
    assert_eq!(
        names("facility-1/node"),
        [&loopback[..], &["node1.example.org".to_string()]].concat()
    );
    assert_eq!(names("facility-2/node"), loopback);
    assert_eq!(
        names("gateway"),
        [&loopback[..], &["pso.example.org".to_string()]].concat()
    );
    // Client certificates name no host at all.
    assert!(names("facility-1/client").is_empty());
    assert!(names("partner").is_empty());
}

#[test]
fn a_host_name_that_does_not_say_whose_it_is_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let out = out.to_str().unwrap();
    let run = |host: &str| {
        let done = psonet(&[
            "pki",
            "init",
            "--network",
            "hostnet",
            "--out",
            out,
            "--facilities",
            "2",
            "--host",
            host,
        ]);
        assert!(!done.status.success(), "--host {host} was accepted");
        String::from_utf8_lossy(&done.stderr).into_owned()
    };
    let bare = run("node1.example.org");
    assert!(
        bare.contains("gateway=node1.example.org") && bare.contains("one server certificate"),
        "{bare}"
    );
    let unknown = run("facility-9=node9.example.org");
    assert!(
        unknown.contains("facility-9 is not a facility of this network"),
        "{unknown}"
    );
    assert!(!Path::new(out).join("ca.pem").exists());
}
