//! `PracticeOutcomeService` on the federation listener: what the gateway may learn about a
//! practice at this facility, for the network's practice effect.
//!
//! Only this leaves: whether the facility recorded the practice (for the metric asked), the
//! month its earliest such intervention started, and the metric's events and exposure summed
//! over the fixed windows on each side of that month — each event count under the node's
//! small-cell rule (1 to k−1 is withheld). Never the title, narrative, ids or units. The window
//! lengths are fixed (6, 12, 18 or 24 months) and a count is withheld too when it differs from
//! the same side's count under another allowed length by 1 to k−1, or when one of its months
//! holds 1 to k−1 events ([`super::window_release`]), so neither answers of different lengths
//! nor released monthly counts can be differenced into a small count; the windows are
//! anchored to the facility's own start month, which the querier cannot move. The same checks as an aggregate query come first (the
//! network's finest time bucket, the facility policy), differential privacy is not yet offered
//! for these counts (refused while it is on, rather than released without noise), and every
//! request, answered or refused, is on the audit trail before the answer leaves.

use super::definition::Intervention;
use super::effect::{before_after, window_range};
use super::register;
use super::series::{MonthCount, SeriesError, monthly, query};
use super::window_release::{holds_a_small_month, releasable};
use crate::aggregate::{DisclosureRules, one_violation, querier_of_uri};
use crate::audit::{AuditEntry, AuditTrail, record_durably};
use crate::policy::Policy;
use crate::reporting::store_status;
use crate::store::Store;
use psonet_core::pb::{self, practice_outcome_service_server::PracticeOutcomeService};
use psonet_core::stats::rate_ratio::BeforeAfter;
use psonet_serve::identity::Principal;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The window lengths a gateway may ask for.
pub const ALLOWED_WINDOWS: [u32; 4] = [6, 12, 18, 24];
/// The longest of them: the months read for every answer.
const LONGEST_WINDOW: u32 = 24;

/// The federation's view of this facility's practices.
pub struct PracticeOutcomes {
    store: Arc<Store>,
    rules: DisclosureRules,
    policy: Policy,
    noisy: bool,
    audit: AuditTrail,
}

impl PracticeOutcomes {
    /// Serves `store` under `rules` and `policy`; `noisy` when the node adds
    /// differential-privacy noise to its counts (these are then refused).
    pub fn new(
        store: Arc<Store>,
        rules: DisclosureRules,
        policy: Policy,
        noisy: bool,
        audit: AuditTrail,
    ) -> Self {
        Self {
            store,
            rules,
            policy,
            noisy,
            audit,
        }
    }

    /// The earliest intervention of `practice` aimed at `metric_id`.
    fn adoption(&self, practice: &str, metric_id: &str) -> Result<Option<Intervention>, Status> {
        Ok(register::list(&self.store)
            .map_err(store_status)?
            .into_iter()
            .filter(|i| i.practice_code == practice && i.targets(metric_id))
            .min_by_key(|i| (i.start, i.id.clone())))
    }

    /// The answer, after every check; `what` gets the audit's description of the query.
    fn answer(
        &self,
        querier: &Principal,
        req: &pb::PracticeOutcomeRequest,
        what: &mut String,
    ) -> Result<pb::PracticeOutcomeResponse, Status> {
        let metric = checked_request(req)?;
        if self.noisy {
            return Err(Status::failed_precondition(
                "this node adds differential-privacy noise to its counts; practice outcomes \
                 are not offered with noise yet",
            ));
        }
        let Some(intervention) = self.adoption(&req.practice_code, &metric.id)? else {
            return Ok(pb::PracticeOutcomeResponse {
                adopted: false,
                min_cell_count: self.rules.small_cells.min_cell_count(),
                ..Default::default()
            });
        };
        let window = req.window_months;
        let units = intervention
            .unit_filter(&metric.numerator.clone().unwrap_or_default().unit_types)
            .unwrap_or_default();
        // Read the longest allowed windows: every length's counts are compared before release.
        let Some(range) = window_range(intervention.start, LONGEST_WINDOW) else {
            return Err(Status::failed_precondition(
                "the windows run past the calendar",
            ));
        };
        *what = format!("{what} range={}..{}", range.from(), range.to());
        let q = query(metric, range, &units).map_err(series_status)?;
        self.rules.finest_grain.check(&q)?;
        self.policy
            .approve(querier, &q)
            .map_err(|r| r.into_status())?;
        let series = monthly(&self.store, metric, range, &units).map_err(series_status)?;
        Ok(self.release(&intervention, &series, window))
    }

