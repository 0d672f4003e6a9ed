//! The node's configuration file (`node.toml`): typed, defaulted and checked at load time.

pub use psonet_core::config_file::ConfigError;
use psonet_core::config_file::read_toml;
use psonet_core::identity::check_name;
use psonet_core::suppression::{DEFAULT_MIN_CELL_COUNT, SmallCellRule};
use psonet_core::tls::{TlsFiles, TlsMaterial};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything a facility node needs to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Listener for the PSO gateway (`AggregateService`).
    pub federation: ListenerConfig,
    /// Disclosure control applied to everything the federation listener releases.
    #[serde(default)]
    pub disclosure: DisclosureConfig,
    /// Store tuning.
    #[serde(default)]
    pub store: StoreConfig,
    /// Where to serve Prometheus metrics over plain HTTP (`GET /metrics`); off when unset.
    /// Bind it to a private interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
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

/// Disclosure-control settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureConfig {
    /// Smallest non-zero count released (k); 1..k-1 are suppressed. Default 11.
    #[serde(default = "default_min_cell_count")]
    pub min_cell_count: u32,
}

fn default_min_cell_count() -> u32 {
    DEFAULT_MIN_CELL_COUNT
}

impl Default for DisclosureConfig {
    fn default() -> Self {
        Self {
            min_cell_count: DEFAULT_MIN_CELL_COUNT,
        }
    }
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

/// A checked configuration with its TLS material loaded.
#[derive(Clone)]
pub struct LoadedNodeConfig {
    /// The configuration.
    pub config: NodeConfig,
    /// Local listener's TLS material.
    pub local_tls: TlsMaterial,
    /// Federation listener's TLS material.
    pub federation_tls: TlsMaterial,
    /// The small-cell rule.
    pub small_cells: SmallCellRule,
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
    }

    /// Checks every value and loads the TLS files.
    pub fn check(self) -> Result<LoadedNodeConfig, ConfigError> {
        use ConfigError as E;
        check_name(&self.facility_id).map_err(|e| E::invalid("facility_id", e))?;
        check_name(&self.network).map_err(|e| E::invalid("network", e))?;
        let small_cells = SmallCellRule::new(self.disclosure.min_cell_count)
            .map_err(|e| E::invalid("disclosure.min_cell_count", e))?;
        if self.store.cache_capacity_mb == 0 {
            return Err(E::invalid("store.cache_capacity_mb", "must be at least 1"));
        }
        Ok(LoadedNodeConfig {
            local_tls: self.local.tls.load("local.tls")?,
            federation_tls: self.federation.tls.load("federation.tls")?,
            small_cells,
            config: self,
        })
    }
}
