//! A store written by an earlier release opens with this one, is migrated in place, and
//! answers exactly as that release did.
//!
//! `fixtures/store-v0/` holds a small store written by the `psonet` binary of the first
//! release (whose store kept the API's `GetEventResponse` message as its record), together with
//! what that binary answered over gRPC before it was stopped: every `GetEvent` (by key and by
//! id) and a set of aggregates covering every counter family. The test opens a copy of that
//! store with today's code and asks the same questions in process.
//!
//! The fixture is written by [`record_fixture`], run by hand against the binary of the release
//! whose format it pins (see `fixtures/store-v0/README.md`).

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use psonet_core::disclosure::buckets::FinestGrain;
use psonet_core::disclosure::primary::SmallCellRule;
use psonet_core::pb::aggregate_service_server::AggregateService;
use psonet_core::pb::reporting_service_server::ReportingService;
use psonet_core::pb::{self, get_event_request::Key};
use psonet_node::aggregate::{Aggregates, DisclosureRules};
use psonet_node::audit::{AUDIT_TREE, AuditTrail};
use psonet_node::policy::Policy;
use psonet_node::reporting::Reporting;
use psonet_node::store::{FORMAT_VERSION, META_TREE, Store, StoreError};
use psonet_serve::identity::Principal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The fixture of the first release's store format.
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v0")
}

/// What the fixture holds besides the store, as `fixture.json` says it.
#[derive(Debug, Serialize, Deserialize)]
struct FixtureInfo {
    /// The release that wrote the store (`psonet --version` and the commit).
    written_by: String,
    /// The SPIFFE trust domain of its certificates.
    network: String,
    /// The node's facility id.
    facility_id: String,
    /// The node's `disclosure.min_cell_count` while it answered.
    min_cell_count: u32,
    /// Events in the store.
    events: u64,
    /// Events with an amendment history.
    amended: u64,
}

/// One recorded call: the request and either the response or the status, as proto3 JSON.
#[derive(Debug, Serialize, Deserialize)]
struct Exchange {
    request: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<RecordedStatus>,
}

/// A refused call.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct RecordedStatus {
    code: String,
    message: String,
}

impl RecordedStatus {
    fn of(status: &tonic::Status) -> Self {
        Self {
            code: format!("{:?}", status.code()),
            message: status.message().to_string(),
        }
    }
}

/// The API messages the fixture records, by their full proto name.
trait ApiMessage: prost::Message + Default {
    const NAME: &'static str;
}

impl ApiMessage for pb::GetEventRequest {
    const NAME: &'static str = "psonet.v1.GetEventRequest";
}

impl ApiMessage for pb::GetEventResponse {
    const NAME: &'static str = "psonet.v1.GetEventResponse";
}

impl ApiMessage for pb::AggregateRequest {
    const NAME: &'static str = "psonet.v1.AggregateRequest";
}

impl ApiMessage for pb::AggregateResponse {
    const NAME: &'static str = "psonet.v1.AggregateResponse";
}

/// Proto3 JSON with the proto field names, through the API's own descriptors.
struct Json(DescriptorPool);

impl Json {
    fn new() -> Self {
        Self(DescriptorPool::decode(psonet_proto::FILE_DESCRIPTOR_SET).expect("API descriptors"))
    }

    fn to_json<M: ApiMessage>(&self, message: &M) -> Value {
        let desc = self
            .0
            .get_message_by_name(M::NAME)
            .expect("message in the descriptors");
        let dynamic =
            DynamicMessage::decode(desc, message.encode_to_vec().as_slice()).expect("re-decodes");
        let options = SerializeOptions::new().use_proto_field_name(true);
        dynamic
            .serialize_with_options(serde_json::value::Serializer, &options)
            .expect("serializes")
    }

