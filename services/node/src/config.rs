//! The node's configuration file (`node.toml`): typed, defaulted and checked at load time.

use crate::policy::{Policy, PolicyRule};
use psonet_core::disclosure::buckets::FinestGrain;
use psonet_core::disclosure::primary::{DEFAULT_MIN_CELL_COUNT, SmallCellRule};
use psonet_core::disclosure::zcdp::Rho;
use psonet_core::secagg::MAX_COHORT;
use psonet_core::secagg::protocol::{DEFAULT_MIN_COHORT, MIN_COHORT_FLOOR};
pub use psonet_serve::config_file::ConfigError;
use psonet_serve::config_file::read_toml;
use psonet_serve::identity::check_name;
use psonet_serve::link::{DEFAULT_KEEPALIVE_INTERVAL_MS, DEFAULT_KEEPALIVE_TIMEOUT_MS, Keepalive};
use psonet_serve::tls::{TlsFiles, TlsMaterial};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything a facility node needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This facility's id in the network (must match its certificates).
    pub facility_id: String,
    /// The network (SPIFFE trust domain) this node belongs to.
    pub network: String,
    /// Directory of the sled store; created if missing. Relative to the config file.
    pub data_dir: PathBuf,
    /// Listener for the facility's own systems (`ReportingService`).
    pub local: ListenerConfig,
    /// The node's identity in the network, and where it listens for the PSO gateway
    /// (`AggregateService`), if it does.
    pub federation: FederationConfig,
    /// The link this node dials out to the gateway and serves its federation API over, so it
    /// needs no inbound port; off when unset. A node listens, links, or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_link: Option<GatewayLinkConfig>,
    /// Disclosure control applied to everything the federation listener releases.
    #[serde(default)]
    pub disclosure: DisclosureConfig,
    /// Differential privacy (off unless the network's policy turns it on).
    #[serde(default)]
    pub privacy: PrivacyConfig,
    /// Which principals may ask which queries; everyone everything when no rule is listed.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Store tuning.
    #[serde(default)]
    pub store: StoreConfig,
    /// Secure aggregation: the smallest cohort this node masks its counts for.
    #[serde(default)]
    pub secure_aggregation: SecureAggregationConfig,
    /// Where to serve Prometheus metrics over plain HTTP (`GET /metrics`); off when unset.
    /// Bind it to a private interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Where to pull the PSO's guidance from; no pulling when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<crate::guidance::GuidancePullConfig>,
}

/// One mutual-TLS listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address to listen on, e.g. `0.0.0.0:7112`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// CA, certificate and key of this listener.
    pub tls: TlsFiles,
}

/// How the gateway reaches this node's federation API: the node's certificate in the network
/// (presented on the listener and on links alike) and, optionally, a listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// Address the gateway dials, e.g. `0.0.0.0:7112`; port 0 picks a free port. Unset: no
    /// inbound port at all, and the gateway reaches the node only over `[gateway_link]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// CA (the network's), certificate and key of this node in the network.
    pub tls: TlsFiles,
}

