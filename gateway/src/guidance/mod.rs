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
pub mod target;

use crate::client::registry::Registry;
use crate::peer_group::{PeerAttributes, PeerGroup};
use library::GuidanceLibrary;
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb::{self, guidance_service_server::GuidanceService};
use psonet_core::violations::FieldViolations;
use psonet_serve::auth::caller;
use psonet_serve::identity::Role;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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
    peers: HashMap<String, PeerAttributes>,
}

impl Guidance {
    /// Serves `library`, asking the nodes of `registry` for adoption under `release`; `peers`
    /// are the registry's attributes, which items' target groups select by.
    pub fn new(
        library: GuidanceLibrary,
        registry: Registry,
        node_deadline: Duration,
        release: NetworkReleaseRule,
        peers: HashMap<String, PeerAttributes>,
    ) -> Self {
        Self {
            library,
            registry,
            node_deadline,
            release,
            peers,
        }
    }

    /// Whether `item` is meant for facility `id`.
    fn meant_for(&self, item: &pb::GuidanceItem, id: &str) -> bool {
        let mut ignored = FieldViolations::new();
        let group = PeerGroup::from_wire(item.target_peer_group.as_ref(), "", &mut ignored);
        group.contains(&self.peers.get(id).copied().unwrap_or_default())
    }
}

/// The caller's facility id, when a facility is asking.
fn calling_facility<T>(request: &Request<T>) -> Option<String> {
    match &caller(request).ok()?.role {
        Role::Facility(id) => Some(id.clone()),
        _ => None,
    }
}

#[tonic::async_trait]
impl GuidanceService for Guidance {
    async fn list_guidance(
        &self,
        request: Request<pb::ListGuidanceRequest>,
    ) -> Result<Response<pb::ListGuidanceResponse>, Status> {
        let facility = calling_facility(&request);
        let items = self
            .library
            .items()
            .iter()
            .filter(|item| facility.as_ref().is_none_or(|id| self.meant_for(item, id)))
            .cloned()
            .collect();
        Ok(Response::new(pb::ListGuidanceResponse { items }))
    }

    async fn guidance_adoption(
        &self,
        request: Request<pb::GuidanceAdoptionRequest>,
    ) -> Result<Response<pb::GuidanceAdoptionResponse>, Status> {
        let querier = caller(&request)?.uri();
        let replies = adoption::ask_status(&self.registry, &querier, self.node_deadline).await;
        let rows = self
            .library
            .items()
            .iter()
            .map(|item| {
                let answered: Vec<pb::GuidanceStatusResponse> = replies
                    .iter()
                    .filter(|r| self.meant_for(item, &r.facility_id))
                    .filter_map(|r| r.response.clone())
                    .collect();
                adoption::adoption_row(item, &answered, &self.release)
            })
            .collect();
        Ok(Response::new(pb::GuidanceAdoptionResponse {
            rows,
            coverage: replies.into_iter().map(|r| r.coverage).collect(),
        }))
    }
}
