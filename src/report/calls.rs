//! The calls a report makes, one metric at a time, with a progress line per metric.
//!
//! First the catalogue (`ListMetrics`), then for each metric the network benchmark and the trend
//! (a partner's report) or the facility's scorecard (a facility's report). The calls run one
//! after another: each already fans out to every node, and a report is not urgent enough to
//! compete with the gateway's interactive callers. A call the gateway declines because the
//! figure cannot be released (`FAILED_PRECONDITION`: too few facilities, no exposure recorded)
//! is [`Missing::Withheld`] with the gateway's reason; any other failed call is a [`Failure`]
//! with its reason in plain words. Either way the next call is still made, so the report is as
//! complete as the network allows.

use super::reader::Reader;
use crate::client;
use psonet_core::pb::{
    self, benchmark_service_client::BenchmarkServiceClient,
    guidance_service_client::GuidanceServiceClient,
    practice_effect_service_client::PracticeEffectServiceClient,
};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// What to ask for.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Who asks, and so which calls are made.
    pub reader: Reader,
    /// First month, "YYYY-MM".
    pub month_from: String,
    /// Last month, "YYYY-MM".
    pub month_to: String,
    /// The facilities compared; `None` is the whole network.
    pub peer_group: Option<pb::PeerGroup>,
    /// Laney-adjusted limits on network trends.
    pub laney: bool,
    /// Longest wait for one call.
    pub timeout: Duration,
}

/// The gateway and how to explain a failed call to it.
pub struct Gateway {
    /// A client on the caller's identity.
    pub client: BenchmarkServiceClient<Channel>,
    /// The same connection, for the learning loop's services.
    pub channel: Channel,
    /// The address asked, for explanations.
    pub addr: String,
    /// The identity directory, for explanations.
    pub identity: PathBuf,
}

/// A call that failed, and why in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The call, e.g. `Trend(falls)`.
    pub call: String,
    /// Why it failed.
    pub why: String,
}

/// A call's answer and how long it took.
#[derive(Debug, Clone)]
pub struct Answered<T> {
    /// The response.
    pub response: T,
    /// From the request to the answer.
    pub elapsed: Duration,
}

/// Why a call gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The gateway declined because the figure cannot be released or computed; not a failure.
    Withheld {
        /// The call, e.g. `FacilityScorecard(surgical-events)`.
        call: String,
        /// The gateway's reason.
        reason: String,
    },
    /// The call failed.
    Failed(Failure),
}

/// What one call gave.
pub type Outcome<T> = Result<Answered<T>, Missing>;

/// The failure of `outcome`, if it failed (a withheld answer is not a failure).
pub fn failure<T>(outcome: &Outcome<T>) -> Option<&Failure> {
    match outcome {
        Err(Missing::Failed(f)) => Some(f),
        _ => None,
    }
}

/// The answers a metric's page is made of.
// A report holds one per metric, so the size of the larger variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum MetricCalls {
    /// A partner's page: the network benchmark and the network trend.
    Network {
        /// `NetworkBenchmark` with the metric.
        benchmark: Outcome<pb::NetworkBenchmarkResponse>,
        /// `Trend` of the metric.
        trend: Outcome<pb::TrendResponse>,
    },
    /// A facility's page: its scorecard.
    Facility {
        /// `FacilityScorecard` of the metric.
        scorecard: Outcome<pb::FacilityScorecardResponse>,
    },
}

/// A metric and its answers.
#[derive(Debug, Clone)]
pub struct MetricAnswers {
    /// The catalogue's definition.
    pub metric: pb::Metric,
    /// The answers.
    pub calls: MetricCalls,
}

/// One practice's effect on one metric, as `PracticeEffect` answered it.
#[derive(Debug, Clone)]
pub struct PracticeAnswer {
    /// The practice code the guidance recommends.
    pub practice: String,
    /// The guidance item's title.
    pub guidance: String,
    /// The metric id.
    pub metric: String,
    /// The answer.
    pub effect: Outcome<pb::PracticeEffectResponse>,
}

/// The learning loop's answers for a partner's report: guidance in force, its adoption, and
/// the effect of each practice it recommends on each metric it names.
#[derive(Debug, Clone)]
pub struct LearningAnswers {
    /// `ListGuidance`.
    pub guidance: Outcome<pb::ListGuidanceResponse>,
    /// `GuidanceAdoption`.
    pub adoption: Outcome<pb::GuidanceAdoptionResponse>,
    /// `PracticeEffect` per (practice, metric) the guidance names.
    pub effects: Vec<PracticeAnswer>,
}

impl LearningAnswers {
    fn failures(&self) -> Vec<&Failure> {
        let mut out: Vec<&Failure> = failure(&self.guidance).into_iter().collect();
        out.extend(failure(&self.adoption));
        out.extend(self.effects.iter().filter_map(|e| failure(&e.effect)));
        out
    }

    fn calls(&self) -> usize {
        2 + self.effects.len()
    }
}

