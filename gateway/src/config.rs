//! The gateway's configuration file (`gateway.toml`): typed, defaulted and checked at load time.

use crate::metric::catalogue::{MetricCatalogue, MetricConfig};
use crate::peer_group::{PeerAttributes, PeerAttributesConfig};
use psonet_core::disclosure::primary::{DEFAULT_MIN_CELL_COUNT, SmallCellRule};
use psonet_core::network_release::{
    DEFAULT_MAX_SHARE, DEFAULT_MIN_FACILITIES, NetworkReleaseRule, NetworkRuleError,
};
pub use psonet_serve::config_file::ConfigError;
use psonet_serve::config_file::read_toml;
use psonet_serve::identity::check_name;
use psonet_serve::tls::{TlsFiles, TlsMaterial};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Everything the gateway needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The network (SPIFFE trust domain).
    pub network: String,
    /// Address of the `BenchmarkService` listener; port 0 picks a free port.
    pub listen: SocketAddr,
    /// CA, certificate and key: served to partners and presented to nodes.
    pub tls: TlsFiles,
    /// Fan-out timing.
    #[serde(default)]
    pub fanout: FanoutConfig,
    /// Gateway-side disclosure re-check.
    #[serde(default)]
    pub disclosure: GatewayDisclosureConfig,
    /// The facilities of the network.
    #[serde(default)]
    pub facilities: Vec<FacilityEntry>,
    /// Metrics added to (or replacing) the built-in catalogue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricConfig>,
    /// Where to serve Prometheus metrics over plain HTTP (`GET /metrics`); off when unset.
    /// Bind it to a private interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Guidance published to the network (`GuidanceService`); none when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<crate::guidance::GuidanceConfig>,
}

/// Fan-out timing and the per-node client stack's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutConfig {
    /// The longest a benchmark waits for any one node, in ms. Default 2,000.
    #[serde(default = "default_deadline_ms")]
    pub node_deadline_ms: u64,
    /// The longest a connection attempt to a node may take, in ms. Default 1,000.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Calls in flight to one node at most; more are shed at once (a slow node cannot tie up
    /// the gateway). Default 256.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight_per_node: usize,
    /// Retries allowed on top of first attempts, in percent, over a 10 s window (plus a floor
    /// of 10 retries per second). Default 20.
    #[serde(default = "default_retry_percent")]
    pub retry_budget_percent: u32,
    /// Consecutive failures after which a node's breaker opens and the node is not asked until
    /// a probe succeeds. Default 5.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// Wait before the first probe of an open breaker, in ms; doubles after each failed probe.
    /// Default 1,000.
    #[serde(default = "default_breaker_backoff_ms")]
    pub breaker_backoff_ms: u64,
    /// Longest wait between probes, in ms. Default 30,000.
    #[serde(default = "default_breaker_max_backoff_ms")]
    pub breaker_max_backoff_ms: u64,
    /// Benchmarks the gateway serves at once; more are refused with `RESOURCE_EXHAUSTED`
    /// instead of queueing. Default 256.
    #[serde(default = "default_max_in_flight")]
    pub max_concurrent_benchmarks: usize,
}

fn default_max_in_flight() -> usize {
    256
}

fn default_retry_percent() -> u32 {
    20
}

fn default_breaker_failures() -> u32 {
    5
}

fn default_breaker_backoff_ms() -> u64 {
    1_000
}

fn default_breaker_max_backoff_ms() -> u64 {
    30_000
}

fn default_deadline_ms() -> u64 {
    2_000
}

fn default_connect_ms() -> u64 {
    1_000
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            node_deadline_ms: default_deadline_ms(),
            connect_timeout_ms: default_connect_ms(),
            max_in_flight_per_node: default_max_in_flight(),
            retry_budget_percent: default_retry_percent(),
            breaker_failures: default_breaker_failures(),
            breaker_backoff_ms: default_breaker_backoff_ms(),
            breaker_max_backoff_ms: default_breaker_max_backoff_ms(),
            max_concurrent_benchmarks: default_max_in_flight(),
        }
    }
}