    fn parse<M: ApiMessage>(&self, value: &Value) -> M {
        let desc = self
            .0
            .get_message_by_name(M::NAME)
            .expect("message in the descriptors");
        DynamicMessage::deserialize(desc, value.clone())
            .expect("recorded JSON parses")
            .transcode_to()
            .expect("transcodes")
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = fixture_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// A copy of the fixture's store in a fresh directory, as an operator's data_dir would be.
fn copy_of_fixture_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir().join("store"), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Opens the store in `dir`, waiting for sled's background threads of a store just dropped
/// to let go of the directory.
fn reopen(dir: &Path) -> Store {
    for _ in 0..100 {
        match Store::open(dir, 8 << 20) {
            Ok(store) => return store,
            Err(StoreError::Sled(_)) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{dir:?} stays locked")
}

fn aggregates(store: &Arc<Store>, info: &FixtureInfo) -> Aggregates {
    let rules = DisclosureRules {
        small_cells: SmallCellRule::new(info.min_cell_count).unwrap(),
        finest_grain: FinestGrain::Month,
    };
    let policy = Policy::new(&info.network, Vec::new()).unwrap();
    let audit = AuditTrail::new(store.tree(AUDIT_TREE).unwrap());
    Aggregates::new(store.clone(), rules, policy, None, audit)
}

#[tokio::test]
async fn a_store_of_the_first_release_is_migrated_and_answers_as_it_did() {
    let info: FixtureInfo = read_json("fixture.json");
    let get_events: Vec<Exchange> = read_json("get_event.json");
    let aggregate_calls: Vec<Exchange> = read_json("aggregate.json");
    let json = Json::new();
    let dir = copy_of_fixture_store();

    let fixture = sled::open(dir.path()).unwrap();
    assert!(
        !fixture
            .tree_names()
            .iter()
            .any(|t| t == META_TREE.as_bytes()),
        "a store of the first release records no format version"
    );
    drop(fixture);

    let store = reopen(dir.path());
    assert_eq!(store.format_version().unwrap(), FORMAT_VERSION);
    let events = store.tree("events").unwrap();
    assert_eq!(events.len() as u64, info.events);
    for record in events.iter().values() {
        // Fields are encoded in number order: format 0 began with the event id (field 1,
        // length-delimited: 0x0a), format 1 begins with the event (field 2: 0x12).
        assert_eq!(record.unwrap()[0], 0x12, "every event was rewritten");
    }
    drop((events, store));

    let store = Arc::new(reopen(dir.path()));
    assert_eq!(store.format_version().unwrap(), FORMAT_VERSION);
    assert_eq!(
        store.verify_counters().unwrap(),
        info.events,
        "the events read back recount to the stored counters"
    );

    let reporting = Reporting::new(store.clone());
    let mut amended = 0;
    for exchange in &get_events {
        let request: pb::GetEventRequest = json.parse(&exchange.request);
        let answer = reporting
            .get_event(tonic::Request::new(request.clone()))
            .await;
        match (&exchange.response, &exchange.error, answer) {
            (Some(expected), None, Ok(got)) => {
                let expected: pb::GetEventResponse = json.parse(expected);
                let got = got.into_inner();
                assert_eq!(got, expected, "GetEvent {:?}", request.key);
                if matches!(request.key, Some(Key::IdempotencyKey(_))) && got.revision > 0 {
                    amended += 1;
                }
            }
            (None, Some(expected), Err(status)) => {
                assert_eq!(&RecordedStatus::of(&status), expected, "{:?}", request.key);
            }
            (response, error, got) => panic!(
                "GetEvent {:?}: recorded {response:?} / {error:?}, got {got:?}",
                request.key
            ),
        }
    }
    assert_eq!(amended, info.amended, "every amendment kept its history");

    let service = aggregates(&store, &info);
    let gateway = Principal::gateway(&info.network);
    for exchange in &aggregate_calls {
        let request: pb::AggregateRequest = json.parse(&exchange.request);
        let mut call = tonic::Request::new(request.clone());
        call.extensions_mut().insert(gateway.clone());
        let answer = service.aggregate(call).await;
        match (&exchange.response, &exchange.error, answer) {
            (Some(expected), None, Ok(got)) => {
                let expected: pb::AggregateResponse = json.parse(expected);
                assert_eq!(got.into_inner(), expected, "{request:?}");
            }
            (None, Some(expected), Err(status)) => {
                assert_eq!(&RecordedStatus::of(&status), expected, "{request:?}");
            }
            (response, error, got) => {
                panic!("{request:?}: recorded {response:?} / {error:?}, got {got:?}")
            }
        }
    }
}

/// Writes `fixtures/store-v0/` from a running node of the `psonet` binary named by
/// `PSONET_BIN`: certificates from `pki init`, synthetic events and exposure through
/// `psonet import`, hand-written V1.2 and amendable events, three amendments (one of them
/// twice) and an unchanged one, then every `GetEvent` and the aggregates the test replays;
/// then the node is stopped and its store copied. Run it only with the binary of the release
/// whose format the fixture pins, and only to replace the fixture on purpose:
///
/// ```sh
/// PSONET_BIN=/path/to/old/psonet cargo test -p psonet-node --test store_upgrade \
///     -- --ignored record_fixture
/// ```
// Multi-threaded: the clients' connection tasks must run to close while this thread waits
// for the node to exit (a graceful shutdown waits for open connections).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes the fixture from an old psonet binary; run by hand"]
async fn record_fixture() {
    let bin = PathBuf::from(std::env::var("PSONET_BIN").expect("PSONET_BIN: an old psonet"));
    let out = std::env::var("PSONET_FIXTURE_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| fixture_dir());
    recorder::record(&bin, &out).await;
}

/// Drives an old binary to write the fixture (only [`record_fixture`] uses it).
mod recorder {
    use super::*;
    use psonet_core::month::Month;
    use std::io::{BufRead, BufReader, Write};
    use std::net::SocketAddr;
    use std::process::{Child, Command, Stdio};
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

    const NETWORK: &str = "fixture-pso";
    const FACILITY: &str = "facility-1";
    /// Low enough that a few dozen events give released cells as well as suppressed ones.
    const MIN_CELL_COUNT: u32 = 2;

    pub async fn record(bin: &Path, out: &Path) {
        let work = tempfile::tempdir().unwrap();
        let pki = work.path().join("pki");
        run(
            bin,
            &[
                "pki",
                "init",
                "--network",
                NETWORK,
                "--out",
                &pki.to_string_lossy(),
                "--facility",
                FACILITY,
            ],
        );
        let data = work.path().join("data");
        let config = pki.join(FACILITY).join("node.toml");
        let mut node_config: toml::Value =
            toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        node_config["data_dir"] = toml::Value::String(data.to_string_lossy().into());
        node_config["local"]["listen"] = "127.0.0.1:0".into();
        node_config["federation"]["listen"] = "127.0.0.1:0".into();
        node_config["disclosure"]["min_cell_count"] = i64::from(MIN_CELL_COUNT).into();
        std::fs::write(&config, toml::to_string(&node_config).unwrap()).unwrap();
        let mut node = Node::start(bin, &config, &work.path().join("node.log"));
        let now = Month::current();
        let events_file = work.path().join("events.ndjson");
        let synth = run(
            bin,
            &[
                "synth",
                "--events",
                "40",
                "--months",
                "6",
                "--seed",
                "10",
                "--key-prefix",
                "fx",
            ],
        );
        let mut lines = String::from_utf8(synth).unwrap();
        lines.push_str(&hand_written_events(now));
        std::fs::File::create(&events_file)
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        let client_identity = pki.join(FACILITY).join("client");
        run(
            bin,
            &[
                "import",
                "--node",
                &node.local.to_string(),
                "--identity",
                &client_identity.to_string_lossy(),
                &events_file.to_string_lossy(),
            ],
        );

        let mut reporting = ReportingClient::new(channel(node.local, &client_identity));
        let amended = amend(&mut reporting).await;

        let keys: Vec<String> = lines
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["idempotency_key"].as_str().map(String::from))
            .collect();
        let json = Json::new();
        let mut get_events = Vec::new();
        let unknown = ["fx-never-submitted".to_string()];
        for key in keys.iter().chain(&unknown) {
            let by_key = pb::GetEventRequest {
                key: Some(Key::IdempotencyKey(key.clone())),
            };
            let answer = reporting.get_event(by_key.clone()).await;
            if let Ok(found) = &answer {
                let by_id = pb::GetEventRequest {
                    key: Some(Key::EventId(found.get_ref().event_id.clone())),
                };
                let again = reporting.get_event(by_id.clone()).await;
                get_events.push(exchange(&json, &by_id, again));
            }
            get_events.push(exchange(&json, &by_key, answer));
        }

        let mut aggregate = pb::aggregate_service_client::AggregateServiceClient::new(channel(
            node.federation,
            &pki.join("gateway"),
        ));
        let mut aggregate_calls = Vec::new();
        for request in aggregate_requests(now) {
            let answer = aggregate.aggregate(request.clone()).await;
            aggregate_calls.push(exchange(&json, &request, answer));
        }
        let events = keys.len() as u64;
        // A graceful shutdown waits for open connections: close ours first.
        drop((reporting, aggregate));
        node.stop();

        std::fs::create_dir_all(out).unwrap();
        let store = out.join("store");
        let _ = std::fs::remove_dir_all(&store);
        copy_dir(&data, &store);
        let version = String::from_utf8(run(bin, &["--version"])).unwrap();
        let info = FixtureInfo {
            written_by: std::env::var("PSONET_FIXTURE_WRITTEN_BY")
                .unwrap_or_else(|_| version.trim().to_string()),
            network: NETWORK.into(),
            facility_id: FACILITY.into(),
            min_cell_count: MIN_CELL_COUNT,
            events,
            amended,
        };
        write_json(&out.join("fixture.json"), &info);
        write_json(&out.join("get_event.json"), &get_events);
        write_json(&out.join("aggregate.json"), &aggregate_calls);
        std::fs::copy(&events_file, out.join("events.ndjson")).unwrap();
    }

    /// Events beyond the synthetic ones: a V1.2 report, and incidents to amend.
    fn hand_written_events(now: Month) -> String {
        let month = now.minus(2);
        let earlier = now.minus(4);
        [
            format!(
                r#"{{"idempotency_key":"fx-v12-1","cf_version":"CFER_H_V1_2","event_type":"INCIDENT","categories":["SURGERY_OR_ANESTHESIA_V12"],"harm":"MILD","harm_duration":"TEMPORARY","discovery_month":"{earlier}","unit_type":"SURGICAL","narrative":"Retained sponge found on imaging, removed the same day."}}"#
            ),
            format!(
                r#"{{"idempotency_key":"fx-amend-1","event_type":"INCIDENT","categories":["FALL"],"harm":"MILD","discovery_month":"{month}","unit_type":"MED_SURG","age_band":"OLDER_65_89","sex":"FEMALE","contributing_factors":["ENVIRONMENT"],"fall":{{"assistance":"UNASSISTED","injury":"SKIN_TEAR"}},"narrative":"Found on the floor beside the bed — «unwitnessed»."}}"#
            ),
            format!(
                r#"{{"idempotency_key":"fx-amend-2","event_type":"NEAR_MISS","categories":["MEDICATION"],"discovery_month":"{month}","unit_type":"EMERGENCY","near_miss_reason":"ACTIVE_RECOVERY","medication":{{"ncc_merp":"B","process_stage":"DISPENSING"}}}}"#
            ),
        ]
        .map(|l| l + "\n")
        .concat()
    }

    /// Amends `fx-amend-1` twice (harm reassessed, then a category added) and `fx-amend-2`
    /// once (it reached the patient), and sends `fx-v12-1` unchanged; returns the number of
    /// events with a history.
    async fn amend(client: &mut ReportingClient) -> u64 {
        let first = pb::Event {
            harm: pb::HarmLevel::Moderate as i32,
            harm_duration: pb::HarmDuration::Temporary as i32,
            ..current(client, "fx-amend-1").await
        };
        let answer = amend_one(client, first.clone(), "harm reassessed at 72 h").await;
        assert_eq!((answer.revision, answer.unchanged), (1, false));
        let second = pb::Event {
            categories: vec![
                pb::EventCategory::Fall as i32,
                pb::EventCategory::Medication as i32,
            ],
            ..first
        };
        let answer = amend_one(client, second, "sedative given before the fall").await;
        assert_eq!((answer.revision, answer.unchanged), (2, false));
        let near_miss = current(client, "fx-amend-2").await;
        let reached = pb::Event {
            event_type: pb::EventType::Incident as i32,
            harm: pb::HarmLevel::NoHarm as i32,
            near_miss_reason: 0,
            medication: near_miss.medication.map(|m| pb::MedicationDetail {
                ncc_merp: pb::NccMerpCategory::C as i32,
                ..m
            }),
            ..near_miss
        };
        let answer = amend_one(client, reached, "the dose was given; no harm").await;
        assert_eq!((answer.revision, answer.unchanged), (1, false));
        let v12 = current(client, "fx-v12-1").await;
        let answer = amend_one(client, v12, "re-sent by the incident system").await;
        assert_eq!((answer.revision, answer.unchanged), (0, true));
        2
    }

    type ReportingClient = pb::reporting_service_client::ReportingServiceClient<Channel>;

    /// The current version of the event stored under `key`.
    async fn current(client: &mut ReportingClient, key: &str) -> pb::Event {
        let request = pb::GetEventRequest {
            key: Some(Key::IdempotencyKey(key.into())),
        };
        let stored = client.get_event(request).await.expect("stored");
        stored.into_inner().event.expect("an event")
    }

    async fn amend_one(
        client: &mut ReportingClient,
        event: pb::Event,
        reason: &str,
    ) -> pb::AmendEventResponse {
        let request = pb::AmendEventRequest {
            event: Some(event),
            reason: reason.into(),
        };
        client
            .amend_event(request)
            .await
            .expect("amend")
            .into_inner()
    }

    /// Aggregates over the fixture's months that read every counter family, one with a
    /// filter and one that matches no event.
    fn aggregate_requests(now: Month) -> Vec<pb::AggregateRequest> {
        use pb::Dimension as D;
        let (from, to) = (now.minus(5).to_string(), now.to_string());
        let request = |grain: pb::TimeGrain, dims: &[D]| pb::AggregateRequest {
            month_from: from.clone(),
            month_to: to.clone(),
            time_grain: grain as i32,
            group_by: dims.iter().map(|d| *d as i32).collect(),
            ..Default::default()
        };
        let mut out = vec![
            request(pb::TimeGrain::Month, &[D::Category, D::Harm]),
            request(pb::TimeGrain::Month, &[D::EventType, D::Harm]),
            request(pb::TimeGrain::Quarter, &[D::EventType, D::UnitType]),
            request(pb::TimeGrain::Year, &[D::ContributingFactor]),
            request(pb::TimeGrain::Year, &[D::Category, D::ContributingFactor]),
            request(pb::TimeGrain::Quarter, &[D::AgeBand, D::Sex]),
            request(pb::TimeGrain::Year, &[D::Preventability, D::NccMerp]),
            request(pb::TimeGrain::Year, &[D::Category, D::UnitType]),
        ];
        let mut falls = request(pb::TimeGrain::Year, &[D::Harm]);
        falls.filter = Some(pb::AggregateFilter {
            categories: vec![pb::EventCategory::Fall as i32],
            ..Default::default()
        });
        out.push(falls);
        let mut deaths = request(pb::TimeGrain::Year, &[]);
        deaths.filter = Some(pb::AggregateFilter {
            harms: vec![pb::HarmLevel::Death as i32],
            ..Default::default()
        });
        out.push(deaths);
        out
    }

    fn exchange<Q, R>(
        json: &Json,
        request: &Q,
        answer: Result<tonic::Response<R>, tonic::Status>,
    ) -> Exchange
    where
        Q: ApiMessage,
        R: ApiMessage,
    {
        match answer {
            Ok(response) => Exchange {
                request: json.to_json(request),
                response: Some(json.to_json(response.get_ref())),
                error: None,
            },
            Err(status) => Exchange {
                request: json.to_json(request),
                response: None,
                error: Some(RecordedStatus::of(&status)),
            },
        }
    }

    fn write_json<T: Serialize>(path: &Path, value: &T) {
        let mut text = serde_json::to_string_pretty(value).unwrap();
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    /// Runs `bin args` to success and returns its standard output.
    fn run(bin: &Path, args: &[&str]) -> Vec<u8> {
        let output = Command::new(bin).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{bin:?} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// An mTLS channel to a node with an identity directory of `pki init`.
    fn channel(addr: SocketAddr, identity: &Path) -> Channel {
        let read = |name: &str| std::fs::read_to_string(identity.join(name)).unwrap();
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read("ca.pem")))
            .identity(Identity::from_pem(read("cert.pem"), read("key.pem")))
            .domain_name("localhost");
        Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect_lazy()
    }

    /// The old node process.
    struct Node {
        child: Child,
        local: SocketAddr,
        federation: SocketAddr,
    }

    impl Node {
        fn start(bin: &Path, config: &Path, log: &Path) -> Self {
            let mut child = Command::new(bin)
                .args(["node", "--config", &config.to_string_lossy()])
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(log).unwrap())
                .spawn()
                .unwrap();
            let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
            let ready = stdout
                .by_ref()
                .map_while(Result::ok)
                .find(|l| l.contains(" ready "))
                .expect("the node prints its ready line");
            // Keep reading, so the node never writes into a closed pipe.
            std::thread::spawn(move || stdout.for_each(drop));
            let addr = |key: &str| -> SocketAddr {
                ready
                    .split_whitespace()
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{key} in {ready:?}"))
            };
            let (local, federation) = (addr("local"), addr("federation"));
            Self {
                child,
                local,
                federation,
            }
        }

        /// SIGTERM, then wait for a clean exit: the store is flushed and closed.
        fn stop(&mut self) {
            let pid = self.child.id() as i32;
            // SAFETY: signals our own child process, which has not been reaped yet.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
            assert!(self.child.wait().unwrap().success());
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