/// Everything the gateway answered for one report.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The catalogue; when it failed, there are no metrics.
    pub catalogue: Outcome<pb::ListMetricsResponse>,
    /// One entry per catalogue metric, in catalogue order.
    pub metrics: Vec<MetricAnswers>,
    /// The learning loop's part (a partner's report only).
    pub learning: Option<LearningAnswers>,
}

impl Gathered {
    /// Every failed call, in the order they were made.
    pub fn failures(&self) -> Vec<&Failure> {
        let mut failures: Vec<&Failure> = failure(&self.catalogue).into_iter().collect();
        for m in &self.metrics {
            match &m.calls {
                MetricCalls::Network { benchmark, trend } => {
                    failures.extend(failure(benchmark));
                    failures.extend(failure(trend));
                }
                MetricCalls::Facility { scorecard } => failures.extend(failure(scorecard)),
            }
        }
        if let Some(learning) = &self.learning {
            failures.extend(learning.failures());
        }
        failures
    }

    /// How many calls were made.
    pub fn calls(&self) -> usize {
        let per_metric = |m: &MetricAnswers| match m.calls {
            MetricCalls::Network { .. } => 2,
            MetricCalls::Facility { .. } => 1,
        };
        1 + self.metrics.iter().map(per_metric).sum::<usize>()
            + self.learning.as_ref().map_or(0, LearningAnswers::calls)
    }
}

/// Makes every call of `plan`, writing one line per metric to `progress`.
pub async fn gather(gateway: Gateway, plan: &Plan, progress: &mut impl Write) -> Gathered {
    let started = Instant::now();
    let result = gateway
        .client
        .clone()
        .list_metrics(request(plan, pb::ListMetricsRequest {}))
        .await;
    let catalogue = gateway.settle("ListMetrics", started, result).await;
    let metrics = match &catalogue {
        Ok(answer) => answer.response.metrics.clone(),
        Err(missing) => {
            let _ = writeln!(progress, "{}", missing_words(missing));
            Vec::new()
        }
    };
    let _ = writeln!(
        progress,
        "report for {}, {} to {}: {} metrics from {}",
        match &plan.reader {
            Reader::Network { principal, .. } => principal.clone(),
            Reader::Facility { id, .. } => format!("facility {id}"),
        },
        plan.month_from,
        plan.month_to,
        metrics.len(),
        gateway.addr
    );
    let total = metrics.len();
    let mut answers = Vec::new();
    for (i, metric) in metrics.into_iter().enumerate() {
        let started = Instant::now();
        let calls = match plan.reader {
            Reader::Network { .. } => network_calls(&gateway, plan, &metric).await,
            Reader::Facility { .. } => facility_calls(&gateway, plan, &metric).await,
        };
        let _ = writeln!(
            progress,
            "[{}/{}] {}: {} ({:.1} s)",
            i + 1,
            total,
            metric.id,
            progress_line(&calls),
            started.elapsed().as_secs_f64()
        );
        answers.push(MetricAnswers { metric, calls });
    }
    // The learning loop's part is a partner's; a gateway that did not answer the catalogue is
    // not asked again.
    let learning = match (&plan.reader, &catalogue) {
        (Reader::Network { .. }, Ok(_)) => Some(learning_calls(&gateway, plan, progress).await),
        _ => None,
    };
    Gathered {
        catalogue,
        metrics: answers,
        learning,
    }
}

/// Guidance in force, its adoption, and the effect of every practice it recommends on every
/// metric it names — one line of progress for the guidance, one per effect.
async fn learning_calls(
    gateway: &Gateway,
    plan: &Plan,
    progress: &mut impl Write,
) -> LearningAnswers {
    let mut client = GuidanceServiceClient::new(gateway.channel.clone());
    let started = Instant::now();
    let result = client
        .list_guidance(request(plan, pb::ListGuidanceRequest {}))
        .await;
    let guidance = gateway.settle("ListGuidance", started, result).await;
    let started = Instant::now();
    let result = client
        .guidance_adoption(request(plan, pb::GuidanceAdoptionRequest {}))
        .await;
    let adoption = gateway.settle("GuidanceAdoption", started, result).await;
    let items = guidance
        .as_ref()
        .map(|g| g.response.items.clone())
        .unwrap_or_default();
    let _ = writeln!(progress, "guidance: {} item(s) in force", items.len());
    let mut effects = Vec::new();
    let mut practices = PracticeEffectServiceClient::new(gateway.channel.clone());
    for item in items.iter().filter(|i| !i.practice_code.is_empty()) {
        for metric in &item.metric_ids {
            let started = Instant::now();
            let ask = pb::PracticeEffectRequest {
                practice_code: item.practice_code.clone(),
                metric: metric.clone(),
                ..Default::default()
            };
            let result = practices.practice_effect(request(plan, ask)).await;
            let call = format!("PracticeEffect({}, {metric})", item.practice_code);
            let effect = gateway.settle(&call, started, result).await;
            let _ = writeln!(
                progress,
                "{call}: {}",
                match &effect {
                    Ok(_) => "answered".to_string(),
                    Err(missing) => missing_words(missing),
                }
            );
            effects.push(PracticeAnswer {
                practice: item.practice_code.clone(),
                guidance: item.title.clone(),
                metric: metric.clone(),
                effect,
            });
        }
    }
    LearningAnswers {
        guidance,
        adoption,
        effects,
    }
}

