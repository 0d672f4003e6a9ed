//! `BenchmarkService`: network benchmarks for partners and facilities.

use crate::answer::NodeQuery;
use crate::category_rows::{CategoryRows, check_scope};
use crate::client::registry::Registry;
use crate::coverage::AskContext;
use crate::metric::benchmark::benchmark;
use crate::metric::catalogue::MetricCatalogue;
use crate::metric::fetch;
use crate::metric::scorecard::{ScorecardInputs, scorecard};
use crate::metric::trend;
use crate::peer_group::{PeerAttributes, PeerGroup};
use crate::pseudonym::Pseudonyms;
use psonet_core::disclosure::primary::SmallCellRule;
use psonet_core::month::MonthRange;
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb::{self, benchmark_service_server::BenchmarkService};
use psonet_core::violations::FieldViolations;
use psonet_core::wire::{category_list_from_wire, month_range_from_wire};
use psonet_serve::auth::caller;
use psonet_serve::identity::{Principal, Role};
use std::collections::HashMap;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The gateway's benchmark API.
pub struct Benchmarks {
    registry: Registry,
    node_deadline: Duration,
    small_cells: SmallCellRule,
    network_release: NetworkReleaseRule,
    metrics: MetricCatalogue,
    peers: HashMap<String, PeerAttributes>,
}

impl Benchmarks {
    /// Serves benchmarks over `registry` with the built-in metrics, the default release rule
    /// and no peer attributes (see [`Benchmarks::with_catalogue`]).
    pub fn new(registry: Registry, node_deadline: Duration, small_cells: SmallCellRule) -> Self {
        Self {
            registry,
            node_deadline,
            small_cells,
            network_release: NetworkReleaseRule::default(),
            metrics: MetricCatalogue::default(),
            peers: HashMap::new(),
        }
    }

    /// The configured release rule, metric catalogue and registry peer attributes.
    pub fn with_catalogue(
        mut self,
        network_release: NetworkReleaseRule,
        metrics: MetricCatalogue,
        peers: HashMap<String, PeerAttributes>,
    ) -> Self {
        self.network_release = network_release;
        self.metrics = metrics;
        self.peers = peers;
        self
    }

    fn context<'a>(&'a self, querier: &'a str) -> AskContext<'a> {
        AskContext {
            registry: &self.registry,
            deadline: self.node_deadline,
            small_cells: &self.small_cells,
            querier,
        }
    }

    /// The metric, range and peer group a request asks for, or its field violations.
    fn metric_request(
        &self,
        metric: &str,
        (from, to): (&str, &str),
        group: Option<&pb::PeerGroup>,
    ) -> Result<(pb::Metric, MonthRange, PeerGroup), Status> {
        let mut v = FieldViolations::new();
        let range = month_range_from_wire(from, to, ("month_from", "month_to"))
            .map_err(|bad| {
                bad.iter()
                    .for_each(|x| v.add(x.field.clone(), x.description.clone()))
            })
            .ok();
        let metric = match self.metrics.get(metric) {
            Some(m) => Some(m.clone()),
            None => {
                let why = if metric.is_empty() {
                    "required"
                } else {
                    "unknown metric"
                };
                v.add(
                    "metric",
                    format!(
                        "{why}: {metric:?}; ListMetrics offers {}",
                        self.metrics.ids()
                    ),
                );
                None
            }
        };
        let group = PeerGroup::from_wire(group, "peer_group", &mut v);
        match (metric, range, v.is_empty()) {
            (Some(metric), Some(range), true) => Ok((metric, range, group)),
            _ => Err(v.into_status()),
        }
    }

    /// Whether facility `id` is in `group`.
    fn in_group(&self, group: &PeerGroup, id: &str) -> bool {
        group.contains(&self.peers.get(id).copied().unwrap_or_default())
    }

    async fn metric_benchmark(
        &self,
        req: &pb::NetworkBenchmarkRequest,
        querier: &str,
    ) -> Result<pb::NetworkBenchmarkResponse, Status> {
        let (metric, range, group) = self.metric_request(
            &req.metric,
            (&req.month_from, &req.month_to),
            req.peer_group.as_ref(),
        )?;
        let scope = |id: &str| self.in_group(&group, id);
        let fetched = fetch::range_totals(&self.context(querier), &metric, range, &scope).await;
        let names = Pseudonyms::new(fetched.facilities.iter().map(|f| f.id.as_str()), None);
        let figures = benchmark(
            &metric,
            range,
            &fetched.facilities,
            &self.network_release,
            &names,
            None,
        );
        Ok(pb::NetworkBenchmarkResponse {
            rows: Vec::new(),
            coverage: fetched.coverage,
            min_cell_count: self.small_cells.min_cell_count(),
            metric: Some(figures),
        })
    }

