//! `SecureAggregationService`: this facility's exact figures, masked so that only a cohort's sum
//! can be opened (issue 11; `reference/privacy.md` §2.2 Variant A, §4.3, §5). Federation
//! listener, gateway only.
//!
//! The arithmetic is `psonet_core::secagg`'s; this module holds what a node adds around it, one
//! concept per file:
//! - [`epoch_key`]: the masking key of the month, signed with the federation certificate's key;
//! - [`key_checks`]: the cohort's keys checked against the network CA, verdicts and checked
//!   cohorts remembered (a round 1 may name a checked cohort by its hash);
//! - [`round_one`] and [`round_two`]: the two rounds, each computed on one thread without
//!   yielding, with its CPU time measured ([`cpu_time`]);
//! - [`round_log`]: which query ids were answered, per round (sled);
//! - [`participants`]: the participant sets per data month and the differencing rule (sled);
//! - [`refusal`]: the reasons a round says no.
//!
//! Every round — answered, replayed or refused — is appended to the audit trail and made durable
//! before its answer leaves, with the store's group commit: rounds of concurrent queries share
//! one flush, as the events of concurrent submits do.
//!
//! The query is validated as `Aggregate` validates it (fixed buckets, facility policy, the
//! privacy budget when differential privacy is on), except for the query-set minimum: with
//! secure aggregation the node's own figures never leave unmasked, so a small total of its own
//! is no disclosure, and refusing because of one would itself tell the gateway that its total is
//! below k. Disclosure control applies to the cohort's sum, at the gateway.

pub mod cpu_time;
pub mod epoch_key;
pub mod key_checks;
pub mod participants;
pub mod refusal;
pub mod round_log;
pub mod round_one;
pub mod round_two;