async fn network_calls(gateway: &Gateway, plan: &Plan, metric: &pb::Metric) -> MetricCalls {
    let started = Instant::now();
    let categories = metric
        .numerator
        .as_ref()
        .map(|n| n.categories.clone())
        .unwrap_or_default();
    let ask = pb::NetworkBenchmarkRequest {
        month_from: plan.month_from.clone(),
        month_to: plan.month_to.clone(),
        categories,
        metric: metric.id.clone(),
        peer_group: plan.peer_group.clone(),
    };
    let result = gateway
        .client
        .clone()
        .network_benchmark(request(plan, ask))
        .await;
    let benchmark = gateway
        .settle(&format!("NetworkBenchmark({})", metric.id), started, result)
        .await;
    let started = Instant::now();
    let ask = pb::TrendRequest {
        metric: metric.id.clone(),
        month_from: plan.month_from.clone(),
        month_to: plan.month_to.clone(),
        peer_group: plan.peer_group.clone(),
        laney: plan.laney,
    };
    let result = gateway.client.clone().trend(request(plan, ask)).await;
    let trend = gateway
        .settle(&format!("Trend({})", metric.id), started, result)
        .await;
    MetricCalls::Network { benchmark, trend }
}

async fn facility_calls(gateway: &Gateway, plan: &Plan, metric: &pb::Metric) -> MetricCalls {
    let started = Instant::now();
    let ask = pb::FacilityScorecardRequest {
        metric: metric.id.clone(),
        month_from: plan.month_from.clone(),
        month_to: plan.month_to.clone(),
        peer_group: plan.peer_group.clone(),
    };
    let result = gateway
        .client
        .clone()
        .facility_scorecard(request(plan, ask))
        .await;
    let scorecard = gateway
        .settle(
            &format!("FacilityScorecard({})", metric.id),
            started,
            result,
        )
        .await;
    MetricCalls::Facility { scorecard }
}

/// `message` as a request that gives up after the plan's timeout.
fn request<T>(plan: &Plan, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(plan.timeout);
    request
}

impl Gateway {
    /// The outcome of `call`, its failure explained in plain words.
    async fn settle<T>(
        &self,
        call: &str,
        started: Instant,
        result: Result<tonic::Response<T>, tonic::Status>,
    ) -> Outcome<T> {
        match result {
            Ok(response) => Ok(Answered {
                response: response.into_inner(),
                elapsed: started.elapsed(),
            }),
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                Err(Missing::Withheld {
                    call: call.to_string(),
                    reason: status.message().to_string(),
                })
            }
            Err(status) => {
                let peer = format!("the gateway at {}", self.addr);
                let why = client::explain(status, &self.addr, &peer, &self.identity).await;
                Err(Missing::Failed(Failure {
                    call: call.to_string(),
                    why: format!("{why:#}"),
                }))
            }
        }
    }
}

/// A call that gave no answer, in a few words.
fn missing_words(missing: &Missing) -> String {
    match missing {
        Missing::Withheld { call, reason } => format!("{call} withheld: {reason}"),
        Missing::Failed(f) => format!("{} FAILED: {}", f.call, f.why),
    }
}

/// Facilities that answered, of those in scope.
fn answered(coverage: &[pb::FacilityCoverage]) -> String {
    let ok = coverage
        .iter()
        .filter(|c| c.status == pb::CoverageStatus::Ok as i32)
        .count();
    format!("{ok} of {} facilities answered", coverage.len())
}

/// A metric's calls in a few words, for its progress line.
fn progress_line(calls: &MetricCalls) -> String {
    match calls {
        MetricCalls::Network { benchmark, trend } => {
            let benchmark = match benchmark {
                Ok(a) => {
                    let released = match &a.response.metric {
                        Some(b) if b.released => "released",
                        _ => "withheld",
                    };
                    format!("benchmark {released}, {}", answered(&a.response.coverage))
                }
                Err(missing) => missing_words(missing),
            };
            let trend = match trend {
                Ok(a) => {
                    let points = a.response.chart.as_ref().map_or(&[][..], |c| &c.points);
                    let released = points.iter().filter(|p| p.released).count();
                    format!(
                        "trend {released} of {} months released, {}",
                        points.len(),
                        answered(&a.response.coverage)
                    )
                }
                Err(missing) => missing_words(missing),
            };
            format!("{benchmark}; {trend}")
        }
        MetricCalls::Facility { scorecard } => match scorecard {
            Ok(a) => match &a.response.peers {
                Some(p) if p.released => format!(
                    "scorecard against {} facilities, percentile rank {:.0}",
                    p.contributing_facilities, a.response.percentile_rank
                ),
                _ => "scorecard; peer figures withheld".into(),
            },
            Err(missing) => missing_words(missing),
        },
    }
}
