//! `ReportingService`: the facility's own systems submit and read events here (local listener).
//!
//! The edge of the local API: wire events are validated into domain events here, and a stored
//! event is turned into the API's `GetEventResponse` here (`get_event_response`) — the store
//! itself never holds an API message.

use crate::record::StoredEvent;
use crate::store::{AmendOutcome, Exposure, Store, StoreError, SubmitOutcome};
use crate::writer::Writer;
use futures::StreamExt;
use psonet_core::month::Month;
use psonet_core::pb::{self, get_event_request::Key, reporting_service_server::ReportingService};
use psonet_core::violations::FieldViolations;
use psonet_core::wire::{event_from_wire, event_to_wire, month_from_wire};
use std::collections::HashSet;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// Most events of a stream applied in one transaction.
const STREAM_BATCH: usize = 4096;
/// Most rejections listed in a stream summary.
const MAX_LISTED_REJECTIONS: usize = 1000;
/// Most exposure records in one request.
const MAX_EXPOSURE_RECORDS: usize = 10_000;
/// Largest count of one exposure record (doses of a very large hospital's month, with room).
const MAX_EXPOSURE_VALUE: u64 = 100_000_000;
/// Longest amendment reason, in characters.
const MAX_REASON_CHARS: usize = 1_000;

/// The local API of a node.
pub struct Reporting {
    store: Arc<Store>,
    writer: Writer,
}

impl Reporting {
    /// Serves `store`.
    pub fn new(store: Arc<Store>) -> Self {
        let writer = Writer::start(store.clone());
        Self { store, writer }
    }

    /// Stores validated events through the single writer; durable when it returns.
    async fn store_durably(
        &self,
        events: Vec<psonet_core::event::Event>,
    ) -> Result<Vec<SubmitOutcome>, Status> {
        self.writer.submit(events).await.map_err(store_status)
    }
}

/// The status for a store failure; details go to the log, not to the caller. A failure of the
/// store itself has been recorded by the store (the node stops on it and is restarted), so a
/// retry, at this node after its restart, is what helps.
pub(crate) fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::Corrupt(_) => {
            tracing::error!(error = %e, "a stored record does not decode");
            Status::data_loss("the node's store could not be read")
        }
        StoreError::Sled(_) => Status::unavailable(
            "the node's store failed; the node is restarting, retry in a few seconds",
        ),
        StoreError::NewerFormat { .. } | StoreError::DataDir(_) => {
            Status::internal("the node cannot read its store")
        }
    }
}

