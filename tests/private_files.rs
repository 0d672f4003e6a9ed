//! Private files whatever the umask (issue 12, item 6): with umask 000 — the most permissive
//! a shell can have — a node started by hand keeps its store, its backups and `pki`'s keys
//! readable by their owner only (directories 0700, files 0600). They hold narratives and keys.

mod common;

use common::*;
use psonet::synth::SynthOptions;
use psonet_core::month::Month;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Every path under `dir`, `dir` included.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            let mut children: Vec<_> = std::fs::read_dir(&out[i])
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}

/// `path` and its mode, when group or others may do anything with it.
fn readable_by_others(path: &Path) -> Option<String> {
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| format!("{} is {mode:o}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_backups_and_keys_are_private_whatever_the_umask() {
    psonet_serve::tls::install_crypto_provider();
    // SAFETY: umask has no preconditions. This test binary holds this one test, so nothing
    // else here creates files under it; the node and CLI processes inherit it.
    unsafe { libc::umask(0o000) };
    let net = network(1).start().await.unwrap();
    net.load_synthetic(|_, _| SynthOptions {
        events: 300,
        months: 2,
        last_month: Month::current(),
        key_prefix: "p".into(),
        beds: 100,
        seed: 1,
    })
    .await
    .unwrap();
    let node = &net.nodes[0];
    let backup = net.dir().join("f1.backup");
    let out = psonet(&[
        "node",
        "backup",
        "--node",
        &node.local().to_string(),
        "--identity",
        node.client_identity.to_str().unwrap(),
        "--out",
        backup.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let data_dir = node.config.parent().unwrap().join("data");
    let mut paths = tree(&data_dir);
    assert!(paths.len() > 2, "{paths:?}");
    paths.push(backup);
    // Every private key pki wrote, and the directories holding them.
    for key in tree(&net.layout.out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "key") || p.ends_with("key.pem"))
    {
        paths.push(key.parent().unwrap().to_path_buf());
        paths.push(key);
    }
    assert!(paths.iter().any(|p| p.ends_with("ca.key")));
    let open: Vec<String> = paths.iter().filter_map(|p| readable_by_others(p)).collect();
    println!("checked {} paths", paths.len());
    assert!(open.is_empty(), "readable by others:\n{}", open.join("\n"));
}