    async fn category_rows(
        &self,
        req: &pb::NetworkBenchmarkRequest,
        querier: &str,
    ) -> Result<pb::NetworkBenchmarkResponse, Status> {
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
        let query = NodeQuery::categories_by_month(range);
        let answers = self.context(querier).ask(&query, &|_| true).await;
        Ok(pb::NetworkBenchmarkResponse {
            rows: CategoryRows::sum(&answers.usable).rows(&categories, &self.network_release),
            coverage: answers.coverage,
            min_cell_count: self.small_cells.min_cell_count(),
            metric: None,
        })
    }
}

/// The partner or facility asking: nodes apply their policy and budgets to it, not to us.
fn querier<T>(request: &Request<T>) -> String {
    caller(request).map(Principal::uri).unwrap_or_default()
}

/// The caller's facility id, or PERMISSION_DENIED for anyone else.
fn calling_facility<T>(request: &Request<T>) -> Result<String, Status> {
    match &caller(request)?.role {
        Role::Facility(id) => Ok(id.clone()),
        _ => Err(Status::permission_denied(
            "FacilityScorecard is for facilities: call it with your facility's certificate \
             (spiffe://<network>/facility/<id>)",
        )),
    }
}

#[tonic::async_trait]
impl BenchmarkService for Benchmarks {
    async fn network_benchmark(
        &self,
        request: Request<pb::NetworkBenchmarkRequest>,
    ) -> Result<Response<pb::NetworkBenchmarkResponse>, Status> {
        let querier = querier(&request);
        let req = request.into_inner();
        let response = if req.metric.is_empty() && req.peer_group.is_none() {
            self.category_rows(&req, &querier).await?
        } else {
            self.metric_benchmark(&req, &querier).await?
        };
        Ok(Response::new(response))
    }

    async fn list_metrics(
        &self,
        _request: Request<pb::ListMetricsRequest>,
    ) -> Result<Response<pb::ListMetricsResponse>, Status> {
        Ok(Response::new(pb::ListMetricsResponse {
            metrics: self.metrics.metrics().to_vec(),
        }))
    }

    async fn trend(
        &self,
        request: Request<pb::TrendRequest>,
    ) -> Result<Response<pb::TrendResponse>, Status> {
        let querier = querier(&request);
        let req = request.into_inner();
        let (metric, range, group) = self.metric_request(
            &req.metric,
            (&req.month_from, &req.month_to),
            req.peer_group.as_ref(),
        )?;
        let scope = |id: &str| self.in_group(&group, id);
        let fetched = fetch::monthly(&self.context(&querier), &metric, range, &scope).await;
        let series = trend::network_series(range, &fetched.facilities, &self.network_release);
        Ok(Response::new(pb::TrendResponse {
            chart: Some(trend::chart(&series, metric.multiplier, req.laney)),
            metric: Some(metric),
            coverage: fetched.coverage,
        }))
    }

    async fn facility_scorecard(
        &self,
        request: Request<pb::FacilityScorecardRequest>,
    ) -> Result<Response<pb::FacilityScorecardResponse>, Status> {
        let caller = calling_facility(&request)?;
        let querier = querier(&request);
        let req = request.into_inner();
        let (metric, range, group) = self.metric_request(
            &req.metric,
            (&req.month_from, &req.month_to),
            req.peer_group.as_ref(),
        )?;
        let scope = |id: &str| id == caller || self.in_group(&group, id);
        let ctx = self.context(&querier);
        let (totals, strata, monthly) = tokio::join!(
            fetch::range_totals(&ctx, &metric, range, &scope),
            fetch::by_unit_type(&ctx, &metric, range, &scope),
            fetch::monthly(&ctx, &metric, range, &scope),
        );
        let inputs = ScorecardInputs {
            totals,
            strata,
            monthly,
        };
        scorecard(&metric, range, &caller, &inputs, &self.network_release).map(Response::new)
    }
}