/// The outbound link: whom to dial, and how to keep the link alive and come back after a break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayLinkConfig {
    /// The gateway's link listener, e.g. `https://pso.example.org:7443`. Its host name is
    /// resolved to every address it has, and the node keeps one link to each (one per gateway
    /// replica behind a headless Service), re-resolving every `resolve_interval_s`.
    pub endpoint: String,
    /// Name the gateway's certificate must carry; defaults to the endpoint's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// First wait before redialling a broken or refused link, in ms; each failed attempt
    /// multiplies it by 1.6, with ±20 % jitter, up to `reconnect_backoff_max_ms`. Default 500.
    #[serde(default = "default_backoff_ms")]
    pub reconnect_backoff_ms: u64,
    /// Longest wait between attempts, in ms. Default 30,000.
    #[serde(default = "default_backoff_max_ms")]
    pub reconnect_backoff_max_ms: u64,
    /// The longest a TCP connect plus TLS handshake may take, in ms. Default 5,000.
    #[serde(default = "default_link_connect_ms")]
    pub connect_timeout_ms: u64,
    /// How often the endpoint's host name is resolved again, in seconds (a replica added or
    /// rolled gets its link within this time). Default 30.
    #[serde(default = "default_resolve_interval_s")]
    pub resolve_interval_s: u64,
    /// A file in `/etc/hosts` format read before DNS at every resolution (for sites that pin
    /// the gateway's addresses, and for tests); the system resolver is asked for names it does
    /// not list. Relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts_file: Option<PathBuf>,
    /// Silence on the link before the node sends an HTTP/2 PING, in ms. Default 2,000.
    #[serde(default = "default_keepalive_interval_ms")]
    pub keepalive_interval_ms: u64,
    /// Longest wait for the PING's answer before the link is dropped and redialled, in ms.
    /// Default 3,000: a dead gateway is noticed within about 5 s.
    #[serde(default = "default_keepalive_timeout_ms")]
    pub keepalive_timeout_ms: u64,
}

fn default_keepalive_interval_ms() -> u64 {
    DEFAULT_KEEPALIVE_INTERVAL_MS
}

fn default_keepalive_timeout_ms() -> u64 {
    DEFAULT_KEEPALIVE_TIMEOUT_MS
}

fn default_backoff_ms() -> u64 {
    500
}

fn default_backoff_max_ms() -> u64 {
    30_000
}

fn default_link_connect_ms() -> u64 {
    5_000
}

fn default_resolve_interval_s() -> u64 {
    30
}

