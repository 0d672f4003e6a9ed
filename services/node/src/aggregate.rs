//! `AggregateService`: what the PSO gateway may learn from this facility (federation listener).
//!
//! Answers are read from counters, never from events, and every count passes the small-cell
//! rule before it leaves. Exposure (patient days and other denominators) is a census figure,
//! not an event count, and is released as is.

use crate::reporting::store_status;
use crate::store::Store;
use psonet_core::pb::{self, aggregate_service_server::AggregateService};
use psonet_core::query::{AggregateQuery, CellKey};
use psonet_core::suppression::{CellRelease, SmallCellRule};
use std::collections::BTreeMap;
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

    fn released(&self, cells: BTreeMap<CellKey, u64>) -> Vec<pb::AggregateCell> {
        cells
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(cell, n)| match self.small_cells.release(n) {
                CellRelease::Released(n) => cell.to_wire(n, false),
                CellRelease::Suppressed => cell.to_wire(0, true),
            })
            .collect()
    }
}

#[tonic::async_trait]
impl AggregateService for Aggregates {
    async fn aggregate(
        &self,
        request: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateResponse>, Status> {
        let query = AggregateQuery::from_wire(request.get_ref())?;
        let cells = self.store.aggregate(&query).map_err(store_status)?;
        let event_totals = match query.event_totals() {
            Some(totals) => self.released(self.store.aggregate(&totals).map_err(store_status)?),
            None => Vec::new(),
        };
        let units = query
            .filter
            .get(&pb::Dimension::UnitType)
            .cloned()
            .unwrap_or_default();
        let exposure = self
            .store
            .exposure(query.range, query.grain, &units)
            .map_err(store_status)?
            .into_iter()
            .map(
                |((period, unit_type, denominator), value)| pb::ExposureCell {
                    period: period.label(),
                    unit_type: unit_type as i32,
                    denominator: denominator as i32,
                    value,
                },
            )
            .collect();
        Ok(Response::new(pb::AggregateResponse {
            cells: self.released(cells),
            exposure,
            min_cell_count: self.small_cells.min_cell_count(),
            event_totals,
        }))
    }
}
