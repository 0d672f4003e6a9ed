//! `BenchmarkService`: network benchmarks for partners and facilities.
//!
//! Every network figure — category rows, a metric's pooled rate, its monthly trend, over the
//! whole network or a peer group — is asked of the cohort by secure aggregation
//! ([`crate::secure`]) and released from the exact sum under the network cell rule, unless the
//! network runs `disclosure.network_sums = "node_suppressed"`. Per-facility figures (the funnel
//! and the distribution of facility rates, a facility's scorecard) are asked as before: each
//! node releases its own counts under its own rules.

use crate::answer::NodeQuery;
use crate::category_rows::{CategoryRows, check_scope, secure_rows};
use crate::client::node_metrics::SecureAnswerCost;
use crate::client::registry::Registry;
use crate::config::{LoadedGatewayConfig, NetworkSums};
use crate::coverage::{self, AskContext};
use crate::metric::benchmark::{BenchmarkRules, Centre, benchmark};
use crate::metric::catalogue::MetricCatalogue;
use crate::metric::fetch;
use crate::metric::scorecard::{ScorecardInputs, scorecard};
use crate::metric::secure_sum::{self, MetricSums};
use crate::metric::trend;
use crate::peer_group::{PeerAttributes, PeerGroup};
use crate::pseudonym::Pseudonyms;
use crate::secure::{self, SecureAggregation, SecureContext, SecureSum};
use psonet_core::disclosure::network_cell::NetworkCellRule;
use psonet_core::disclosure::primary::SmallCellRule;
use psonet_core::month::MonthRange;
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb::{self, DenominatorType, benchmark_service_server::BenchmarkService};
use psonet_core::query::Grain;
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
    network_cells: NetworkCellRule,
    network_sums: NetworkSums,
    secure: SecureAggregation,
    metrics: MetricCatalogue,
    peers: HashMap<String, PeerAttributes>,
}

impl Benchmarks {
    /// Serves benchmarks over `registry` as `loaded` configures them, keeping the cohort's
    /// masking keys in `secure`.
    pub fn new(
        registry: Registry,
        loaded: &LoadedGatewayConfig,
        secure: SecureAggregation,
    ) -> Self {
        Self {
            registry,
            node_deadline: loaded.config.fanout.node_deadline(),
            small_cells: loaded.small_cells,
            network_release: loaded.network_release,
            network_cells: loaded.network_cells,
            network_sums: loaded.config.disclosure.network_sums,
            secure,
            metrics: loaded.metrics.clone(),
            peers: loaded.peers.clone(),
        }
    }

    fn context<'a>(&'a self, querier: &'a str) -> AskContext<'a> {
        AskContext {
            registry: &self.registry,
            deadline: self.node_deadline,
            small_cells: &self.small_cells,
            querier,
        }
    }

    /// The registry's facilities in `group`, refused with FAILED_PRECONDITION when fewer than
    /// a network figure needs: a peer group of two *is* its members' figures.
    fn cohort(&self, group: &PeerGroup) -> Result<Vec<String>, Status> {
        let cohort: Vec<String> = self
            .registry
            .facilities()
            .iter()
            .map(|f| f.id.clone())
            .filter(|id| self.in_group(group, id))
            .collect();
        check_scope(&self.network_release, cohort.len())?;
        Ok(cohort)
    }

    /// The secure sum of `query` over `cohort`, asked on behalf of `querier`.
    async fn secure_sum(
        &self,
        cohort: &[String],
        query: &NodeQuery,
        querier: &str,
    ) -> Result<SecureSum, Status> {
        let ctx = SecureContext {
            registry: &self.registry,
            deadline: self.node_deadline,
            secure: &self.secure,
            min_cohort: self.network_release.min_facilities() as usize,
        };
        let sum = secure::aggregate(&ctx, cohort, query.request(querier)).await?;
        let metrics = self.registry.metrics();
        for node in &sum.nodes {
            let cost = SecureAnswerCost {
                round1_micros: node.round1_cpu_micros,
                masking_micros: node.masking_cpu_micros,
                round2_micros: node.round2_cpu_micros,
            };
            metrics.record_secure(&node.facility, cost);
        }
        Ok(sum)
    }