impl GatewayLinkConfig {
    /// A link to `endpoint` with every other setting at its default.
    pub fn new(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.to_string(),
            server_name: None,
            reconnect_backoff_ms: default_backoff_ms(),
            reconnect_backoff_max_ms: default_backoff_max_ms(),
            connect_timeout_ms: default_link_connect_ms(),
            resolve_interval_s: default_resolve_interval_s(),
            hosts_file: None,
            keepalive_interval_ms: default_keepalive_interval_ms(),
            keepalive_timeout_ms: default_keepalive_timeout_ms(),
        }
    }

    /// The link's HTTP/2 keepalive.
    pub fn keepalive(&self) -> Keepalive {
        Keepalive::from_ms(self.keepalive_interval_ms, self.keepalive_timeout_ms)
    }

    /// The endpoint's host and port (443 when it names none).
    pub fn host_port(&self) -> Result<(String, u16), ConfigError> {
        let uri: tonic::codegen::http::Uri = self.endpoint.parse().map_err(|e| {
            ConfigError::invalid("gateway_link.endpoint", format!("not a URI: {e}"))
        })?;
        if uri.scheme_str() != Some("https") {
            return Err(ConfigError::invalid(
                "gateway_link.endpoint",
                format!(
                    "{:?} must start with https:// (links are mutual TLS)",
                    self.endpoint
                ),
            ));
        }
        let host = uri
            .host()
            .ok_or_else(|| ConfigError::invalid("gateway_link.endpoint", "names no host"))?;
        Ok((
            host.trim_matches(['[', ']']).to_string(),
            uri.port_u16().unwrap_or(443),
        ))
    }

    /// The name the gateway's certificate must carry.
    pub fn server_name(&self) -> Result<String, ConfigError> {
        match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => Ok(self.host_port()?.0),
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        use ConfigError as E;
        self.host_port()?;
        if self.reconnect_backoff_ms == 0 {
            return Err(E::invalid(
                "gateway_link.reconnect_backoff_ms",
                "must be at least 1",
            ));
        }
        if self.reconnect_backoff_max_ms < self.reconnect_backoff_ms {
            return Err(E::invalid(
                "gateway_link.reconnect_backoff_max_ms",
                "must be at least gateway_link.reconnect_backoff_ms",
            ));
        }
        if self.connect_timeout_ms == 0 {
            return Err(E::invalid(
                "gateway_link.connect_timeout_ms",
                "must be at least 1",
            ));
        }
        if self.resolve_interval_s == 0 {
            return Err(E::invalid(
                "gateway_link.resolve_interval_s",
                "must be at least 1",
            ));
        }
        for (key, value) in [
            (
                "gateway_link.keepalive_interval_ms",
                self.keepalive_interval_ms,
            ),
            (
                "gateway_link.keepalive_timeout_ms",
                self.keepalive_timeout_ms,
            ),
        ] {
            if value == 0 {
                return Err(E::invalid(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// Disclosure-control settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureConfig {
    /// Smallest non-zero count released (k); 1..k-1 are suppressed. Default 11.
    /// Below 11 the node warns loudly at start. The same k is the smallest query set answered.
    #[serde(default = "default_min_cell_count")]
    pub min_cell_count: u32,
    /// Finest time bucket released: `month` (default), `quarter` or `year`.
    #[serde(default)]
    pub finest_grain: FinestGrain,
}

fn default_min_cell_count() -> u32 {
    DEFAULT_MIN_CELL_COUNT
}

impl Default for DisclosureConfig {
    fn default() -> Self {
        Self {
            min_cell_count: DEFAULT_MIN_CELL_COUNT,
            finest_grain: FinestGrain::default(),
        }
    }
}

/// Differential-privacy settings: noise on every released count and a budget per querier and
/// per data month. ρ is zero-concentrated DP; ρ = 0.02 per query is ±10 per cell at 95%.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Add discrete-Gaussian noise and charge budgets. Default false.
    #[serde(default)]
    pub differential_privacy: bool,
    /// ρ each answered query costs on each month it covers. Default 0.02.
    #[serde(default = "default_rho_per_query")]
    pub rho_per_query: f64,
    /// ρ one querier may spend on one data month, over all time. Default 0.5.
    #[serde(default = "default_querier_budget")]
    pub querier_budget: f64,
    /// ρ all queriers together may spend on one data month, over all time. Default 1.0.
    #[serde(default = "default_global_budget")]
    pub global_budget: f64,
}

fn default_rho_per_query() -> f64 {
    0.02
}

fn default_querier_budget() -> f64 {
    0.5
}

fn default_global_budget() -> f64 {
    1.0
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            differential_privacy: false,
            rho_per_query: default_rho_per_query(),
            querier_budget: default_querier_budget(),
            global_budget: default_global_budget(),
        }
    }
}

/// The checked differential-privacy settings, in exact millionths of ρ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivacyBudgets {
    /// Cost of one answered query per month it covers.
    pub per_query: Rho,
    /// Lifetime budget of one querier per data month.
    pub querier: Rho,
    /// Lifetime budget of all queriers per data month.
    pub global: Rho,
}

impl PrivacyConfig {
    /// The budgets when differential privacy is on; `Err` names the bad key.
    fn check(&self) -> Result<Option<PrivacyBudgets>, ConfigError> {
        let rho = |key: &str, v: f64| {
            Rho::from_f64(v).map_err(|e| ConfigError::invalid(format!("privacy.{key}"), e))
        };
        let budgets = PrivacyBudgets {
            per_query: rho("rho_per_query", self.rho_per_query)?,
            querier: rho("querier_budget", self.querier_budget)?,
            global: rho("global_budget", self.global_budget)?,
        };
        if budgets.per_query == Rho::ZERO {
            return Err(ConfigError::invalid(
                "privacy.rho_per_query",
                "must be greater than 0",
            ));
        }
        if budgets.querier < budgets.per_query || budgets.global < budgets.querier {
            return Err(ConfigError::invalid(
                "privacy",
                "need rho_per_query <= querier_budget <= global_budget",
            ));
        }
        Ok(self.differential_privacy.then_some(budgets))
    }
}

/// Facility policy: the queries auto-approved for which principals.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The rules; a query is answered when one of them approves it. No rules: all approved.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
}

/// Store tuning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// sled page cache in MiB; bounds the node's memory. Default 64.
    #[serde(default = "default_cache_mb")]
    pub cache_capacity_mb: u64,
}

