//! `FacilityGuidanceService` on the local listener: the facility's own systems read the
//! guidance its node pulled and acknowledge (and adopt) items. Writes are durable before they
//! are acknowledged.

use super::register::{acknowledge, list};
use crate::reporting::store_status;
use crate::store::Store;
use psonet_core::pb::{self, facility_guidance_service_server::FacilityGuidanceService};
use psonet_core::violations::FieldViolations;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The facility's view of guidance.
pub struct FacilityGuidance {
    store: Arc<Store>,
}

impl FacilityGuidance {
    /// Serves the guidance held in `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl FacilityGuidanceService for FacilityGuidance {
    async fn list_facility_guidance(
        &self,
        _request: Request<pb::ListFacilityGuidanceRequest>,
    ) -> Result<Response<pb::ListFacilityGuidanceResponse>, Status> {
        let guidance = list(&self.store)
            .map_err(store_status)?
            .iter()
            .map(|(id, record)| record.facility_view(id))
            .collect();
        Ok(Response::new(pb::ListFacilityGuidanceResponse { guidance }))
    }

    async fn acknowledge_guidance(
        &self,
        request: Request<pb::AcknowledgeGuidanceRequest>,
    ) -> Result<Response<pb::AcknowledgeGuidanceResponse>, Status> {
        let req = request.into_inner();
        if req.guidance_id.is_empty() {
            let mut v = FieldViolations::new();
            v.add("guidance_id", "required");
            return Err(v.into_status());
        }
        let Some(record) =
            acknowledge(&self.store, &req.guidance_id, req.adopt).map_err(store_status)?
        else {
            return Err(Status::not_found(format!(
                "this node holds no guidance {:?} (it pulls guidance from the gateway)",
                req.guidance_id
            )));
        };
        self.store.make_durable().await.map_err(store_status)?;
        Ok(Response::new(pb::AcknowledgeGuidanceResponse {
            guidance: Some(record.facility_view(&req.guidance_id)),
        }))
    }
}
