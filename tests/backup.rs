//! Backup and restore with real processes: `psonet node backup` against a running node over
//! mTLS (once while a client keeps streaming events into it), `psonet node restore` into fresh
//! directories, and a node started on the restored store that answers exactly like the
//! original: the same aggregates, the same events with their history, new ids never reused.

mod common;

use common::*;
use psonet::synth::{self, SynthOptions};
use psonet_core::month::Month;
use psonet_core::pb::backup_service_client::BackupServiceClient;
use psonet_core::pb::{self, EventCategory, HarmLevel};
use psonet_node::NodeConfig;
use psonet_node::store::Store;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tonic::Code;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `psonet node backup` of the node at `addr` as `identity` into `out`.
fn backup_command(addr: SocketAddr, identity: &Path, out: &Path) -> Output {
    psonet(&[
        "node",
        "backup",
        "--node",
        &addr.to_string(),
        "--identity",
        &identity.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
    ])
}

/// `psonet node backup` of `node` into `out`; panics with its stderr when it fails.
fn backup(addr: SocketAddr, identity: &Path, out: &Path) -> String {
    let result = backup_command(addr, identity, out);
    assert!(result.status.success(), "{}", text(&result.stderr));
    text(&result.stdout)
}

/// A copy of `original`'s config beside it, on fresh ports and the data directory `data`.
fn config_for(original: &Path, name: &str, data: &Path) -> PathBuf {
    let mut config: NodeConfig =
        toml::from_str(&std::fs::read_to_string(original).unwrap()).unwrap();
    config.data_dir = data.to_path_buf();
    config.local.listen = "127.0.0.1:0".parse().unwrap();
    config.federation.listen = Some("127.0.0.1:0".parse().unwrap());
    let path = original.with_file_name(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    path
}

/// `psonet node restore --config <config> <file>`.
fn restore(config: &Path, file: &Path) -> Output {
    psonet(&[
        "node",
        "restore",
        "--config",
        &config.to_string_lossy(),
        &file.to_string_lossy(),
    ])
}

/// Aggregates that cover every counter family the tests load, as the gateway asks them.
fn aggregate_requests() -> Vec<pb::AggregateRequest> {
    let last = Month::current();
    let (from, to) = (last.minus(11).to_string(), last.to_string());
    use pb::Dimension as D;
    [
        (pb::TimeGrain::Month, vec![D::Category, D::Harm]),
        (pb::TimeGrain::Quarter, vec![D::EventType, D::UnitType]),
        (pb::TimeGrain::Year, vec![D::ContributingFactor]),
        (pb::TimeGrain::Month, vec![D::AgeBand, D::Sex]),
    ]
    .into_iter()
    .map(|(grain, dims)| pb::AggregateRequest {
        month_from: from.clone(),
        month_to: to.clone(),
        time_grain: grain as i32,
        group_by: dims.into_iter().map(|d| d as i32).collect(),
        ..Default::default()
    })
    .collect()
}

async fn aggregates(net: &Network, federation: std::net::SocketAddr) -> Vec<pb::AggregateResponse> {
    let mut client = pb::aggregate_service_client::AggregateServiceClient::new(channel(
        &federation,
        &net.gateway_identity(),
    ));
    let mut out = Vec::new();
    for request in aggregate_requests() {
        out.push(client.aggregate(request).await.unwrap().into_inner());
    }
    out
}

async fn get_event(
    client: &mut pb::reporting_service_client::ReportingServiceClient<tonic::transport::Channel>,
    key: &str,
) -> pb::GetEventResponse {
    let request = pb::GetEventRequest {
        key: Some(pb::get_event_request::Key::IdempotencyKey(key.into())),
    };
    client.get_event(request).await.unwrap().into_inner()
}

/// A year of synthetic reports and exposure, and two amendments with history.
async fn load(node: &Node) -> Vec<String> {
    let options = SynthOptions {
        events: 2_000,
        months: 12,
        last_month: Month::current(),
        key_prefix: "bk".into(),
        beds: 200,
        seed: 7,
    };
    let events = synth::events(&options);
    let keys: Vec<String> = events.iter().map(|e| e.idempotency_key.clone()).collect();
    let mut client = node.reporting().unwrap();
    let summary = submit_all(&mut client, events.clone()).await;
    assert_eq!(summary.accepted, 2_000);
    let records = synth::exposure(&options);
    client
        .record_exposure(pb::RecordExposureRequest { records })
        .await
        .unwrap();
    for original in events
        .iter()
        .filter(|e| e.harm == HarmLevel::Mild as i32)
        .take(2)
    {
        let mut amended = original.clone();
        amended.harm = HarmLevel::Moderate as i32;
        client
            .amend_event(pb::AmendEventRequest {
                event: Some(amended),
                reason: "harm reassessed".into(),
            })
            .await
            .unwrap();
    }
    keys
}

/// Streams chunks of 100 events until `stop`; returns the keys of acknowledged chunks.
async fn keep_writing(
    node_client: TestClient,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
) {
    let mut client = node_client;
    let month = Month::current().minus(1).to_string();
    for chunk in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let keys: Vec<String> = (0..100).map(|i| format!("live-{chunk}-{i}")).collect();
        let events = keys
            .iter()
            .map(|k| event(k, &month, EventCategory::Fall, HarmLevel::Mild))
            .collect();
        let summary = submit_all(&mut client, events).await;
        assert_eq!(summary.accepted, 100);
        acked.lock().unwrap().extend(keys);
    }
}