use crate::aggregate::{DisclosureRules, one_violation};
use crate::audit::{AuditEntry, AuditTrail, SecureRoundAudit, record_durably};
use crate::ledger::Ledger;
use crate::policy::Policy;
use crate::store::{Store, StoreError};
use epoch_key::{EpochKey, EpochKeyError, EpochKeys};
use key_checks::KeyChecks;
use participants::{PARTICIPANTS_TREE, Participants};
use prost::Message;
use psonet_core::pb::{self, secure_aggregation_service_server::SecureAggregationService};
use psonet_core::secagg::masking_key::{Epoch, MaskingKeyError, MaskingKeyVerifier};
use psonet_core::wire::masking_key_to_wire;
use psonet_serve::identity::Principal;
use psonet_serve::tls::TlsFiles;
use ring::digest::{SHA256, digest};
use round_log::{ROUNDS_TREE, RoundLog};
use std::sync::{Arc, Mutex, PoisonError};
use tonic::{Request, Response, Status};

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SecureAggregationError {
    /// The federation identity cannot sign masking keys.
    #[error(transparent)]
    Signer(#[from] EpochKeyError),
    /// The federation CA cannot anchor masking-key checks.
    #[error("federation.tls.ca: cannot check masking keys against it: {0}")]
    Verifier(MaskingKeyError),
    /// The CA file could not be read.
    #[error("federation.tls.ca = {0}: cannot read it")]
    ReadCa(String),
    /// A tree of the store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the service is built from.
pub struct SecureAggregationParts {
    /// This facility's id.
    pub facility: String,
    /// This network's name.
    pub network: String,
    /// The federation listener's TLS files: its certificate and key sign masking keys, its CA
    /// (the network CA) checks the cohort's.
    pub federation_tls: TlsFiles,
    /// The node's cohort minimum (`secure_aggregation.min_cohort`).
    pub min_cohort: usize,
    /// The store.
    pub store: Arc<Store>,
    /// Fixed buckets (the small-cell rule is the gateway's, on the sum).
    pub rules: DisclosureRules,
    /// The facility policy.
    pub policy: Policy,
    /// The privacy ledger, when differential privacy is on.
    pub ledger: Option<Ledger>,
    /// The node's audit trail (shared with `AggregateService`).
    pub audit: AuditTrail,
}

/// The secure-aggregation service of one node.
pub struct SecureAggregates {
    facility: String,
    min_cohort: usize,
    store: Arc<Store>,
    rules: DisclosureRules,
    policy: Policy,
    ledger: Option<Ledger>,
    audit: AuditTrail,
    keys: Arc<EpochKeys>,
    checks: KeyChecks,
    rounds: RoundLog,
    participants: Participants,
    /// Round 2 reads its record, checks and writes it back under this lock, so two round-2
    /// requests for one query id cannot both be answered.
    round_two: Mutex<()>,
    /// The epoch the round log was last pruned for.
    pruned: Mutex<Option<Epoch>>,
}

impl SecureAggregates {
    /// The service; fails when the federation identity cannot sign masking keys or its CA
    /// cannot check them.
    pub fn new(parts: SecureAggregationParts) -> Result<Self, SecureAggregationError> {
        let keys = Arc::new(EpochKeys::load(
            &parts.federation_tls,
            &parts.facility,
            &parts.network,
        )?);
        let ca = std::fs::read(&parts.federation_tls.ca).map_err(|_| {
            SecureAggregationError::ReadCa(parts.federation_tls.ca.display().to_string())
        })?;
        let verifier = MaskingKeyVerifier::from_pem(&parts.network, &ca)
            .map_err(SecureAggregationError::Verifier)?;
        Ok(Self {
            facility: parts.facility,
            min_cohort: parts.min_cohort,
            rounds: RoundLog::new(parts.store.tree(ROUNDS_TREE)?),
            participants: Participants::new(parts.store.tree(PARTICIPANTS_TREE)?),
            store: parts.store,
            rules: parts.rules,
            policy: parts.policy,
            ledger: parts.ledger,
            audit: parts.audit,
            keys,
            checks: KeyChecks::new(verifier),
            round_two: Mutex::new(()),
            pruned: Mutex::new(None),
        })
    }

    /// The node's masking keys, to keep them current in the background
    /// ([`epoch_key::rotate_in_background`]).
    pub fn epoch_keys(&self) -> Arc<EpochKeys> {
        self.keys.clone()
    }

    /// The current epoch's key; when the epoch has changed, round records of epochs before the
    /// previous one are pruned first.
    fn current_key(&self) -> Result<EpochKey, Status> {
        let key = self.keys.current().map_err(refusal::masking_key)?;
        let epoch = key.signed.epoch;
        let mut pruned = self.pruned.lock().unwrap_or_else(PoisonError::into_inner);
        if *pruned != Some(epoch) {
            let oldest = Epoch::from_u32(epoch.value().saturating_sub(1));
            match self.rounds.prune(oldest) {
                Ok(n) => {
                    tracing::info!(removed = n, "round log pruned to the last two epochs");
                    *pruned = Some(epoch);
                }
                Err(e) => tracing::warn!(error = %e, "round log could not be pruned"),
            }
        }
        Ok(key)
    }

    /// Audits a round's outcome (durably, with a shared flush), then lets its answer or its
    /// refusal leave.
    async fn respond<T>(
        &self,
        outcome: Result<(T, AuditEntry), Refused>,
    ) -> Result<Response<T>, Status> {
        match outcome {
            Ok((answer, entry)) => {
                record_durably(&self.audit, &self.store, entry).await?;
                Ok(Response::new(answer))
            }
            Err((status, entry)) => {
                let mut entry = *entry;
                entry.outcome = "refused";
                entry.refusal = format!("{:?}: {}", status.code(), status.message());
                record_durably(&self.audit, &self.store, entry).await?;
                Err(status)
            }
        }
    }
}

/// A refused round with the audit entry that records it.
type Refused = (Status, Box<AuditEntry>);

/// The secure-aggregation part of an audit entry.
fn secure(entry: &mut AuditEntry) -> &mut SecureRoundAudit {
    entry.secure_round.get_or_insert_with(Default::default)
}

/// The audit entry of a round, before it is known how it ends.
fn audit_entry(caller: &Principal, round: u8, querier: &str) -> AuditEntry {
    AuditEntry {
        caller: caller.uri(),
        querier: if querier.is_empty() {
            caller.uri()
        } else {
            querier.to_string()
        },
        query: "(not read)".into(),
        secure_round: Some(SecureRoundAudit {
            round,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// SHA-256 of a request as received, so an identical retry can be recognised.
fn request_digest(request: &impl Message) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, &request.encode_to_vec()).as_ref());
    out
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl SecureAggregationService for SecureAggregates {
    async fn get_masking_key(
        &self,
        request: Request<pb::GetMaskingKeyRequest>,
    ) -> Result<Response<pb::GetMaskingKeyResponse>, Status> {
        psonet_serve::auth::caller(&request)?;
        let asked = request.get_ref().epoch;
        let key = self.current_key()?;
        let epoch = key.signed.epoch;
        if asked != 0 && asked != epoch.value() {
            return Err(one_violation(
                "epoch",
                &format!(
                    "this node's current epoch is {} ({epoch}); keys of other epochs are not served",
                    epoch.value()
                ),
            ));
        }
        Ok(Response::new(pb::GetMaskingKeyResponse {
            key: Some(masking_key_to_wire(&key.signed)),
        }))
    }

    async fn masked_round(
        &self,
        request: Request<pb::MaskedRoundRequest>,
    ) -> Result<Response<pb::MaskedRoundResponse>, Status> {
        let caller = psonet_serve::auth::caller(&request)?.clone();
        let req = request.into_inner();
        let querier = req.query.as_ref().map_or("", |q| q.querier.as_str());
        let entry = audit_entry(&caller, 1, querier);
        let digest = request_digest(&req);
        self.respond(self.round_one(&caller, &req, None, digest, entry))
            .await
    }

    async fn masked_round_on_known_cohort(
        &self,
        request: Request<pb::MaskedRoundOnKnownCohortRequest>,
    ) -> Result<Response<pb::MaskedRoundOnKnownCohortResponse>, Status> {
        let caller = psonet_serve::auth::caller(&request)?.clone();
        let known = request.into_inner();
        let digest = request_digest(&known);
        let req = pb::MaskedRoundRequest {
            query_id: known.query_id,
            query: known.query,
            cohort: Vec::new(),
            threshold: known.threshold,
        };
        let querier = req.query.as_ref().map_or("", |q| q.querier.as_str());
        let entry = audit_entry(&caller, 1, querier);
        let answer = self
            .respond(self.round_one(&caller, &req, Some(&known.cohort_hash), digest, entry))
            .await?;
        Ok(Response::new(pb::MaskedRoundOnKnownCohortResponse {
            answer: Some(answer.into_inner()),
        }))
    }

    async fn unmask_round(
        &self,
        request: Request<pb::UnmaskRoundRequest>,
    ) -> Result<Response<pb::UnmaskRoundResponse>, Status> {
        let caller = psonet_serve::auth::caller(&request)?.clone();
        let req = request.into_inner();
        let entry = audit_entry(&caller, 2, "");
        self.respond(self.round_two(&req, entry)).await
    }
}