/// The API's answer for a stored event.
fn get_event_response(stored: StoredEvent) -> pb::GetEventResponse {
    pb::GetEventResponse {
        event_id: stored.event_id,
        event: Some(event_to_wire(&stored.event)),
        received_at: Some(stored.received_at.into()),
        revision: stored.revision,
        history: stored
            .history
            .into_iter()
            .map(|old| pb::EventRevision {
                revision: old.revision,
                event: Some(event_to_wire(&old.event)),
                amended_at: Some(old.amended_at.into()),
                reason: old.reason,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl ReportingService for Reporting {
    async fn submit_event(
        &self,
        request: Request<pb::SubmitEventRequest>,
    ) -> Result<Response<pb::SubmitEventResponse>, Status> {
        let Some(wire) = request.into_inner().event else {
            let mut v = FieldViolations::new();
            v.add("event", "required");
            return Err(v.into_status());
        };
        let event = event_from_wire(wire, "event", Month::current())?;
        let outcome = self.store_durably(vec![event]).await?.pop();
        let (event_id, duplicate) = match outcome {
            Some(SubmitOutcome::Stored(id)) => (id, false),
            Some(SubmitOutcome::Duplicate(id)) => (id, true),
            None => return Err(Status::internal("the store returned no outcome")),
        };
        Ok(Response::new(pb::SubmitEventResponse {
            event_id,
            duplicate,
        }))
    }

    async fn submit_events(
        &self,
        request: Request<Streaming<pb::SubmitEventsRequest>>,
    ) -> Result<Response<pb::SubmitEventsResponse>, Status> {
        let mut stream = request.into_inner().ready_chunks(STREAM_BATCH);
        let mut summary = pb::SubmitEventsResponse::default();
        let mut index = 0u64;
        let now = Month::current();
        while let Some(chunk) = stream.next().await {
            let mut valid = Vec::with_capacity(chunk.len());
            for message in chunk {
                let wire = message?.event.unwrap_or_default();
                let key = wire.idempotency_key.clone();
                match event_from_wire(wire, "event", now) {
                    Ok(event) => valid.push(event),
                    Err(v) => reject(&mut summary, index, key, &v),
                }
                index += 1;
            }
            if valid.is_empty() {
                continue;
            }
            let outcomes = self.store_durably(valid).await?;
            for outcome in outcomes {
                match outcome {
                    SubmitOutcome::Stored(_) => summary.accepted += 1,
                    SubmitOutcome::Duplicate(_) => summary.duplicates += 1,
                }
            }
        }
        // Every chunk was durable before the next was read: the summary is the ack.
        Ok(Response::new(summary))
    }

    async fn get_event(
        &self,
        request: Request<pb::GetEventRequest>,
    ) -> Result<Response<pb::GetEventResponse>, Status> {
        let found = match request.into_inner().key {
            Some(Key::EventId(id)) => self.store.event_by_id(&id),
            Some(Key::IdempotencyKey(key)) => self.store.event_by_key(&key),
            None => {
                let mut v = FieldViolations::new();
                v.add("key", "set event_id or idempotency_key");
                return Err(v.into_status());
            }
        };
        found
            .map_err(store_status)?
            .map(|stored| Response::new(get_event_response(stored)))
            .ok_or_else(|| Status::not_found("no stored event has that id or key"))
    }

    async fn amend_event(
        &self,
        request: Request<pb::AmendEventRequest>,
    ) -> Result<Response<pb::AmendEventResponse>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let reason = req.reason.trim().to_string();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            v.add(
                "reason",
                format!("required: 1 to {MAX_REASON_CHARS} characters saying why"),
            );
        }
        let event = match req.event {
            None => {
                v.add("event", "required: the corrected event");
                None
            }
            Some(wire) => match event_from_wire(wire, "event", Month::current()) {
                Ok(event) => Some(event),
                Err(e) => {
                    e.iter()
                        .for_each(|x| v.add(x.field.clone(), x.description.clone()));
                    None
                }
            },
        };
        let Some(event) = event.filter(|_| v.is_empty()) else {
            return Err(v.into_status());
        };
        let store = self.store.clone();
        let outcome = tokio::task::spawn_blocking(move || store.amend(&event, &reason))
            .await
            .map_err(|e| Status::internal(format!("store task failed: {e}")))?
            .map_err(store_status)?;
        match outcome {
            AmendOutcome::NotFound => Err(Status::not_found(
                "no stored event has that idempotency key; submit it first",
            )),
            AmendOutcome::Amended {
                event_id,
                revision,
                unchanged,
            } => {
                self.store.make_durable().await.map_err(store_status)?;
                Ok(Response::new(pb::AmendEventResponse {
                    event_id,
                    revision,
                    unchanged,
                }))
            }
        }
    }

    async fn record_exposure(
        &self,
        request: Request<pb::RecordExposureRequest>,
    ) -> Result<Response<pb::RecordExposureResponse>, Status> {
        let records = exposure_from_wire(request.into_inner().records)?;
        let store = self.store.clone();
        let recorded = records.len() as u32;
        tokio::task::spawn_blocking(move || store.record_exposure(&records))
            .await
            .map_err(|e| Status::internal(format!("store task failed: {e}")))?
            .map_err(store_status)?;
        self.store.make_durable().await.map_err(store_status)?;
        Ok(Response::new(pb::RecordExposureResponse { recorded }))
    }
}

fn reject(summary: &mut pb::SubmitEventsResponse, index: u64, key: String, v: &FieldViolations) {
    summary.rejected += 1;
    if summary.rejections.len() < MAX_LISTED_REJECTIONS {
        summary.rejections.push(pb::EventRejection {
            index,
            idempotency_key: key,
            violations: v.to_wire(),
        });
    }
}

/// Validates every exposure record; any violation refuses the whole request.
fn exposure_from_wire(records: Vec<pb::ExposureRecord>) -> Result<Vec<Exposure>, FieldViolations> {
    let mut v = FieldViolations::new();
    if records.is_empty() || records.len() > MAX_EXPOSURE_RECORDS {
        v.add(
            "records",
            format!(
                "{} records; send 1 to {MAX_EXPOSURE_RECORDS}",
                records.len()
            ),
        );
    }
    let now = Month::current();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.into_iter().enumerate() {
        let field = |name: &str| format!("records[{i}].{name}");
        let month = month_from_wire(&r.month, &field("month"), &mut v);
        if let Some(m) = month.filter(|m| *m > now) {
            v.add(
                field("month"),
                format!("{m} is in the future (now is {now})"),
            );
        }
        let unit = match pb::UnitType::try_from(r.unit_type) {
            Ok(pb::UnitType::Unspecified) => {
                v.add(field("unit_type"), "required");
                None
            }
            Ok(u) => Some(u),
            Err(_) => {
                v.add(
                    field("unit_type"),
                    format!("{} is not a known value", r.unit_type),
                );
                None
            }
        };
        let denominator = match pb::DenominatorType::try_from(r.denominator) {
            Ok(pb::DenominatorType::Unspecified) => {
                v.add(field("denominator"), "required: what the value counts");
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                v.add(
                    field("denominator"),
                    format!("{} is not a known value", r.denominator),
                );
                None
            }
        };
        if r.value > MAX_EXPOSURE_VALUE {
            v.add(field("value"), format!("at most {MAX_EXPOSURE_VALUE}"));
        }
        if let (Some(month), Some(unit_type), Some(denominator)) = (month, unit, denominator) {
            if !seen.insert((month, unit_type, denominator)) {
                v.add(
                    field("month"),
                    format!(
                        "{month} {} {} is listed twice",
                        unit_type.as_str_name(),
                        denominator.as_str_name()
                    ),
                );
            }
            out.push(Exposure {
                month,
                unit_type,
                denominator,
                value: r.value,
            });
        }
    }
    v.into_result(out)
}