fn default_cache_mb() -> u64 {
    64
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_capacity_mb: default_cache_mb(),
        }
    }
}

/// Secure-aggregation settings (`[secure_aggregation]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureAggregationConfig {
    /// The fewest facilities a cohort may have for this node to take part in a secure sum
    /// (and the fewest survivors it unmasks for). Default 5; at least 3, since with two members
    /// either one could subtract its own figures from the sum and read the other's.
    #[serde(default = "default_min_cohort")]
    pub min_cohort: usize,
}

fn default_min_cohort() -> usize {
    DEFAULT_MIN_COHORT
}

impl Default for SecureAggregationConfig {
    fn default() -> Self {
        Self {
            min_cohort: DEFAULT_MIN_COHORT,
        }
    }
}

impl SecureAggregationConfig {
    /// Checks the minimum against the floor; `Err` names the key.
    fn check(&self) -> Result<(), ConfigError> {
        if self.min_cohort < MIN_COHORT_FLOOR {
            return Err(ConfigError::invalid(
                "secure_aggregation.min_cohort",
                format!("must be at least {MIN_COHORT_FLOOR}"),
            ));
        }
        if self.min_cohort > MAX_COHORT {
            return Err(ConfigError::invalid(
                "secure_aggregation.min_cohort",
                format!("must be at most {MAX_COHORT}, the largest cohort"),
            ));
        }
        Ok(())
    }
}

/// A checked configuration with its TLS material loaded.
#[derive(Clone)]
pub struct LoadedNodeConfig {
    /// The configuration.
    pub config: NodeConfig,
    /// Local listener's TLS material.
    pub local_tls: TlsMaterial,
    /// The node's TLS material in the network (federation listener and links).
    pub federation_tls: TlsMaterial,
    /// The small-cell rule.
    pub small_cells: SmallCellRule,
    /// Differential-privacy budgets, when it is on.
    pub privacy: Option<PrivacyBudgets>,
    /// The facility policy.
    pub policy: Policy,
}

