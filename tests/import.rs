//! `psonet import` through the real binary: CSV and NDJSON, per-line error reports, and
//! re-runs that add nothing and finish interrupted imports.

mod common;

use common::*;

fn import(node: &Node, file: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let local = node.local().to_string();
    let identity = node.client_identity.to_str().unwrap();
    let mut args = vec!["import", "--node", &local, "--identity", identity];
    args.extend(extra);
    args.push(file.to_str().unwrap());
    let out = psonet(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_csv_imports_once() {
    let net = network(1).start().await.unwrap();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/events.csv");
    let (ok, out) = import(&net.nodes[0], &sample, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("events: 5 accepted, 0 duplicates, 0 rejected"),
        "{out}"
    );
    let (ok, out) = import(&net.nodes[0], &sample, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("events: 0 accepted, 5 duplicates, 0 rejected"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_lines_are_reported_with_line_field_and_reason() {
    let net = network(1).start().await.unwrap();
    let dir = net.dir();
    let month = psonet_core::month::Month::current().minus(1);
    let good = |k: &str| {
        format!(
            r#"{{"idempotency_key":"{k}","event_type":"INCIDENT","categories":["FALL"],"harm":"MILD","discovery_month":"{month}","unit_type":"MEDICAL"}}"#
        )
    };
    let lines = [
        good("a"),
        "{not json".to_string(),
        format!(
            r#"{{"idempotency_key":"b","event_type":"NEAR_MISS","categories":["FALL"],"harm":"MILD","discovery_month":"{month}","unit_type":"MEDICAL"}}"#
        ),
        good("c"),
        format!(r#"{{"month":"{month}","unit_type":"MEDICAL","patient_days":900}}"#),
    ];
    let file = dir.join("mixed.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let errors = dir.join("rejects.csv");
    let (ok, out) = import(
        &net.nodes[0],
        &file,
        &["--errors", errors.to_str().unwrap()],
    );
    assert!(!ok, "rejected lines must fail the import: {out}");
    assert!(
        out.contains("events: 2 accepted, 0 duplicates, 2 rejected; exposure: 1 records"),
        "{out}"
    );
    assert!(out.contains("line 2: not JSON"), "{out}");
    assert!(
        out.contains("line 3: event.harm: event_type EVENT_TYPE_NEAR_MISS carries no harm level"),
        "{out}"
    );
    let report = std::fs::read_to_string(&errors).unwrap();
    assert!(report.starts_with("line,field,reason\n2,,"), "{report}");
    assert!(report.contains("3,event.harm,"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_finishes_on_a_rerun() {
    let net = network(1).start().await.unwrap();
    let dir = net.dir();
    let synth = psonet(&["synth", "--events", "12000", "--months", "6"]);
    let text = String::from_utf8(synth.stdout).unwrap();
    let all = dir.join("all.ndjson");
    std::fs::write(&all, &text).unwrap();
    // The first 7,000 lines stand for an import stopped part way.
    let part = dir.join("part.ndjson");
    std::fs::write(
        &part,
        text.lines().take(7_000).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let (ok, out) = import(&net.nodes[0], &part, &[]);
    assert!(ok, "{out}");
    let exposure_lines = text
        .lines()
        .take(7_000)
        .filter(|l| !l.contains("idempotency_key"))
        .count();
    let first = 7_000 - exposure_lines;
    let (ok, out) = import(&net.nodes[0], &all, &[]);
    assert!(ok, "{out}");
    let expected = format!(
        "events: {} accepted, {first} duplicates, 0 rejected",
        12_000 - first
    );
    assert!(out.contains(&expected), "{out}\nexpected {expected}");
}
