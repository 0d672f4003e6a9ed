//! `InterventionService` on the local listener: the facility's own systems record, amend, end
//! and list interventions and ask for their before/after. Wire messages are checked into domain
//! types here ([`super::wire`]), and every write is durable before it is acknowledged.

use super::effect::{DEFAULT_WINDOW_MONTHS, MAX_WINDOW_MONTHS, MIN_WINDOW_MONTHS, effect};
use super::effect_wire::effect_to_wire;
use super::register::{self, Changed, Recorded};
use super::series::SeriesError;
use super::wire::{id_from_wire, intervention_from_wire, intervention_to_wire, required_month};
use crate::reporting::store_status;
use crate::store::Store;
use psonet_core::pb::{self, intervention_service_server::InterventionService};
use psonet_core::violations::FieldViolations;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Longest amendment reason, in characters.
const MAX_REASON_CHARS: usize = 1_000;

/// The facility's register of interventions, served on the local listener.
pub struct Interventions {
    store: Arc<Store>,
}

impl Interventions {
    /// Serves the interventions of `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Makes the writes so far durable.
    async fn durable(&self) -> Result<(), Status> {
        self.store.make_durable().await.map_err(store_status)
    }
}

fn not_found(id: &str) -> Status {
    Status::not_found(format!("no intervention has id {id:?}"))
}

/// The window a request asks for, checked.
fn window_from_wire(months: u32) -> Result<u32, Status> {
    match months {
        0 => Ok(DEFAULT_WINDOW_MONTHS),
        w if (MIN_WINDOW_MONTHS..=MAX_WINDOW_MONTHS).contains(&w) => Ok(w),
        w => {
            let mut v = FieldViolations::new();
            v.add(
                "window_months",
                format!("{w} is outside {MIN_WINDOW_MONTHS}..={MAX_WINDOW_MONTHS}"),
            );
            Err(v.into_status())
        }
    }
}

fn series_status(e: SeriesError) -> Status {
    match e {
        SeriesError::Invalid(v) => v.into_status(),
        SeriesError::Store(e) => store_status(e),
    }
}

fn changed_response(outcome: Changed, id: &str) -> Result<(pb::Intervention, bool), Status> {
    match outcome {
        Changed::NotFound => Err(not_found(id)),
        Changed::Changed(i) => Ok((intervention_to_wire(&i), false)),
        Changed::Unchanged(i) => Ok((intervention_to_wire(&i), true)),
        Changed::EndsBeforeStart(start) => {
            let mut v = FieldViolations::new();
            v.add(
                "end_month",
                format!("is before the intervention's start month {start}"),
            );
            Err(v.into_status())
        }
    }
}

#[tonic::async_trait]
impl InterventionService for Interventions {
    async fn record_intervention(
        &self,
        request: Request<pb::RecordInterventionRequest>,
    ) -> Result<Response<pb::RecordInterventionResponse>, Status> {
        let new = intervention_from_wire(request.into_inner().intervention, "intervention")?;
        let (stored, duplicate) = match register::record(&self.store, &new).map_err(store_status)? {
            Recorded::Stored(i) => (i, false),
            Recorded::Duplicate(i) => (i, true),
            Recorded::Conflict(i) => {
                return Err(Status::already_exists(format!(
                    "intervention {:?} is already recorded with other content (revision {}); \
                     amend it instead",
                    i.id, i.revision
                )));
            }
        };
        self.durable().await?;
        Ok(Response::new(pb::RecordInterventionResponse {
            intervention: Some(intervention_to_wire(&stored)),
            duplicate,
        }))
    }

    async fn amend_intervention(
        &self,
        request: Request<pb::AmendInterventionRequest>,
    ) -> Result<Response<pb::AmendInterventionResponse>, Status> {
        let req = request.into_inner();
        let amended = intervention_from_wire(req.intervention, "intervention");
        let mut v = amended.as_ref().err().cloned().unwrap_or_default();
        if req.reason.trim().is_empty() {
            v.add("reason", "required");
        } else if req.reason.chars().count() > MAX_REASON_CHARS {
            v.add("reason", format!("at most {MAX_REASON_CHARS} characters"));
        }
        let amended = match amended {
            Ok(a) if v.is_empty() => a,
            _ => return Err(v.into_status()),
        };
        let outcome = register::amend(&self.store, &amended, &req.reason).map_err(store_status)?;
        let (intervention, unchanged) = changed_response(outcome, &amended.id)?;
        self.durable().await?;
        Ok(Response::new(pb::AmendInterventionResponse {
            intervention: Some(intervention),
            unchanged,
        }))
    }

    async fn end_intervention(
        &self,
        request: Request<pb::EndInterventionRequest>,
    ) -> Result<Response<pb::EndInterventionResponse>, Status> {
        let req = request.into_inner();
        let id = id_from_wire(&req.intervention_id, "intervention_id");
        let end = required_month(&req.end_month, "end_month");
        let (id, end) = match (id, end) {
            (Ok(id), Ok(end)) => (id, end),
            (id, end) => {
                let mut v = FieldViolations::new();
                for bad in [id.err(), end.err()].into_iter().flatten() {
                    bad.iter()
                        .for_each(|x| v.add(x.field.clone(), x.description.clone()));
                }
                return Err(v.into_status());
            }
        };
        let outcome = register::end(&self.store, &id, end).map_err(store_status)?;
        let (intervention, _) = changed_response(outcome, &id)?;
        self.durable().await?;
        Ok(Response::new(pb::EndInterventionResponse {
            intervention: Some(intervention),
        }))
    }

    async fn list_interventions(
        &self,
        request: Request<pb::ListInterventionsRequest>,
    ) -> Result<Response<pb::ListInterventionsResponse>, Status> {
        let practice = request.into_inner().practice_code;
        let interventions = register::list(&self.store)
            .map_err(store_status)?
            .iter()
            .filter(|i| practice.is_empty() || i.practice_code == practice)
            .map(intervention_to_wire)
            .collect();
        Ok(Response::new(pb::ListInterventionsResponse {
            interventions,
        }))
    }

    async fn intervention_effect(
        &self,
        request: Request<pb::InterventionEffectRequest>,
    ) -> Result<Response<pb::InterventionEffectResponse>, Status> {
        let req = request.into_inner();
        let id = id_from_wire(&req.intervention_id, "intervention_id")?;
        let window = window_from_wire(req.window_months)?;
        let Some(metric) = req.metric else {
            let mut v = FieldViolations::new();
            v.add("metric", "required");
            return Err(v.into_status());
        };
        let store = self.store.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let Some(intervention) = register::get(&store, &id).map_err(store_status)? else {
                return Err(not_found(&id));
            };
            let effect = effect(&store, &intervention, &metric, window).map_err(series_status)?;
            Ok(effect_to_wire(&effect, &intervention, &metric, window))
        })
        .await
        .map_err(|e| Status::internal(format!("the computation failed: {e}")))??;
        Ok(Response::new(answer))
    }
}
