//! Guidance at the facility: the PSO's alerts and practices, pulled from the gateway into the
//! node's store, and the facility's acknowledgement and adoption of each.
//!
//! The node pulls (on start and on a schedule, with the facility's client identity) rather
//! than the gateway pushing, so a node behind a firewall needs no inbound rule for it, and
//! guidance read on the wards is served from the facility's own store even when the PSO is
//! unreachable. One concept per file: [`record`] (how the store keeps an item and its status),
//! [`register`] (the store operations), [`pull`] (fetching from the gateway), [`service`]
//! (`FacilityGuidanceService`, local listener) and [`status`] (`GuidanceStatusService`, what
//! the gateway may learn: acknowledged and adopted, per item).

pub mod pull;
pub mod record;
pub mod register;
pub mod service;
pub mod status;

use psonet_serve::tls::TlsFiles;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

pub use service::FacilityGuidance;
pub use status::GuidanceStatuses;

/// The store tree that holds guidance, keyed by guidance id.
pub const GUIDANCE_TREE: &str = "guidance";

/// `[guidance]` in `node.toml`: where to pull guidance from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuidancePullConfig {
    /// The gateway's listener, `host:port`.
    pub gateway: String,
    /// The identity presented to the gateway: a facility client certificate
    /// (`spiffe://<network>/facility/<id>`, client auth) and the network CA.
    pub tls: TlsFiles,
    /// Seconds between pulls (after the one at start). Default 300.
    #[serde(default = "default_pull_interval_s")]
    pub pull_interval_s: u64,
}

fn default_pull_interval_s() -> u64 {
    300
}

impl GuidancePullConfig {
    /// The time between pulls.
    pub fn pull_interval(&self) -> Duration {
        Duration::from_secs(self.pull_interval_s.max(1))
    }

    /// Makes the TLS paths relative to `base`.
    pub fn resolve_relative(&mut self, base: &Path) {
        self.tls.resolve_relative(base);
    }
}
