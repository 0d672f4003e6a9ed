//! `AggregateService`: what the PSO gateway may learn from this facility (federation listener).
//!
//! Answers are read from counters, never from events, and every answer passes the disclosure
//! module (`psonet_core::disclosure`) in one order: fixed buckets, facility policy, the
//! query-set minimum, then — when the network turned differential privacy on — a budget charge
//! and discrete-Gaussian noise, then primary and complementary suppression. Every request,
//! answered or refused, is appended to the hash-chained audit trail and made durable before the
//! answer leaves. Exposure (patient days and other denominators) is a census figure, not an
//! event count, and is released as is.

use crate::audit::{AuditEntry, AuditTrail};
use crate::ledger::{Ledger, LedgerError, answer_key};
use crate::policy::Policy;
use crate::reporting::store_status;
use crate::store::Store;
use psonet_core::disclosure::buckets::FinestGrain;
use psonet_core::disclosure::discrete_gaussian::{DiscreteGaussian, OsRandom};
use psonet_core::disclosure::primary::SmallCellRule;
use psonet_core::disclosure::zcdp::{Rho, Variance};
use psonet_core::disclosure::{RawAnswer, canonical, noise, query_set, release};
use psonet_core::pb::{self, aggregate_service_server::AggregateService};
use psonet_core::query::AggregateQuery;
use psonet_core::violations::FieldViolations;
use psonet_serve::identity::Principal;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The disclosure settings of a node.
#[derive(Debug, Clone, Copy)]
pub struct DisclosureRules {
    /// k: the primary rule and the query-set minimum.
    pub small_cells: SmallCellRule,
    /// The finest time bucket released.
    pub finest_grain: FinestGrain,
}

/// The federation API of a node.
pub struct Aggregates {
    store: Arc<Store>,
    rules: DisclosureRules,
    policy: Policy,
    /// Present when differential privacy is on.
    ledger: Option<Ledger>,
    audit: AuditTrail,
}

/// An answer and what the audit trail records about it.
struct Answered {
    response: pb::AggregateResponse,
    released: u32,
    suppressed: u32,
    spent: Rho,
    replayed: bool,
}

impl Aggregates {
    /// Serves counts from `store` under `rules` and `policy`, with noise and budgets from
    /// `ledger` when given, auditing every request to `audit`.
    pub fn new(
        store: Arc<Store>,
        rules: DisclosureRules,
        policy: Policy,
        ledger: Option<Ledger>,
        audit: AuditTrail,
    ) -> Self {
        Self {
            store,
            rules,
            policy,
            ledger,
            audit,
        }
    }

    fn answer(
        &self,
        querier: &Principal,
        req: &pb::AggregateRequest,
        audit_query: &mut String,
    ) -> Result<Answered, Status> {
        let query = AggregateQuery::from_wire(req)?;
        *audit_query = canonical(&query);
        self.rules.finest_grain.check(&query)?;
        self.policy
            .approve(querier, &query)
            .map_err(|r| r.into_status())?;
        let raw = RawAnswer {
            cells: self.store.aggregate(&query).map_err(store_status)?,
            totals: match query.event_totals() {
                Some(totals) => self.store.aggregate(&totals).map_err(store_status)?,
                None => Default::default(),
            },
        };
        self.check_query_set(&raw)?;
        let mut answered = match &self.ledger {
            Some(ledger) => self.noisy(ledger, querier, &query, &raw, audit_query)?,
            None => self.exact(&raw),
        };
        answered.response.exposure = self.exposure(&query)?;
        Ok(answered)
    }

    fn check_query_set(&self, raw: &RawAnswer) -> Result<(), Status> {
        query_set::check(query_set::size_lower_bound(raw), &self.rules.small_cells)
            .map_err(|e| refusal(Code::PermissionDenied, "QUERY_SET_TOO_SMALL", e.to_string()))
    }

    fn exact(&self, raw: &RawAnswer) -> Answered {
        let out = release(raw, &self.rules.small_cells);
        Answered {
            response: pb::AggregateResponse {
                cells: out.cells,
                event_totals: out.event_totals,
                min_cell_count: self.rules.small_cells.min_cell_count(),
                exposure: Vec::new(),
            },
            released: out.released,
            suppressed: out.suppressed,
            spent: Rho::ZERO,
            replayed: false,
        }
    }

