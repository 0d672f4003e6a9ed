//! `PracticeEffectService`: which practices work, network-wide.
//!
//! Every node is asked whether it adopted the practice (for the metric) and, if so, for its
//! before/after counts in fixed windows around its own start month ([`outcome_call`]); each
//! adopter becomes a log rate ratio ([`adopters`]) and they are pooled by random-effects
//! meta-analysis ([`pooling`]). The facilities that did not adopt it give the comparison: their
//! change over the same calendar windows, from the monthly counts they already release
//! ([`comparison`]). Both pools need at least the network's `min_facilities` facilities (the
//! release rule of any network figure); facilities appear under per-request pseudonyms.

pub mod adopters;
pub mod comparison;
pub mod outcome_call;
pub mod pooling;

use crate::category_rows::check_scope;
use crate::client::registry::Registry;
use crate::coverage::AskContext;
use crate::metric::catalogue::MetricCatalogue;
use crate::metric::fetch;
use crate::pseudonym::Pseudonyms;
use adopters::{Excluded, Study, adopter_study};
use comparison::comparison_study;
use psonet_core::disclosure::primary::SmallCellRule;
use psonet_core::month::{Month, MonthRange};
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb::{self, practice_effect_service_server::PracticeEffectService};
use psonet_core::stats::meta_analysis::Tau2Estimator;
use psonet_core::violations::FieldViolations;
use psonet_serve::auth::caller;
use psonet_serve::identity::Role;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Window lengths the nodes answer for (see the node's `PracticeOutcomeService`).
pub const ALLOWED_WINDOWS: [u32; 4] = [6, 12, 18, 24];
/// The window when the request names none.
pub const DEFAULT_WINDOW: u32 = 12;

/// The gateway's practice-effect API.
pub struct PracticeEffects {
    registry: Registry,
    node_deadline: Duration,
    small_cells: SmallCellRule,
    network_release: NetworkReleaseRule,
    metrics: MetricCatalogue,
}

/// The nodes' answers, split by what they said.
struct Split {
    adopters: Vec<Study>,
    non_adopters: Vec<String>,
    excluded: Vec<Excluded>,
    coverage: Vec<pb::FacilityCoverage>,
}

impl PracticeEffects {
    /// Serves practice effects over `registry` with the network's rules and metric catalogue.
    pub fn new(
        registry: Registry,
        node_deadline: Duration,
        small_cells: SmallCellRule,
        network_release: NetworkReleaseRule,
        metrics: MetricCatalogue,
    ) -> Self {
        Self {
            registry,
            node_deadline,
            small_cells,
            network_release,
            metrics,
        }
    }

    /// The metric and window a request asks for, or its field violations.
    fn checked(&self, req: &pb::PracticeEffectRequest) -> Result<(pb::Metric, u32), Status> {
        let mut v = FieldViolations::new();
        if req.practice_code.is_empty() {
            v.add("practice_code", "required");
        }
        let window = match req.window_months {
            0 => DEFAULT_WINDOW,
            w => w,
        };
        if !ALLOWED_WINDOWS.contains(&window) {
            v.add(
                "window_months",
                format!("must be one of {ALLOWED_WINDOWS:?}"),
            );
        }
        let metric = self.metrics.get(&req.metric).cloned();
        if metric.is_none() {
            v.add(
                "metric",
                format!(
                    "unknown metric {:?}; ListMetrics offers {}",
                    req.metric,
                    self.metrics.ids()
                ),
            );
        }
        match metric {
            Some(m) if v.is_empty() => Ok((m, window)),
            _ => Err(v.into_status()),
        }
    }

    async fn ask_nodes(&self, request: &pb::PracticeOutcomeRequest) -> Split {
        let answers = outcome_call::ask_all(&self.registry, request, self.node_deadline).await;
        let mut split = Split {
            adopters: Vec::new(),
            non_adopters: Vec::new(),
            excluded: Vec::new(),
            coverage: Vec::new(),
        };
        for answer in answers {
            split.coverage.push(answer.coverage);
            match answer.response {
                Some(r) if r.adopted => {
                    match adopter_study(&answer.facility_id, &r, &self.small_cells) {
                        Ok(study) => split.adopters.push(study),
                        Err(why) => split.excluded.push(why),
                    }
                }
                Some(_) => split.non_adopters.push(answer.facility_id),
                None => {}
            }
        }
        split
    }

    /// The non-adopters' studies over the adopters' calendar windows; their coverage rows
    /// replace the first call's when the monthly counts could not be had.
    async fn comparison(
        &self,
        split: &mut Split,
        metric: &pb::Metric,
        window: u32,
        querier: &str,
    ) -> Vec<Study> {
        let starts: Vec<Month> = split.adopters.iter().filter_map(|s| s.start).collect();
        let (Some(first), Some(last)) = (starts.iter().min(), starts.iter().max()) else {
            return Vec::new();
        };
        let to = Month::from_index(last.index() + window)
            .unwrap_or(*last)
            .min(Month::current());
        let Ok(range) = MonthRange::new(first.minus(window), to) else {
            return Vec::new();
        };
        let ctx = AskContext {
            registry: &self.registry,
            deadline: self.node_deadline,
            small_cells: &self.small_cells,
            querier,
        };
        let non_adopters = split.non_adopters.clone();
        let in_scope = move |id: &str| non_adopters.iter().any(|n| n == id);
        let fetched = fetch::monthly(&ctx, metric, range, &in_scope).await;
        for row in fetched.coverage {
            if row.status != pb::CoverageStatus::Ok as i32
                && let Some(old) = split
                    .coverage
                    .iter_mut()
                    .find(|c| c.facility_id == row.facility_id)
            {
                *old = row;
            }
        }
        fetched
            .facilities
            .iter()
            .filter_map(|f| comparison_study(f, &starts, window).ok())
            .collect()
    }

    /// Pools `studies` with `estimator` when there are enough of them for a network figure.
    fn pooled(
        &self,
        studies: &[Study],
        names: &Pseudonyms,
        estimator: Tau2Estimator,
    ) -> Option<(
        pb::PooledRateRatio,
        psonet_core::stats::meta_analysis::MetaAnalysis,
    )> {
        self.network_release.check_scope(studies.len()).ok()?;
        let m = pooling::pool(studies, estimator).ok()?;
        Some((pooling::pooled_to_wire(studies, &m, names), m))
    }
}

/// The caller's facility id, when a facility is asking (it keeps its own name).
fn own_facility<T>(request: &Request<T>) -> Option<String> {
    match &caller(request).ok()?.role {
        Role::Facility(id) => Some(id.clone()),
        _ => None,
    }
}

#[tonic::async_trait]
impl PracticeEffectService for PracticeEffects {
    async fn practice_effect(
        &self,
        request: Request<pb::PracticeEffectRequest>,
    ) -> Result<Response<pb::PracticeEffectResponse>, Status> {
        let querier = caller(&request)?.uri();
        let own = own_facility(&request);
        let req = request.into_inner();
        let (metric, window) = self.checked(&req)?;
        let estimator = pooling::estimator(req.heterogeneity_estimator);
        let outcome_request = pb::PracticeOutcomeRequest {
            practice_code: req.practice_code.clone(),
            metric: Some(metric.clone()),
            window_months: window,
            querier: querier.clone(),
        };
        let mut split = self.ask_nodes(&outcome_request).await;
        check_scope(&self.network_release, split.adopters.len())?;
        let others = self.comparison(&mut split, &metric, window, &querier).await;
        let ids = split
            .adopters
            .iter()
            .chain(&others)
            .map(|s| s.facility_id.as_str())
            .chain(split.excluded.iter().map(|e| e.facility_id.as_str()));
        let names = Pseudonyms::new(ids, own.as_deref());
        let Some((adopters, pooled_adopters)) = self.pooled(&split.adopters, &names, estimator)
        else {
            return Err(Status::failed_precondition(
                "the adopters' rate ratios could not be pooled",
            ));
        };
        let non_adopters = self.pooled(&others, &names, estimator);
        let (ratio, interval) = match &non_adopters {
            Some((_, m)) => {
                let (r, i) = pooling::ratio_of_pooled(&pooled_adopters, m);
                (
                    r,
                    Some(pb::Interval {
                        lower: i.lower,
                        upper: i.upper,
                    }),
                )
            }
            None => (0.0, None),
        };
        Ok(Response::new(pb::PracticeEffectResponse {
            metric: Some(metric),
            window_months: window,
            adopters: Some(adopters),
            non_adopters: non_adopters.map(|(wire, _)| wire),
            ratio_of_rate_ratios: ratio,
            ratio_of_rate_ratios_interval: interval,
            excluded: split
                .excluded
                .iter()
                .map(|e| format!("{}: {}", names.name(&e.facility_id), e.why))
                .collect(),
            coverage: split.coverage,
        }))
    }
}
