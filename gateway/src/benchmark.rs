//! `BenchmarkService`: network benchmarks for partners and facilities.

use crate::fanout::fan_out;
use crate::merge::{FacilityFigures, NetworkFigures, check_scope};
use crate::registry::Registry;
use psonet_core::identity::Principal;
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb::{self, CoverageStatus, benchmark_service_server::BenchmarkService};
use psonet_core::suppression::SmallCellRule;
use psonet_core::violations::FieldViolations;
use psonet_core::wire::{category_list_from_wire, month_range_from_wire};
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The gateway's benchmark API.
pub struct Benchmarks {
    registry: Registry,
    node_deadline: Duration,
    small_cells: SmallCellRule,
    network_release: NetworkReleaseRule,
}

impl Benchmarks {
    /// Serves benchmarks over `registry`, releasing network figures only under
    /// `network_release`.
    pub fn new(
        registry: Registry,
        node_deadline: Duration,
        small_cells: SmallCellRule,
        network_release: NetworkReleaseRule,
    ) -> Self {
        Self {
            registry,
            node_deadline,
            small_cells,
            network_release,
        }
    }
}

#[tonic::async_trait]
impl BenchmarkService for Benchmarks {
    async fn network_benchmark(
        &self,
        request: Request<pb::NetworkBenchmarkRequest>,
    ) -> Result<Response<pb::NetworkBenchmarkResponse>, Status> {
        // Nodes apply their policy and budgets to the partner or facility asking, not to us.
        let querier = request
            .extensions()
            .get::<Principal>()
            .map(Principal::uri)
            .unwrap_or_default();
        let req = request.into_inner();
        let range =
            month_range_from_wire(&req.month_from, &req.month_to, ("month_from", "month_to"));
        let mut violations = FieldViolations::new();
        let categories = category_list_from_wire(&req.categories, "categories", &mut violations);
        let range = match (range, violations.is_empty()) {
            (Ok(range), true) => range,
            (Err(mut v), _) => {
                violations
                    .iter()
                    .for_each(|x| v.add(x.field.clone(), x.description.clone()));
                return Err(v.into_status());
            }
            (Ok(_), false) => return Err(violations.into_status()),
        };
        check_scope(&self.network_release, self.registry.facilities().len())?;
        let query = pb::AggregateRequest {
            month_from: range.from().to_string(),
            month_to: range.to().to_string(),
            time_grain: pb::TimeGrain::Month as i32,
            group_by: vec![pb::Dimension::Category as i32, pb::Dimension::Harm as i32],
            filter: None,
            querier,
        };
        let answers = fan_out(&self.registry, query, self.node_deadline).await;
        let mut network = NetworkFigures::default();
        let mut coverage = Vec::with_capacity(answers.len());
        for answer in answers {
            let mut status = answer.status;
            let mut detail = answer.detail;
            if let Some(response) = &answer.response {
                match FacilityFigures::from_wire(response, range, &self.small_cells) {
                    Ok(figures) => network.add(&figures),
                    Err(why) => {
                        status = CoverageStatus::Error;
                        detail = format!("unusable answer: {why}");
                    }
                }
            }
            coverage.push(pb::FacilityCoverage {
                facility_id: answer.facility_id,
                status: status as i32,
                detail,
                latency_ms: answer.latency.as_millis().min(u128::from(u32::MAX)) as u32,
            });
        }
        Ok(Response::new(pb::NetworkBenchmarkResponse {
            rows: network.rows(&categories, &self.network_release),
            coverage,
            min_cell_count: self.small_cells.min_cell_count(),
        }))
    }
}
