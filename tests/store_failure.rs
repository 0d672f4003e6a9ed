//! A node whose store fails stops loudly (issue 12, item 7), with real processes and a real
//! full disk: the node's data_dir is on a small tmpfs, a client streams events into it, and the
//! disk is filled. Within a second of the first failed write, `psonet health` reports
//! NOT_SERVING; the process logs the underlying error and what to check, drains and exits
//! non-zero. Restarted once the disk has room again, the node has every acknowledged event.
//!
//! Mounting a tmpfs needs root (CI runs as root); without it the test says so and does nothing.

mod common;

use common::*;
use psonet_core::month::Month;
use psonet_core::pb::reporting_service_client::ReportingServiceClient;
use psonet_core::pb::{self, EventCategory, HarmLevel};
use psonet_node::store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs at {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    /// Gives the file system `size` (the disk "recovers").
    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount {}", self.0.display());
    }

    /// Writes a file until the file system is full.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// What the streaming client saw.
#[derive(Default)]
struct Streamed {
    acked: Vec<String>,
    first_failure: Option<Instant>,
    failure: String,
}

/// Streams chunks of 100 events until a chunk is refused.
async fn stream_until_refused(
    mut client: ReportingServiceClient<Channel>,
    seen: Arc<Mutex<Streamed>>,
) {
    let month = Month::current().minus(1).to_string();
    for chunk in 0.. {
        let keys: Vec<String> = (0..100).map(|i| format!("sf-c{chunk}-{i}")).collect();
        let events: Vec<_> = keys
            .iter()
            .map(|k| pb::SubmitEventsRequest {
                event: Some(event(k, &month, EventCategory::Fall, HarmLevel::Mild)),
            })
            .collect();
        match client.submit_events(tokio_stream::iter(events)).await {
            Ok(summary) => {
                assert_eq!(summary.into_inner().accepted, 100);
                seen.lock().unwrap().acked.extend(keys);
            }
            Err(status) => {
                let mut seen = seen.lock().unwrap();
                seen.first_failure = Some(Instant::now());
                seen.failure = format!("{:?} {}", status.code(), status.message());
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_fills_reports_not_serving_exits_and_keeps_every_ack() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: mounting the small tmpfs this test fills needs root");
        return;
    }
    psonet_serve::tls::install_crypto_provider();
    let mount_dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(mount_dir.path(), "24m");
    let data_dir = mount_dir.path().join("store");
    let store_dir = data_dir.clone();
    let mut net = network(1)
        .node_config(move |config| config.data_dir = store_dir.clone())
        .start()
        .await
        .unwrap();
    let node = &net.nodes[0];
    let (local, identity) = (node.local().to_string(), node.client_identity.clone());

    // Load, then a full disk under it.
    let seen = Arc::new(Mutex::new(Streamed::default()));
    let streaming = tokio::spawn(stream_until_refused(
        node.reporting().unwrap(),
        seen.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !seen.lock().unwrap().acked.is_empty(),
        "nothing acknowledged before the disk filled"
    );
    let filler = disk.fill();

    // NOT_SERVING within a second of the first failed write.
    let mut not_serving = None;
    let watching = Instant::now();
    while not_serving.is_none() && watching.elapsed() < Duration::from_secs(30) {
        match psonet::health::check(&local, &identity, "", Duration::from_secs(2)).await {
            Ok(()) => {}
            Err(e) if e.to_string().contains("NOT_SERVING") => not_serving = Some(Instant::now()),
            Err(e) => panic!("the node stopped answering before it said NOT_SERVING: {e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let not_serving = not_serving.expect("health never reported NOT_SERVING");
    tokio::time::timeout(Duration::from_secs(30), streaming)
        .await
        .expect("the client is still streaming")
        .unwrap();
    let (acked, failed_at, failure) = {
        let seen = seen.lock().unwrap();
        (seen.acked.clone(), seen.first_failure, seen.failure.clone())
    };
    let failed_at = failed_at.expect("no write failed");
    let delay = not_serving.saturating_duration_since(failed_at);
    println!(
        "{} events acknowledged; first refusal: {failure}; NOT_SERVING {:?} after it",
        acked.len(),
        delay
    );
    assert!(
        delay < Duration::from_secs(1),
        "NOT_SERVING came {delay:?} after the first failure"
    );

    // It drains and exits non-zero, having said what failed and what to check.
    let mut process = net.nodes[0].take_process().unwrap();
    let exited = tokio::task::spawn_blocking(move || process.wait_success());
    let success = tokio::time::timeout(Duration::from_secs(30), exited)
        .await
        .expect("the node did not exit")
        .unwrap();
    assert!(!success, "the node exited 0 after its store failed");
    let log = net.nodes[0].log();
    assert!(log.contains("No space left on device"), "{log}");
    assert!(
        log.contains(&format!(
            "Check the disk holding data_dir {}",
            data_dir.display()
        )),
        "{log}"
    );

    // The disk recovers; restarted, the node serves and has every acknowledged event.
    std::fs::remove_file(filler).unwrap();
    disk.resize("256m");
    net.nodes[0].start().await.unwrap();
    let node = &net.nodes[0];
    psonet::health::check(
        &node.local().to_string(),
        &identity,
        "",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    net.nodes[0].stop().await.unwrap();
    let store = Store::open(&data_dir, 8 << 20).unwrap();
    let events = store.verify_counters().unwrap();
    assert!(
        events >= acked.len() as u64,
        "{events} events for {} acks",
        acked.len()
    );
    let lost: Vec<_> = acked
        .iter()
        .filter(|k| store.event_by_key(k).unwrap().is_none())
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
}
