//! The README's hand-run network, command for command: `psonet pki init`, three `psonet node`
//! and one `psonet gateway` from the generated configs, `psonet synth | psonet submit`, then
//! `psonet benchmark` — all through the real binary.

mod common;

use common::{ServerProcess, launcher, psonet};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A base port whose gateway and five facilities' ports are all free right now.
fn free_base_port() -> u16 {
    let offsets = [0u16, 11, 12, 21, 22, 31, 32, 41, 42, 51, 52];
    (0..200)
        .map(|i| 20_000 + ((std::process::id() as u16 % 2_000) * 10 + i * 97) % 40_000)
        .find(|base| {
            offsets
                .iter()
                .all(|o| TcpListener::bind(("127.0.0.1", base + o)).is_ok())
        })
        .expect("no free ports")
}

#[test]
fn a_network_started_by_hand_from_the_readme_answers_psonet_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let pki_s = pki.to_str().unwrap();
    let base = free_base_port().to_string();
    let init = psonet(&[
        "pki",
        "init",
        "--network",
        "midwest-pso",
        "--out",
        pki_s,
        "--base-port",
        &base,
    ]);
    assert!(init.status.success(), "{}", text(&init));
    assert!(text(&init).contains("psonet gateway --config"));
    let again = psonet(&["pki", "init", "--network", "midwest-pso", "--out", pki_s]);
    assert!(
        !again.status.success(),
        "a second init must not overwrite the CA"
    );

    let _nodes: Vec<ServerProcess> = (1..=5)
        .map(|i| {
            let config = pki.join(format!("facility-{i}/node.toml"));
            let log = dir.path().join(format!("n{i}.log"));
            ServerProcess::node(&launcher(), &config, Some(&log)).unwrap()
        })
        .collect();
    let gateway_config = pki.join("gateway.toml");
    let log = dir.path().join("gw.log");
    let _gateway = ServerProcess::gateway(&launcher(), &gateway_config, Some(&log)).unwrap();

    for i in 1..=5u16 {
        let synth = psonet(&[
            "synth",
            "--events",
            "1500",
            "--months",
            "3",
            "--seed",
            &i.to_string(),
            "--key-prefix",
            &format!("f{i}"),
        ]);
        assert!(synth.status.success());
        let file = dir.path().join(format!("f{i}.ndjson"));
        std::fs::write(&file, &synth.stdout).unwrap();
        let node = format!("127.0.0.1:{}", base.parse::<u16>().unwrap() + 10 * i + 1);
        let identity = pki.join(format!("facility-{i}/client"));
        let submit = psonet(&[
            "submit",
            "--node",
            &node,
            "--identity",
            identity.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert!(submit.status.success(), "{}", text(&submit));
        assert!(
            text(&submit).contains("events: 1500 accepted, 0 duplicates, 0 rejected"),
            "{}",
            text(&submit)
        );
        // Submitting the same file again stores nothing new.
        let again = psonet(&[
            "submit",
            "--node",
            &node,
            "--identity",
            identity.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert!(
            text(&again).contains("events: 0 accepted, 1500 duplicates"),
            "{}",
            text(&again)
        );
    }

    let gateway = format!("127.0.0.1:{base}");
    let partner = pki.join("partner");
    let bench = psonet(&[
        "benchmark",
        "--gateway",
        &gateway,
        "--identity",
        partner.to_str().unwrap(),
        "--category",
        "FALL",
    ]);
    let out = text(&bench);
    assert!(bench.status.success(), "{out}");
    assert!(out.contains("5 of 5 facilities answered"), "{out}");
    assert!(out.contains("FALL"), "{out}");
    assert!(!out.contains("MEDICATION"), "{out}");

    // Plain words when the caller is refused: the gateway's own identity is not a partner…
    let gateway_identity = pki.join("gateway");
    let wrong = psonet(&[
        "benchmark",
        "--gateway",
        &gateway,
        "--identity",
        gateway_identity.to_str().unwrap(),
    ]);
    assert!(!wrong.status.success());
    assert!(text(&wrong).contains("denied the call"), "{}", text(&wrong));
    // …and a certificate from another network's CA is refused as such.
    let other = dir.path().join("other");
    let init = psonet(&[
        "pki",
        "init",
        "--network",
        "other",
        "--out",
        other.to_str().unwrap(),
    ]);
    assert!(init.status.success());
    let foreign = psonet(&[
        "benchmark",
        "--gateway",
        &gateway,
        "--identity",
        Path::new(&other).join("partner").to_str().unwrap(),
    ]);
    assert!(!foreign.status.success());
    let out = text(&foreign);
    assert!(out.contains("our CA did not issue"), "{out}");
}
