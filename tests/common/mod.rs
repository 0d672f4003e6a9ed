//! A psonet network started the way a user starts one: certificates from `pki init`, then
//! `psonet node --config …` and `psonet gateway --config …` as real processes on loopback.

#![allow(dead_code)]

use psonet::pki::{self, InitOptions, NetworkLayout};
use psonet_core::pb::{
    self, aggregate_service_client::AggregateServiceClient,
    benchmark_service_client::BenchmarkServiceClient,
    reporting_service_client::ReportingServiceClient,
};
use psonet_gateway::GatewayConfig;
use psonet_node::NodeConfig;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tempfile::TempDir;
use tonic::transport::Channel;

pub const NETWORK: &str = "testnet";

/// A running `psonet` server process; killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// `key=value` pairs of its ready line (e.g. local, federation, listen).
    ready: Vec<(String, String)>,
}

impl ServerProcess {
    /// Starts `psonet <args>` and waits for its ready line.
    pub fn spawn(args: &[&str], log: &Path) -> Self {
        Self::spawn_with_env(args, log, &[])
    }

    /// Starts `psonet <args>` with extra environment variables and waits for its ready line.
    pub fn spawn_with_env(args: &[&str], log: &Path, env: &[(String, String)]) -> Self {
        let log_file = std::fs::File::create(log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_psonet"))
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("spawn psonet");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains(" ready ") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "psonet {args:?} did not become ready; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        };
        let ready = line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self { child, ready }
    }

    /// An address from the ready line.
    pub fn addr(&self, key: &str) -> SocketAddr {
        self.ready
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in ready line {:?}", self.ready))
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap: a crash, not a shutdown.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns whether it exited successfully.
    pub fn wait_success(&mut self) -> bool {
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A facility node process and where its files are.
pub struct TestNode {
    pub id: String,
    pub config: PathBuf,
    pub client_identity: PathBuf,
    pub process: Option<ServerProcess>,
    log: PathBuf,
    env: Vec<(String, String)>,
}

impl TestNode {
    pub fn local(&self) -> SocketAddr {
        self.process.as_ref().expect("node running").addr("local")
    }

    pub fn federation(&self) -> SocketAddr {
        self.process
            .as_ref()
            .expect("node running")
            .addr("federation")
    }

    /// What the node process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts (or restarts) the node on its config and data directory.
    pub fn start(&mut self) {
        let config = self.config.to_string_lossy().to_string();
        self.process = Some(ServerProcess::spawn_with_env(
            &["node", "--config", &config],
            &self.log,
            &self.env,
        ));
    }

    /// Writes the ports the node listens on now into its config, so a restart keeps them
    /// (as a real node with fixed ports would).
    pub fn pin_ports(&self) {
        let text = std::fs::read_to_string(&self.config).expect("node config");
        let mut config: toml::Value = toml::from_str(&text).expect("node config is TOML");
        for (section, addr) in [("local", self.local()), ("federation", self.federation())] {
            config[section]["listen"] = toml::Value::String(addr.to_string());
        }
        std::fs::write(&self.config, toml::to_string(&config).unwrap()).unwrap();
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) {
        let mut process = self.process.take().expect("node running");
        process.signal("TERM");
        assert!(
            process.wait_success(),
            "node {} did not exit cleanly",
            self.id
        );
    }

    /// SIGKILLs the node.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// A `ReportingService` client with this facility's own client identity.
    pub fn reporting(&self) -> ReportingServiceClient<Channel> {
        ReportingServiceClient::new(channel(&self.local(), &self.client_identity))
    }
}

/// Nodes and, once started, a gateway.
pub struct TestNetwork {
    pub dir: TempDir,
    pub layout: NetworkLayout,
    pub nodes: Vec<TestNode>,
    pub gateway: Option<ServerProcess>,
    env: Vec<(String, String)>,
}

impl TestNetwork {
    /// Issues certificates with `pki init` and starts `facilities` node processes.
    pub fn start(facilities: usize) -> Self {
        Self::start_configured(facilities, |_| {})
    }

    /// As [`TestNetwork::start`], after `edit` changed every node's config file.
    pub fn start_configured(facilities: usize, edit: impl Fn(&mut NodeConfig)) -> Self {
        Self::start_with(facilities, &[], edit)
    }

    /// As [`TestNetwork::start`], every process (gateway too) with extra environment variables.
    pub fn start_with_env(facilities: usize, env: &[(&str, &str)]) -> Self {
        Self::start_with(facilities, env, |_| {})
    }

    fn start_with(facilities: usize, env: &[(&str, &str)], edit: impl Fn(&mut NodeConfig)) -> Self {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = pki::init(&InitOptions {
            network: NETWORK.into(),
            out: dir.path().join("pki"),
            facilities: (1..=facilities).map(|i| format!("facility-{i}")).collect(),
            hosts: Vec::new(),
            base_port: None,
            years: 1,
        })
        .expect("pki init");
        let nodes = layout
            .facilities
            .iter()
            .map(|f| {
                let mut node = TestNode {
                    id: f.id.clone(),
                    config: f.node_config.clone(),
                    client_identity: f.client_identity.clone(),
                    process: None,
                    log: dir.path().join(format!("{}.log", f.id)),
                    env: env.clone(),
                };
                let text = std::fs::read_to_string(&node.config).expect("node config");
                let mut config: NodeConfig = toml::from_str(&text).expect("node config parses");
                edit(&mut config);
                std::fs::write(&node.config, toml::to_string(&config).unwrap()).unwrap();
                node.start();
                node
            })
            .collect();
        Self {
            dir,
            layout,
            nodes,
            gateway: None,
            env,
        }
    }

    /// Starts the gateway with the nodes' real addresses and a per-node deadline.
    pub fn start_gateway(&mut self, node_deadline_ms: u64) {
        self.start_gateway_with(|config| config.fanout.node_deadline_ms = node_deadline_ms);
    }

    /// Starts the gateway with the nodes' real addresses, after `adjust` has had its say on
    /// the configuration (e.g. peer attributes of the registry).
    pub fn start_gateway_with(&mut self, adjust: impl FnOnce(&mut GatewayConfig)) {
        let mut config: GatewayConfig =
            toml::from_str(&std::fs::read_to_string(&self.layout.gateway_config).unwrap()).unwrap();
        for (entry, node) in config.facilities.iter_mut().zip(&self.nodes) {
            entry.endpoint = format!("https://127.0.0.1:{}", node.federation().port());
        }
        adjust(&mut config);
        let path = self.layout.out.join("gateway-test.toml");
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
        let path = path.to_string_lossy().to_string();
        let log = self.dir.path().join("gateway.log");
        self.gateway = Some(ServerProcess::spawn_with_env(
            &["gateway", "--config", &path],
            &log,
            &self.env,
        ));
    }

    pub fn gateway_addr(&self) -> SocketAddr {
        self.gateway
            .as_ref()
            .expect("gateway running")
            .addr("listen")
    }

    /// A certificate and key (PEM) for `uri` and the loopback host names, issued by the
    /// network's CA (read back from `ca.pem` and `ca.key`), valid from `from` to `to` (y, m, d).
    pub fn issue_certificate(
        &self,
        uri: &str,
        usages: &[rcgen::ExtendedKeyUsagePurpose],
        from: (i32, u8, u8),
        to: (i32, u8, u8),
    ) -> (String, String) {
        let read = |name: &str| std::fs::read_to_string(self.layout.out.join(name)).unwrap();
        let ca_key = rcgen::KeyPair::from_pem(&read("ca.key")).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&read("ca.pem"), ca_key).unwrap();
        let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let mut params = rcgen::CertificateParams::new(hosts).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::URI(uri.try_into().unwrap()));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, uri);
        params.extended_key_usages = usages.to_vec();
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A channel to the gateway as the partner.
    pub fn benchmark_client_channel(&self) -> Channel {
        channel(&self.gateway_addr(), &self.layout.partner_identity)
    }

    /// This month's benchmark, asked as the partner on a new connection.
    pub async fn benchmark_this_month(&self) -> pb::NetworkBenchmarkResponse {
        self.benchmark_client()
            .network_benchmark(this_month_benchmark())
            .await
            .expect("the benchmark answers")
            .into_inner()
    }

    /// A `BenchmarkService` client as the partner.
    pub fn benchmark_client(&self) -> BenchmarkServiceClient<Channel> {
        BenchmarkServiceClient::new(channel(&self.gateway_addr(), &self.layout.partner_identity))
    }

    /// The gateway's own identity directory.
    pub fn gateway_identity(&self) -> PathBuf {
        self.layout.out.join("gateway")
    }

    /// An `AggregateService` client to node `i`, as the gateway.
    pub fn aggregate_client(&self, i: usize) -> AggregateServiceClient<Channel> {
        AggregateServiceClient::new(channel(
            &self.nodes[i].federation(),
            &self.gateway_identity(),
        ))
    }
}

/// An mTLS channel to `addr` with the identity directory `identity`.
pub fn channel(addr: &SocketAddr, identity: &Path) -> Channel {
    psonet::client::channel(&addr.to_string(), identity).expect("channel")
}

/// A minimal valid event.
pub fn event(
    key: &str,
    month: &str,
    category: pb::EventCategory,
    harm: pb::HarmLevel,
) -> pb::Event {
    pb::Event {
        idempotency_key: key.into(),
        cf_version: 0,
        event_type: pb::EventType::Incident as i32,
        categories: vec![category as i32],
        harm: harm as i32,
        discovery_month: month.into(),
        unit_type: pb::UnitType::Medical as i32,
        narrative: format!("test event {key}"),
        ..Default::default()
    }
}

/// Streams `events` to a node and returns the summary.
pub async fn submit_all(
    client: &mut ReportingServiceClient<Channel>,
    events: Vec<pb::Event>,
) -> pb::SubmitEventsResponse {
    let stream = tokio_stream::iter(
        events
            .into_iter()
            .map(|e| pb::SubmitEventsRequest { event: Some(e) }),
    );
    client
        .submit_events(stream)
        .await
        .expect("submit_events")
        .into_inner()
}

/// Total events in the released cells of an aggregate, and the number of suppressed cells.
pub fn released_total(response: &pb::AggregateResponse) -> (u64, usize) {
    let total = response.cells.iter().map(|c| c.count).sum();
    let suppressed = response.cells.iter().filter(|c| c.suppressed).count();
    (total, suppressed)
}

pub fn aggregate_request(from: &str, to: &str) -> pb::AggregateRequest {
    pb::AggregateRequest {
        month_from: from.into(),
        month_to: to.into(),
        group_by: vec![pb::Dimension::Category as i32, pb::Dimension::Harm as i32],
        ..Default::default()
    }
}

/// Lets a network of three facilities — the smallest the release rule can be set to — release
/// figures, for tests that need only a few nodes.
pub fn release_with_three_facilities(config: &mut GatewayConfig) {
    config.disclosure.min_facilities = 3;
}

/// Each cell of an answer grouped by harm as (harm, count, suppressed).
pub fn harm_cells(answer: &pb::AggregateResponse) -> Vec<(i32, u64, bool)> {
    answer
        .cells
        .iter()
        .map(|c| (c.harm, c.count, c.suppressed))
        .collect()
}

/// A benchmark of this month, all categories.
pub fn this_month_benchmark() -> pb::NetworkBenchmarkRequest {
    let month = psonet_core::month::Month::current().to_string();
    pb::NetworkBenchmarkRequest {
        month_from: month.clone(),
        month_to: month,
        categories: vec![],
        ..Default::default()
    }
}

/// Whether every facility answered.
pub fn all_ok(coverage: &[pb::FacilityCoverage]) -> bool {
    coverage
        .iter()
        .all(|c| c.status == pb::CoverageStatus::Ok as i32)
}
