//! `AggregateService`: what the PSO gateway may learn from this facility (federation listener).
//!
//! Answers are read from counters, never from events, and every count passes the small-cell
//! rule before it leaves. Exposure (patient days) is a census figure, not an event count, and is
//! released as is.

use crate::reporting::store_status;
use crate::store::Store;
use psonet_core::cube::MonthCategoryHarm;
use psonet_core::pb::{self, aggregate_service_server::AggregateService};
use psonet_core::suppression::{CellRelease, SmallCellRule};
use psonet_core::wire::month_range_from_wire;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The federation API of a node.
pub struct Aggregates {
    store: Arc<Store>,
    small_cells: SmallCellRule,
}

impl Aggregates {
    /// Serves counts from `store`, releasing only what `small_cells` allows.
    pub fn new(store: Arc<Store>, small_cells: SmallCellRule) -> Self {
        Self { store, small_cells }
    }

    fn released_cell(&self, cell: MonthCategoryHarm, count: u64) -> pb::AggregateCell {
        let (count, suppressed) = match self.small_cells.release(count) {
            CellRelease::Released(n) => (n, false),
            CellRelease::Suppressed => (0, true),
        };
        pb::AggregateCell {
            month: cell.month.to_string(),
            category: cell.category as i32,
            harm: cell.harm.map_or(0, |h| h as i32),
            count,
            suppressed,
        }
    }
}

#[tonic::async_trait]
impl AggregateService for Aggregates {
    async fn aggregate(
        &self,
        request: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateResponse>, Status> {
        let req = request.into_inner();
        let range =
            month_range_from_wire(&req.month_from, &req.month_to, ("month_from", "month_to"))?;
        let cube = self
            .store
            .month_category_harm(range)
            .map_err(store_status)?;
        let exposure = self.store.exposure(range).map_err(store_status)?;
        let cells = cube
            .cells()
            .map(|(cell, n)| self.released_cell(cell, n))
            .collect();
        let exposure = exposure
            .into_iter()
            .map(|e| pb::ExposureCell {
                month: e.month.to_string(),
                unit_type: e.unit_type as i32,
                patient_days: e.patient_days,
            })
            .collect();
        Ok(Response::new(pb::AggregateResponse {
            cells,
            exposure,
            min_cell_count: self.small_cells.min_cell_count(),
        }))
    }
}
