//! `LinkService.ListLinks` on the gateway: which facilities are linked, from where, since when,
//! and which outbound-only facilities are not — for PSO staff (partner certificates only).

use crate::link::table::LinkTable;
use psonet_core::pb::{self, link_service_server::LinkService};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The gateway's `LinkService`.
#[derive(Clone)]
pub struct LinkList(pub Arc<LinkTable>);

#[tonic::async_trait]
impl LinkService for LinkList {
    async fn list_links(
        &self,
        _request: Request<pb::ListLinksRequest>,
    ) -> Result<Response<pb::ListLinksResponse>, Status> {
        Ok(Response::new(pb::ListLinksResponse {
            links: self.0.snapshot(),
        }))
    }
}
