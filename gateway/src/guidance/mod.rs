//! Guidance from the PSO: safety alerts and best practices, as content.
//!
//! The gateway stays stateless: guidance is a directory of Markdown files with front matter
//! ([`front_matter`]) named in `gateway.toml`, read at start and reloaded on change or SIGHUP
//! ([`library`]), served by `GuidanceService.ListGuidance` to partners and facilities (facility
//! nodes pull it from here into their stores). `GuidanceAdoption` asks every node how its
//! facility stands on each item and releases network counts under the release rule
//! ([`adoption`]).

pub mod adoption;
pub mod front_matter;
pub mod library;

use crate::client::registry::Registry;
use library::GuidanceLibrary;
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb::{self, guidance_service_server::GuidanceService};
use psonet_serve::auth::caller;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// `[guidance]` in `gateway.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuidanceConfig {
    /// Directory of `*.md` guidance files; relative to the config file.
    pub dir: PathBuf,
    /// How often the directory is checked for changes, in ms. Default 2,000.
    #[serde(default = "default_reload_ms")]
    pub reload_interval_ms: u64,
}

fn default_reload_ms() -> u64 {
    2_000
}

impl GuidanceConfig {
    /// The reload interval.
    pub fn reload_interval(&self) -> Duration {
        Duration::from_millis(self.reload_interval_ms.max(100))
    }
}

/// The gateway's guidance API.
pub struct Guidance {
    library: GuidanceLibrary,
    registry: Registry,
    node_deadline: Duration,
    release: NetworkReleaseRule,
}

impl Guidance {
    /// Serves `library`, asking the nodes of `registry` for adoption under `release`.
    pub fn new(
        library: GuidanceLibrary,
        registry: Registry,
        node_deadline: Duration,
        release: NetworkReleaseRule,
    ) -> Self {
        Self {
            library,
            registry,
            node_deadline,
            release,
        }
    }
}

#[tonic::async_trait]
impl GuidanceService for Guidance {
    async fn list_guidance(
        &self,
        _request: Request<pb::ListGuidanceRequest>,
    ) -> Result<Response<pb::ListGuidanceResponse>, Status> {
        Ok(Response::new(pb::ListGuidanceResponse {
            items: self.library.items().to_vec(),
        }))
    }

    async fn guidance_adoption(
        &self,
        request: Request<pb::GuidanceAdoptionRequest>,
    ) -> Result<Response<pb::GuidanceAdoptionResponse>, Status> {
        let querier = caller(&request)?.uri();
        let replies = adoption::ask_status(&self.registry, &querier, self.node_deadline).await;
        let answered: Vec<pb::GuidanceStatusResponse> =
            replies.iter().filter_map(|r| r.response.clone()).collect();
        let rows = self
            .library
            .items()
            .iter()
            .map(|item| adoption::adoption_row(item, &answered, &self.release))
            .collect();
        Ok(Response::new(pb::GuidanceAdoptionResponse {
            rows,
            coverage: replies.into_iter().map(|r| r.coverage).collect(),
        }))
    }
}