    /// The windows' sums of `series`, each count under the small-cell rule and released only
    /// when no other allowed window length's count differs from it by a small count
    /// ([`releasable`]) and none of its months holds a small count ([`holds_a_small_month`]).
    fn release(
        &self,
        intervention: &Intervention,
        series: &[MonthCount],
        window: u32,
    ) -> pb::PracticeOutcomeResponse {
        let start = intervention.start;
        let w = before_after(series, start, window);
        let others: Vec<_> = ALLOWED_WINDOWS
            .iter()
            .filter(|other| **other != window)
            .map(|other| before_after(series, start, *other).counts)
            .collect();
        let rule = &self.rules.small_cells;
        let side = |count: u64, other: fn(&BeforeAfter) -> u64, before: bool| {
            let others: Vec<u64> = others.iter().map(other).collect();
            let small_month = holds_a_small_month(series, start, window, before, rule);
            if releasable(count, &others, rule) && !small_month {
                (count, false)
            } else {
                (0, true)
            }
        };
        let (before_events, before_suppressed) =
            side(w.counts.before.events, |c| c.before.events, true);
        let (after_events, after_suppressed) =
            side(w.counts.after.events, |c| c.after.events, false);
        pb::PracticeOutcomeResponse {
            adopted: true,
            start_month: start.to_string(),
            before_events,
            before_suppressed,
            before_exposure: w.counts.before.exposure as u64,
            before_months: w.months_before as u32,
            after_events,
            after_suppressed,
            after_exposure: w.counts.after.exposure as u64,
            after_months: w.months_after as u32,
            min_cell_count: rule.min_cell_count(),
        }
    }

    async fn audit(&self, entry: AuditEntry) -> Result<(), Status> {
        record_durably(&self.audit, &self.store, entry).await
    }
}

fn series_status(e: SeriesError) -> Status {
    match e {
        SeriesError::Invalid(v) => v.into_status(),
        SeriesError::Store(e) => store_status(e),
    }
}

/// The request's metric, once the practice code and window are good.
fn checked_request(req: &pb::PracticeOutcomeRequest) -> Result<&pb::Metric, Status> {
    if req.practice_code.is_empty() {
        return Err(one_violation("practice_code", "required"));
    }
    if !ALLOWED_WINDOWS.contains(&req.window_months) {
        return Err(one_violation(
            "window_months",
            &format!("must be one of {ALLOWED_WINDOWS:?}"),
        ));
    }
    match &req.metric {
        Some(m) if !m.id.is_empty() => Ok(m),
        _ => Err(one_violation("metric", "required, with its id")),
    }
}

/// Counts of the answer for the audit trail: released and suppressed event counts.
fn cell_counts(answer: &pb::PracticeOutcomeResponse) -> (u32, u32) {
    if !answer.adopted {
        return (0, 0);
    }
    let suppressed = u32::from(answer.before_suppressed) + u32::from(answer.after_suppressed);
    (2 - suppressed, suppressed)
}

#[tonic::async_trait]
impl PracticeOutcomeService for PracticeOutcomes {
    async fn practice_outcome(
        &self,
        request: Request<pb::PracticeOutcomeRequest>,
    ) -> Result<Response<pb::PracticeOutcomeResponse>, Status> {
        let caller = psonet_serve::auth::caller(&request)?.clone();
        let req = request.into_inner();
        let metric_id = req.metric.as_ref().map(|m| m.id.as_str()).unwrap_or("");
        let mut what = format!(
            "practice-outcome practice={:?} metric={metric_id:?} window={}",
            req.practice_code, req.window_months
        );
        let outcome = querier_of_uri(&caller, &req.querier)
            .and_then(|querier| self.answer(&querier, &req, &mut what));
        let mut entry = AuditEntry {
            caller: caller.uri(),
            querier: if req.querier.is_empty() {
                caller.uri()
            } else {
                req.querier.clone()
            },
            query: what,
            ..Default::default()
        };
        match outcome {
            Ok(answer) => {
                entry.outcome = "answered";
                (entry.released_cells, entry.suppressed_cells) = cell_counts(&answer);
                self.audit(entry).await?;
                Ok(Response::new(answer))
            }
            Err(status) => {
                entry.outcome = "refused";
                entry.refusal = format!("{:?}: {}", status.code(), status.message());
                self.audit(entry).await?;
                Err(status)
            }
        }
    }
}