impl FanoutConfig {
    /// The per-node deadline.
    pub fn node_deadline(&self) -> Duration {
        Duration::from_millis(self.node_deadline_ms)
    }

    /// The connection timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The first wait of an open breaker.
    pub fn breaker_backoff(&self) -> Duration {
        Duration::from_millis(self.breaker_backoff_ms)
    }

    /// The longest wait of an open breaker.
    pub fn breaker_max_backoff(&self) -> Duration {
        Duration::from_millis(self.breaker_max_backoff_ms)
    }
}

impl FanoutConfig {
    fn check(&self) -> Result<(), ConfigError> {
        let positive = [
            (
                "fanout.max_in_flight_per_node",
                self.max_in_flight_per_node as u64,
            ),
            ("fanout.breaker_failures", u64::from(self.breaker_failures)),
            ("fanout.breaker_backoff_ms", self.breaker_backoff_ms),
            (
                "fanout.max_concurrent_benchmarks",
                self.max_concurrent_benchmarks as u64,
            ),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::invalid(*key, "must be at least 1"));
        }
        if self.retry_budget_percent > 100 {
            return Err(ConfigError::invalid(
                "fanout.retry_budget_percent",
                "must be between 0 and 100",
            ));
        }
        if self.breaker_max_backoff_ms < self.breaker_backoff_ms {
            return Err(ConfigError::invalid(
                "fanout.breaker_max_backoff_ms",
                "must be at least fanout.breaker_backoff_ms",
            ));
        }
        Ok(())
    }
}

/// Gateway-side disclosure re-check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayDisclosureConfig {
    /// Smallest non-zero facility cell the gateway counts (k). Default 11.
    #[serde(default = "default_min_cell_count")]
    pub min_cell_count: u32,
    /// Contributing facilities a network or peer figure needs. Default 5, never below 3.
    #[serde(default = "default_min_facilities")]
    pub min_facilities: u32,
    /// Largest share of a figure's events one facility may hold, in (0, 1]. Default 0.75.
    #[serde(default = "default_max_share")]
    pub max_share: f64,
}

fn default_min_cell_count() -> u32 {
    DEFAULT_MIN_CELL_COUNT
}

fn default_min_facilities() -> u32 {
    DEFAULT_MIN_FACILITIES
}

fn default_max_share() -> f64 {
    DEFAULT_MAX_SHARE
}

impl Default for GatewayDisclosureConfig {
    fn default() -> Self {
        Self {
            min_cell_count: DEFAULT_MIN_CELL_COUNT,
            min_facilities: DEFAULT_MIN_FACILITIES,
            max_share: DEFAULT_MAX_SHARE,
        }
    }
}

/// One facility of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilityEntry {
    /// Facility id (as in its certificates).
    pub id: String,
    /// Its node's federation listener, e.g. `https://node.st-mary.example:7112`.
    pub endpoint: String,
    /// Name its certificate must carry; defaults to the endpoint's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Attributes peer groups are formed from.
    #[serde(default, skip_serializing_if = "PeerAttributesConfig::is_empty")]
    pub peer: PeerAttributesConfig,
}

impl FacilityEntry {
    /// The name the node's certificate must carry.
    pub fn server_name(&self) -> String {
        self.server_name
            .clone()
            .unwrap_or_else(|| endpoint_host(&self.endpoint))
    }
}

fn endpoint_host(endpoint: &str) -> String {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_string();
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_string()
}

/// A checked configuration with its TLS material loaded.
#[derive(Clone)]
pub struct LoadedGatewayConfig {
    /// The configuration.
    pub config: GatewayConfig,
    /// TLS material.
    pub tls: TlsMaterial,
    /// The small-cell re-check.
    pub small_cells: SmallCellRule,
    /// The release rule for network and peer figures.
    pub network_release: NetworkReleaseRule,
    /// The metric catalogue.
    pub metrics: MetricCatalogue,
    /// Peer attributes by facility id.
    pub peers: HashMap<String, PeerAttributes>,
}