    /// The differentially private answer: replayed at no cost when this query was answered on
    /// the same data before, else charged, noised over the whole domain, then suppressed.
    fn noisy(
        &self,
        ledger: &Ledger,
        querier: &Principal,
        query: &AggregateQuery,
        raw: &RawAnswer,
        audit_query: &str,
    ) -> Result<Answered, Status> {
        let key = answer_key(audit_query, raw);
        if let Some(response) = ledger
            .replay(&key)
            .map_err(|e| ledger_status(&self.store, e))?
        {
            let all = response.cells.iter().chain(&response.event_totals);
            let suppressed = all.clone().filter(|c| c.suppressed).count() as u32;
            let released = all.count() as u32 - suppressed;
            return Ok(Answered {
                response,
                released,
                suppressed,
                spent: Rho::ZERO,
                replayed: true,
            });
        }
        let totals_query = query.event_totals();
        let domain = noise::domain(query).map_err(too_large)?;
        let totals_domain = match &totals_query {
            Some(q) => noise::domain(q).map_err(too_large)?,
            None => Vec::new(),
        };
        let months: Vec<_> = query.range.months().collect();
        ledger
            .reserve(&querier.uri(), &months)
            .map_err(|e| ledger_status(&self.store, e))?;
        let variance = Variance::for_cost(
            noise::l2_squared(query, totals_query.is_some()),
            ledger.per_query(),
        )
        .ok_or_else(|| Status::internal("privacy.rho_per_query is zero"))?;
        let gaussian = DiscreteGaussian::new(variance);
        let mut rng = OsRandom::default();
        let noisy = RawAnswer {
            cells: noise::add_noise(&raw.cells, &domain, &gaussian, &mut rng),
            totals: noise::add_noise(&raw.totals, &totals_domain, &gaussian, &mut rng),
        };
        let mut answered = self.exact(&noisy);
        answered.spent = ledger.per_query();
        ledger
            .remember(&key, &answered.response)
            .map_err(|e| ledger_status(&self.store, e))?;
        Ok(answered)
    }

    fn exposure(&self, query: &AggregateQuery) -> Result<Vec<pb::ExposureCell>, Status> {
        let units = query
            .filter
            .get(&pb::Dimension::UnitType)
            .cloned()
            .unwrap_or_default();
        Ok(self
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
            .collect())
    }

    /// Appends the request's audit record and makes it durable.
    async fn record(&self, entry: AuditEntry) -> Result<(), Status> {
        crate::audit::record_durably(&self.audit, &self.store, entry).await
    }
}

/// The principal the gateway asks for: `querier` when set (same network), else the caller.
pub(crate) fn querier_of(
    caller: &Principal,
    req: &pb::AggregateRequest,
) -> Result<Principal, Status> {
    querier_of_uri(caller, &req.querier)
}

/// The principal named by `querier` (same network as the caller), or the caller when empty.
pub(crate) fn querier_of_uri(caller: &Principal, querier: &str) -> Result<Principal, Status> {
    if querier.is_empty() {
        return Ok(caller.clone());
    }
    match Principal::from_uri(querier) {
        Ok(p) if p.network == caller.network => Ok(p),
        Ok(_) => Err(one_violation(
            "querier",
            "must be a principal of this network",
        )),
        Err(e) => Err(one_violation("querier", &e.to_string())),
    }
}

/// `INVALID_ARGUMENT` with one field violation.
pub(crate) fn one_violation(field: &str, why: &str) -> Status {
    let mut v = FieldViolations::new();
    v.add(field, why);
    v.into_status()
}

/// A refusal with an `ErrorInfo` reason (domain "psonet").
pub(crate) fn refusal(code: Code, reason: &str, message: String) -> Status {
    let details = ErrorDetails::with_error_info(reason, "psonet", HashMap::new());
    Status::with_error_details(code, message, details)
}

/// A query whose cell domain is too large to answer over its whole domain.
pub(crate) fn too_large(e: noise::DomainTooLarge) -> Status {
    one_violation("group_by", &e.to_string())
}

/// The status for a ledger refusal or failure; a failure of its sled trees is the store's, so
/// it turns the node NOT_SERVING like any other store failure.
pub(crate) fn ledger_status(store: &Store, e: LedgerError) -> Status {
    match e {
        LedgerError::Exhausted(e) => e.into_status(),
        LedgerError::Sled(e) => {
            store.failure().record_cause(&format!(
                "the privacy ledger could not be read or written: {e}"
            ));
            Status::unavailable("the node's privacy ledger is failing")
        }
    }
}

#[tonic::async_trait]
impl AggregateService for Aggregates {
    async fn aggregate(
        &self,
        request: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateResponse>, Status> {
        let caller = psonet_serve::auth::caller(&request)?.clone();
        let req = request.into_inner();
        let mut query = format!("{}..{} (as received)", req.month_from, req.month_to);
        let outcome = querier_of(&caller, &req).and_then(|q| self.answer(&q, &req, &mut query));
        let mut entry = AuditEntry {
            caller: caller.uri(),
            querier: if req.querier.is_empty() {
                caller.uri()
            } else {
                req.querier.clone()
            },
            query,
            ..Default::default()
        };
        match outcome {
            Ok(answered) => {
                entry.outcome = if answered.replayed {
                    "replayed"
                } else {
                    "answered"
                };
                entry.released_cells = answered.released;
                entry.suppressed_cells = answered.suppressed;
                entry.rho_spent_micros = answered.spent.micros();
                self.record(entry).await?;
                Ok(Response::new(answered.response))
            }
            Err(status) => {
                entry.outcome = "refused";
                entry.refusal = format!("{:?}: {}", status.code(), status.message());
                self.record(entry).await?;
                Err(status)
            }
        }
    }
}