type TestClient = pb::reporting_service_client::ReportingServiceClient<tonic::transport::Channel>;

/// The store a restore wrote, opened directly: consistent, and holding every key in `keys`.
fn assert_consistent_with(data: &Path, keys: &[String]) -> u64 {
    let store = Store::open(data, 8 << 20).unwrap();
    let events = store.verify_counters().unwrap();
    for key in keys {
        assert!(store.event_by_key(key).unwrap().is_some(), "{key} missing");
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_is_backed_up_and_restored_into_a_node_that_answers_the_same() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).start().await.unwrap();
    let node = &net.nodes[0];
    let keys = load(node).await;
    let dir = net.dir();

    // 1. A backup while a client keeps writing: one consistent point in time.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = tokio::spawn(keep_writing(
        node.reporting().unwrap(),
        stop.clone(),
        acked.clone(),
    ));
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let acked_before = acked.lock().unwrap().clone();
    let live_file = dir.join("live.backup");
    let report = tokio::task::spawn_blocking({
        let (addr, identity, out) = (
            node.local(),
            node.client_identity.clone(),
            live_file.clone(),
        );
        move || backup(addr, &identity, &out)
    })
    .await
    .unwrap();
    assert!(report.contains("for facility facility-1"), "{report}");
    let acked_during = acked.lock().unwrap().len();
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(
        acked.lock().unwrap().len() > acked_before.len(),
        "the client kept writing: {acked_during} acked by the end of the backup"
    );

    let original_config = &node.config;
    let live_data = dir.join("live-data");
    let live_config = config_for(original_config, "restored-live", &live_data);
    let restored = restore(&live_config, &live_file);
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    let mut must_hold = keys.clone();
    must_hold.extend(acked_before.iter().cloned());
    let events = assert_consistent_with(&live_data, &must_hold);
    assert!(events >= must_hold.len() as u64);

    // 2. A backup of the quiet node, restored and served: it answers exactly like the original.
    let file = dir.join("quiet.backup");
    backup(node.local(), &node.client_identity, &file);
    let data = dir.join("restored-data");
    let config = config_for(original_config, "restored", &data);
    let restored = restore(&config, &file);
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    assert!(text(&restored.stdout).contains("counters checked"));
    let log = dir.join("restored.log");
    let restored_node = ServerProcess::node(&launcher(), &config, Some(&log)).unwrap();

    assert_eq!(
        aggregates(&net, restored_node.addr("federation").unwrap()).await,
        aggregates(&net, node.federation().unwrap()).await
    );
    let mut original = node.reporting().unwrap();
    let mut copy = pb::reporting_service_client::ReportingServiceClient::new(channel(
        &restored_node.addr("local").unwrap(),
        &node.client_identity,
    ));
    // Every loaded event, and every tenth of those streamed during the first backup.
    let all_keys: Vec<String> = keys
        .iter()
        .chain(acked.lock().unwrap().iter().step_by(10))
        .cloned()
        .collect();
    let mut amended = 0;
    for key in &all_keys {
        let (a, b) = (
            get_event(&mut original, key).await,
            get_event(&mut copy, key).await,
        );
        amended += usize::from(!a.history.is_empty());
        assert_eq!(a, b, "{key}");
    }
    assert_eq!(amended, 2, "the amendments' history came along");

    // New events on the restored node get ids the store never used.
    let month = Month::current().minus(1).to_string();
    let fresh = copy
        .submit_event(pb::SubmitEventRequest {
            event: Some(event(
                "after-restore",
                &month,
                EventCategory::Fall,
                HarmLevel::Mild,
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!fresh.duplicate);
    for key in all_keys.iter().step_by(50) {
        assert_ne!(get_event(&mut copy, key).await.event_id, fresh.event_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_for_the_facility_only_and_restores_never_overwrite() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).start().await.unwrap();
    let node = &net.nodes[0];
    let dir = net.dir();

    // The gateway may not take a backup, and the federation listener does not serve one.
    let as_gateway = channel(&node.local(), &net.gateway_identity());
    let refused = BackupServiceClient::new(as_gateway)
        .backup(pb::BackupRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let federation = channel(&node.federation().unwrap(), &net.gateway_identity());
    let refused = BackupServiceClient::new(federation)
        .backup(pb::BackupRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");

    let file = dir.join("f1.backup");
    backup(node.local(), &node.client_identity, &file);
    // An existing file is never overwritten by a backup either.
    let again = backup_command(node.local(), &node.client_identity, &file);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("exists"),
        "{}",
        text(&again.stderr)
    );

    // The running node's own data directory is not empty: refused, and nothing is touched.
    let refused = restore(&node.config, &file);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("is not empty"),
        "{}",
        text(&refused.stderr)
    );

    // Another facility's config is refused.
    let other = net.layout.facilities[0]
        .node_config
        .with_file_name("other.toml");
    let mut config: NodeConfig =
        toml::from_str(&std::fs::read_to_string(&node.config).unwrap()).unwrap();
    config.facility_id = "facility-9".into();
    config.data_dir = dir.join("other-data");
    std::fs::write(&other, toml::to_string(&config).unwrap()).unwrap();
    let refused = restore(&other, &file);
    assert!(
        text(&refused.stderr).contains("facility-9"),
        "{}",
        text(&refused.stderr)
    );
    assert!(!dir.join("other-data").exists());
}
