//! The gateway's configuration file (`gateway.toml`): typed, defaulted and checked at load time.

use crate::metric::catalogue::{MetricCatalogue, MetricConfig};
use crate::peer_group::{PeerAttributes, PeerAttributesConfig};
use psonet_core::disclosure::network_cell::NetworkCellRule;
use psonet_core::disclosure::primary::{DEFAULT_MIN_CELL_COUNT, SmallCellRule};
use psonet_core::network_release::{
    DEFAULT_MAX_SHARE, DEFAULT_MIN_FACILITIES, NetworkReleaseRule, NetworkRuleError,
};
pub use psonet_serve::config_file::ConfigError;
use psonet_serve::config_file::read_toml;
use psonet_serve::identity::check_name;
use psonet_serve::link::{DEFAULT_KEEPALIVE_INTERVAL_MS, DEFAULT_KEEPALIVE_TIMEOUT_MS, Keepalive};
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
    /// Address of the link listener that facility nodes behind a firewall dial out to (e.g.
    /// `0.0.0.0:7443`), then serve their federation API over; off when unset. Needed by every
    /// facility listed without an `endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_listen: Option<SocketAddr>,
    /// Keepalive and handshake limits of links.
    #[serde(default)]
    pub links: LinksConfig,
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

/// Links from nodes that dial out: how fast a dead one is found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksConfig {
    /// Silence on a link before the gateway sends an HTTP/2 PING, in ms. Default 2,000.
    #[serde(default = "default_keepalive_interval_ms")]
    pub keepalive_interval_ms: u64,
    /// Longest wait for the PING's answer before the link is dropped and the facility shows as
    /// not linked, in ms. Default 3,000: a frozen or unplugged node is found within about 5 s.
    #[serde(default = "default_keepalive_timeout_ms")]
    pub keepalive_timeout_ms: u64,
}

fn default_keepalive_interval_ms() -> u64 {
    DEFAULT_KEEPALIVE_INTERVAL_MS
}

fn default_keepalive_timeout_ms() -> u64 {
    DEFAULT_KEEPALIVE_TIMEOUT_MS
}

impl Default for LinksConfig {
    fn default() -> Self {
        Self {
            keepalive_interval_ms: default_keepalive_interval_ms(),
            keepalive_timeout_ms: default_keepalive_timeout_ms(),
        }
    }
}

impl LinksConfig {
    /// The links' HTTP/2 keepalive.
    pub fn keepalive(&self) -> Keepalive {
        Keepalive::from_ms(self.keepalive_interval_ms, self.keepalive_timeout_ms)
    }

    fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("links.keepalive_interval_ms", self.keepalive_interval_ms),
            ("links.keepalive_timeout_ms", self.keepalive_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
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
    /// Applies to figures summed in the clear: the node-suppressed path and the funnel.
    #[serde(default = "default_max_share")]
    pub max_share: f64,
    /// Where network figures come from. Default `secure`.
    #[serde(default, skip_serializing_if = "NetworkSums::is_secure")]
    pub network_sums: NetworkSums,
}

/// Where the gateway's network figures (category rows, pooled rates, trends) come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkSums {
    /// Secure aggregation: each node's exact counts, masked so that only the cohort's sum
    /// opens; disclosure control on that sum. Exact figures.
    #[default]
    Secure,
    /// The path before secure aggregation: each node suppresses its own small cells, the
    /// gateway sums what is left. Figures are lower bounds where cells were withheld; for a
    /// network whose nodes do not all serve secure aggregation yet, and for comparisons.
    NodeSuppressed,
}

impl NetworkSums {
    fn is_secure(&self) -> bool {
        *self == NetworkSums::Secure
    }
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
            network_sums: NetworkSums::Secure,
        }
    }
}

/// One facility of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilityEntry {
    /// Facility id (as in its certificates).
    pub id: String,
    /// Its node's federation listener, e.g. `https://node.st-mary.example:7112`. Unset for a
    /// node that opens no inbound port and dials out to `link_listen` instead; with both, a
    /// live link is used first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Name its certificate must carry; defaults to the endpoint's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Attributes peer groups are formed from.
    #[serde(default, skip_serializing_if = "PeerAttributesConfig::is_empty")]
    pub peer: PeerAttributesConfig,
}

impl FacilityEntry {
    /// The name the node's certificate must carry, when the gateway dials it.
    pub fn server_name(&self) -> Option<String> {
        self.server_name
            .clone()
            .or_else(|| self.endpoint.as_deref().map(endpoint_host))
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
    /// The release rule for figures summed in the clear (node-suppressed path, funnel).
    pub network_release: NetworkReleaseRule,
    /// The release rule for cells of a secure network sum.
    pub network_cells: NetworkCellRule,
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
        let network_cells = NetworkCellRule::new(small_cells, self.disclosure.min_facilities)
            .map_err(|e| ConfigError::invalid("disclosure.min_facilities", e))?;
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
            match &f.endpoint {
                Some(endpoint) if !endpoint.starts_with("https://") => {
                    return Err(ConfigError::invalid(
                        format!("facilities[{i}].endpoint"),
                        format!(
                            "{endpoint:?} must start with https:// (nodes only speak mutual TLS)"
                        ),
                    ));
                }
                None if self.link_listen.is_none() => {
                    return Err(ConfigError::invalid(
                        format!("facilities[{i}].endpoint"),
                        format!(
                            "is unset and there is no link_listen: the gateway could never \
                             reach facility {} (give its endpoint, or set link_listen for a \
                             node that dials out)",
                            f.id
                        ),
                    ));
                }
                _ => {}
            }
        }
        self.links.check()?;
        Ok(LoadedGatewayConfig {
            tls: self.tls.load("tls")?,
            small_cells,
            network_release,
            network_cells,
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
            endpoint: Some(e.into()),
            server_name: None,
            peer: PeerAttributesConfig::default(),
        };
        let name = |e: &str| entry(e).server_name().unwrap();
        assert_eq!(name("https://127.0.0.1:7112"), "127.0.0.1");
        assert_eq!(name("https://node.example.org:7112/"), "node.example.org");
        assert_eq!(name("https://[::1]:7112"), "::1");
        let linked = FacilityEntry {
            endpoint: None,
            ..entry("https://x")
        };
        assert_eq!(linked.server_name(), None);
    }

    #[test]
    fn a_facility_without_an_endpoint_needs_the_link_listener() {
        let text = |link: &str| {
            format!(
                "network = \"n\"\nlisten = \"127.0.0.1:0\"\n{link}\n\
                 tls = {{ ca = \"ca.pem\", cert = \"cert.pem\", key = \"key.pem\" }}\n\
                 [[facilities]]\nid = \"f1\"\n"
            )
        };
        let unreachable: GatewayConfig = toml::from_str(&text("")).unwrap();
        let err = unreachable.check().err().unwrap().to_string();
        assert!(
            err.starts_with("facilities[0].endpoint") && err.contains("link_listen"),
            "{err}"
        );
        let linked: GatewayConfig =
            toml::from_str(&text("link_listen = \"127.0.0.1:7443\"")).unwrap();
        assert_eq!(linked.facilities[0].endpoint, None);
        assert_eq!(linked.links, LinksConfig::default());
        // The check gets past the registry and stops only at the missing TLS files.
        let err = linked.check().err().unwrap().to_string();
        assert!(err.starts_with("tls.ca"), "{err}");
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
