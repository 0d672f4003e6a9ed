//! `GuidanceStatusService` on the federation listener: per guidance item the node holds, only
//! whether the facility acknowledged its current version and whether it adopts it — the 0/1
//! facts the gateway sums into network adoption counts, which it releases only under the
//! network's release rule. Every request is on the audit trail before the answer leaves.

use super::register::list;
use crate::aggregate::querier_of_uri;
use crate::audit::{AuditEntry, AuditTrail, record_durably};
use crate::reporting::store_status;
use crate::store::Store;
use psonet_core::pb::{self, guidance_status_service_server::GuidanceStatusService};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The federation's view of the facility's guidance status.
pub struct GuidanceStatuses {
    store: Arc<Store>,
    audit: AuditTrail,
}

impl GuidanceStatuses {
    /// Serves the statuses in `store`, auditing to `audit`.
    pub fn new(store: Arc<Store>, audit: AuditTrail) -> Self {
        Self { store, audit }
    }

    fn statuses(&self) -> Result<pb::GuidanceStatusResponse, Status> {
        let entries = list(&self.store)
            .map_err(store_status)?
            .into_iter()
            .filter(|(_, r)| !r.withdrawn)
            .map(|(id, r)| pb::GuidanceStatusEntry {
                guidance_id: id,
                version: r.version,
                acknowledged: r.acknowledged_version == r.version,
                adopted: r.adopted,
            })
            .collect();
        Ok(pb::GuidanceStatusResponse { entries })
    }
}

#[tonic::async_trait]
impl GuidanceStatusService for GuidanceStatuses {
    async fn guidance_status(
        &self,
        request: Request<pb::GuidanceStatusRequest>,
    ) -> Result<Response<pb::GuidanceStatusResponse>, Status> {
        let caller = psonet_serve::auth::caller(&request)?.clone();
        let req = request.into_inner();
        let outcome = querier_of_uri(&caller, &req.querier).and_then(|_| self.statuses());
        let mut entry = AuditEntry {
            caller: caller.uri(),
            querier: if req.querier.is_empty() {
                caller.uri()
            } else {
                req.querier.clone()
            },
            query: "guidance-status".into(),
            ..Default::default()
        };
        match outcome {
            Ok(answer) => {
                entry.outcome = "answered";
                entry.released_cells = (answer.entries.len() * 2) as u32;
                record_durably(&self.audit, &self.store, entry).await?;
                Ok(Response::new(answer))
            }
            Err(status) => {
                entry.outcome = "refused";
                entry.refusal = format!("{:?}: {}", status.code(), status.message());
                record_durably(&self.audit, &self.store, entry).await?;
                Err(status)
            }
        }
    }
}