    /// A metric's months and total from the secure sum over `cohort`, with its coverage.
    async fn metric_sums(
        &self,
        metric: &pb::Metric,
        range: MonthRange,
        cohort: &[String],
        querier: &str,
    ) -> Result<(MetricSums, SecureSum), Status> {
        let query = NodeQuery::metric(metric, range, Grain::Month, false);
        let sum = self.secure_sum(cohort, &query, querier).await?;
        let denominator = DenominatorType::try_from(metric.denominator).unwrap_or_default();
        let read = secure_sum::read(
            &sum.domain,
            &sum.sums,
            range,
            denominator,
            sum.survivors.len(),
            &self.network_cells,
        );
        Ok((read, sum))
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
        let ctx = self.context(querier);
        let (figures, coverage, noise) = match self.network_sums {
            NetworkSums::Secure => {
                let cohort = self.cohort(&group)?;
                let (sums, fetched) = tokio::join!(
                    self.metric_sums(&metric, range, &cohort, querier),
                    fetch::range_totals(&ctx, &metric, range, &scope),
                );
                let (sums, secure) = sums?;
                let names = Pseudonyms::new(fetched.facilities.iter().map(|f| f.id.as_str()), None);
                let centre = Centre::Secure {
                    pooled: &sums.total,
                    in_sum: &secure.survivors,
                };
                let figures = benchmark(
                    &metric,
                    range,
                    centre,
                    &fetched.facilities,
                    &self.rules(&names),
                    None,
                );
                let coverage = coverage::merge(secure.coverage, fetched.coverage);
                (figures, coverage, Some(secure.noise_variance))
            }
            NetworkSums::NodeSuppressed => {
                let fetched = fetch::range_totals(&ctx, &metric, range, &scope).await;
                let names = Pseudonyms::new(fetched.facilities.iter().map(|f| f.id.as_str()), None);
                let figures = benchmark(
                    &metric,
                    range,
                    Centre::Funnel,
                    &fetched.facilities,
                    &self.rules(&names),
                    None,
                );
                (figures, fetched.coverage, None)
            }
        };
        Ok(pb::NetworkBenchmarkResponse {
            rows: Vec::new(),
            coverage,
            min_cell_count: self.small_cells.min_cell_count(),
            exact: exact(noise),
            noise_sd: noise.map_or(0.0, f64::sqrt),
            metric: Some(figures),
        })
    }

    /// The release rules a benchmark is computed with, facilities shown as `names` has them.
    fn rules<'a>(&'a self, names: &'a Pseudonyms) -> BenchmarkRules<'a> {
        BenchmarkRules {
            network: &self.network_release,
            small_cells: &self.small_cells,
            names,
        }
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
        let cohort = self.cohort(&PeerGroup::default())?;
        let (rows, coverage, noise) = match self.network_sums {
            NetworkSums::Secure => {
                let query = NodeQuery::category_counts(range);
                let sum = self.secure_sum(&cohort, &query, querier).await?;
                let rows = secure_rows(&sum.domain, &sum.sums, &categories, &self.network_cells);
                (rows, sum.coverage, Some(sum.noise_variance))
            }
            NetworkSums::NodeSuppressed => {
                let query = NodeQuery::categories_by_month(range);
                let answers = self.context(querier).ask(&query, &|_| true).await;
                let rows =
                    CategoryRows::sum(&answers.usable).rows(&categories, &self.network_release);
                (rows, answers.coverage, None)
            }
        };
        Ok(pb::NetworkBenchmarkResponse {
            rows,
            coverage,
            min_cell_count: self.small_cells.min_cell_count(),
            exact: exact(noise),
            noise_sd: noise.map_or(0.0, f64::sqrt),
            metric: None,
        })
    }
}

/// Whether figures are exact: from a secure sum (`Some` of its noise variance) without noise.
fn exact(noise_variance: Option<f64>) -> bool {
    noise_variance == Some(0.0)
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
        let (series, coverage, noise) = match self.network_sums {
            NetworkSums::Secure => {
                let cohort = self.cohort(&group)?;
                let (sums, secure) = self.metric_sums(&metric, range, &cohort, &querier).await?;
                (sums.months, secure.coverage, Some(secure.noise_variance))
            }
            NetworkSums::NodeSuppressed => {
                let scope = |id: &str| self.in_group(&group, id);
                let fetched = fetch::monthly(&self.context(&querier), &metric, range, &scope).await;
                let series =
                    trend::network_series(range, &fetched.facilities, &self.network_release);
                (series, fetched.coverage, None)
            }
        };
        Ok(Response::new(pb::TrendResponse {
            chart: Some(trend::chart(&series, metric.multiplier, req.laney)),
            metric: Some(metric),
            coverage,
            exact: exact(noise),
            noise_sd: noise.map_or(0.0, f64::sqrt),
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
        scorecard(
            &metric,
            range,
            &caller,
            &inputs,
            &self.network_release,
            &self.small_cells,
        )
        .map(Response::new)
    }
}