impl NodeConfig {
    /// Reads, parses and checks `path`; relative paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<LoadedNodeConfig, ConfigError> {
        let (mut config, base): (NodeConfig, _) = read_toml(path)?;
        config.resolve_relative(&base);
        config.check()
    }

    /// Makes relative paths relative to `base`.
    pub fn resolve_relative(&mut self, base: &Path) {
        if self.data_dir.is_relative() {
            self.data_dir = base.join(&self.data_dir);
        }
        self.local.tls.resolve_relative(base);
        self.federation.tls.resolve_relative(base);
        if let Some(hosts) = self
            .gateway_link
            .as_mut()
            .and_then(|link| link.hosts_file.as_mut())
            && hosts.is_relative()
        {
            *hosts = base.join(&*hosts);
        }
        if let Some(guidance) = &mut self.guidance {
            guidance.resolve_relative(base);
        }
    }

    /// Checks every value and loads the TLS files.
    pub fn check(self) -> Result<LoadedNodeConfig, ConfigError> {
        use ConfigError as E;
        check_name(&self.facility_id).map_err(|e| E::invalid("facility_id", e))?;
        check_name(&self.network).map_err(|e| E::invalid("network", e))?;
        let small_cells = SmallCellRule::new(self.disclosure.min_cell_count)
            .map_err(|e| E::invalid("disclosure.min_cell_count", e))?;
        let privacy = self.privacy.check()?;
        let policy = Policy::new(&self.network, self.policy.rules.clone())
            .map_err(|(key, why)| E::invalid(key, why))?;
        self.secure_aggregation.check()?;
        if self.store.cache_capacity_mb == 0 {
            return Err(E::invalid("store.cache_capacity_mb", "must be at least 1"));
        }
        match &self.gateway_link {
            Some(link) => link.check()?,
            None if self.federation.listen.is_none() => {
                return Err(E::invalid(
                    "federation.listen",
                    "is unset and there is no [gateway_link]: the gateway could never reach \
                     this node (set one or both)",
                ));
            }
            None => {}
        }
        Ok(LoadedNodeConfig {
            local_tls: self.local.tls.load("local.tls")?,
            federation_tls: self.federation.tls.load("federation.tls")?,
            small_cells,
            privacy,
            policy,
            config: self,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privacy_budgets_are_checked_and_named() {
        let off = PrivacyConfig::default();
        assert_eq!(off.check().unwrap(), None);
        let on = PrivacyConfig {
            differential_privacy: true,
            ..Default::default()
        };
        let budgets = on.check().unwrap().unwrap();
        assert_eq!(budgets.per_query, Rho::from_micros(20_000));
        let overspent = PrivacyConfig {
            querier_budget: 2.0,
            ..on.clone()
        };
        assert!(
            overspent
                .check()
                .unwrap_err()
                .to_string()
                .contains("privacy")
        );
        let zero = PrivacyConfig {
            rho_per_query: 0.0,
            ..on
        };
        let err = zero.check().unwrap_err().to_string();
        assert!(err.contains("privacy.rho_per_query"), "{err}");
    }

    #[test]
    fn the_cohort_minimum_defaults_to_five_and_has_a_floor_of_three() {
        let d: SecureAggregationConfig = toml::from_str("").unwrap();
        assert_eq!(d.min_cohort, 5);
        assert!(d.check().is_ok());
        let low: SecureAggregationConfig = toml::from_str("min_cohort = 2").unwrap();
        let err = low.check().unwrap_err().to_string();
        assert!(err.contains("secure_aggregation.min_cohort"), "{err}");
        let three: SecureAggregationConfig = toml::from_str("min_cohort = 3").unwrap();
        assert!(three.check().is_ok());
        assert!(toml::from_str::<SecureAggregationConfig>("min_cohrt = 3").is_err());
    }

    #[test]
    fn a_node_may_listen_link_or_both_but_not_neither() {
        let text = |federation: &str, link: &str| {
            format!(
                "facility_id = \"f1\"\nnetwork = \"net\"\ndata_dir = \"d\"\n\
                 [local]\nlisten = \"127.0.0.1:0\"\n\
                 tls = {{ ca = \"c\", cert = \"c\", key = \"k\" }}\n\
                 [federation]\n{federation}\ntls = {{ ca = \"c\", cert = \"c\", key = \"k\" }}\n{link}"
            )
        };
        let linked: NodeConfig = toml::from_str(&text(
            "",
            "[gateway_link]\nendpoint = \"https://pso.example.org:7443\"\nkeepalive_interval_ms = 500",
        ))
        .unwrap();
        let link = linked.gateway_link.as_ref().unwrap();
        assert_eq!(linked.federation.listen, None);
        assert_eq!(link.keepalive_interval_ms, 500);
        assert_eq!(link.reconnect_backoff_ms, 500);
        assert_eq!(
            link.host_port().unwrap(),
            ("pso.example.org".to_string(), 7443)
        );
        assert_eq!(link.server_name().unwrap(), "pso.example.org");
        // Neither a listener nor a link: refused, naming the key (before any file is read).
        let neither: NodeConfig = toml::from_str(&text("", "")).unwrap();
        let err = neither.check().err().unwrap().to_string();
        assert!(err.starts_with("federation.listen"), "{err}");
        let plain = GatewayLinkConfig::new("http://pso.example.org:7443");
        let err = plain.check().unwrap_err().to_string();
        assert!(err.contains("https://"), "{err}");
    }

    #[test]
    fn disclosure_settings_parse_with_defaults() {
        let d: DisclosureConfig = toml::from_str("finest_grain = \"quarter\"").unwrap();
        assert_eq!(d.finest_grain, FinestGrain::Quarter);
        assert_eq!(d.min_cell_count, DEFAULT_MIN_CELL_COUNT);
        assert!(toml::from_str::<DisclosureConfig>("finest_grain = \"week\"").is_err());
    }
}