impl GatewayConfig {
    /// Reads, parses and checks `path`; relative paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<LoadedGatewayConfig, ConfigError> {
        let (mut config, base): (GatewayConfig, _) = read_toml(path)?;
        config.tls.resolve_relative(&base);
        if let Some(guidance) = &mut config.guidance
            && guidance.dir.is_relative()
        {
            guidance.dir = base.join(&guidance.dir);
        }
        config.check()
    }

    /// Checks every value and loads the TLS files.
    pub fn check(self) -> Result<LoadedGatewayConfig, ConfigError> {
        check_name(&self.network).map_err(|e| ConfigError::invalid("network", e))?;
        let small_cells = SmallCellRule::new(self.disclosure.min_cell_count)
            .map_err(|e| ConfigError::invalid("disclosure.min_cell_count", e))?;
        let network_release =
            NetworkReleaseRule::new(self.disclosure.min_facilities, self.disclosure.max_share)
                .map_err(|e| {
                    let key = match e {
                        NetworkRuleError::TooFewFacilities(_) => "disclosure.min_facilities",
                        NetworkRuleError::BadShare(_) => "disclosure.max_share",
                    };
                    ConfigError::invalid(key, e)
                })?;
        if self.fanout.node_deadline_ms == 0 || self.fanout.connect_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "fanout",
                "timeouts must be at least 1 ms",
            ));
        }
        let metrics = MetricCatalogue::build(&self.metrics)?;
        let mut peers = HashMap::new();
        self.fanout.check()?;
        let mut ids = HashSet::new();
        for (i, f) in self.facilities.iter().enumerate() {
            check_name(&f.id)
                .map_err(|e| ConfigError::invalid(format!("facilities[{i}].id"), e.to_string()))?;
            if !ids.insert(f.id.as_str()) {
                return Err(ConfigError::invalid(
                    format!("facilities[{i}].id"),
                    format!("{} is listed twice", f.id),
                ));
            }
            let attributes = f.peer.check().map_err(|(key, why)| {
                ConfigError::invalid(format!("facilities[{i}].peer.{key}"), why)
            })?;
            peers.insert(f.id.clone(), attributes);
            if !f.endpoint.starts_with("https://") {
                return Err(ConfigError::invalid(
                    format!("facilities[{i}].endpoint"),
                    format!(
                        "{:?} must start with https:// (nodes only speak mutual TLS)",
                        f.endpoint
                    ),
                ));
            }
        }
        Ok(LoadedGatewayConfig {
            tls: self.tls.load("tls")?,
            small_cells,
            network_release,
            metrics,
            peers,
            config: self,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_default_to_the_endpoint_host() {
        let entry = |e: &str| FacilityEntry {
            id: "f".into(),
            endpoint: e.into(),
            server_name: None,
            peer: PeerAttributesConfig::default(),
        };
        assert_eq!(entry("https://127.0.0.1:7112").server_name(), "127.0.0.1");
        assert_eq!(
            entry("https://node.example.org:7112/").server_name(),
            "node.example.org"
        );
        assert_eq!(entry("https://[::1]:7112").server_name(), "::1");
    }

    #[test]
    fn metrics_and_peer_attributes_load_from_the_documented_toml() {
        let text = r#"
            network = "n"
            listen = "127.0.0.1:0"
            tls = { ca = "ca.pem", cert = "cert.pem", key = "key.pem" }
            disclosure = { min_facilities = 2 }
            [[metrics]]
            id = "vte"
            name = "Venous thromboembolism"
            denominator = "admissions"
            multiplier = 1000
            unit = "per 1,000 admissions"
            numerator = { categories = ["vte"] }
            [[facilities]]
            id = "f1"
            endpoint = "https://127.0.0.1:7112"
            peer = { beds = 320, teaching = "major", facility_type = "general_acute", region = "midwest", urbanicity = "urban" }
        "#;
        let config: GatewayConfig = toml::from_str(text).unwrap();
        let catalogue = MetricCatalogue::build(&config.metrics).unwrap();
        assert_eq!(catalogue.get("vte").unwrap().unit, "per 1,000 admissions");
        assert!(config.facilities[0].peer.check().is_ok());
        // A release rule below the floor of 3 is refused at load.
        let err = config.check().err().unwrap().to_string();
        assert!(err.starts_with("disclosure.min_facilities"), "{err}");
    }
}
