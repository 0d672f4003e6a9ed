//! Round 1: the query checked as `Aggregate` checks it, the cohort checked, the exact lane
//! vector built from the counters, the node's noise share added when differential privacy is
//! on, then masked; the self-mask seed's shares sealed to every member.
//!
//! Order matters for what a refusal can tell: everything that does not depend on the data —
//! query, policy, cohort, keys, threshold, the differencing rule — is checked before the
//! counters are read, and nothing after that refuses on the data's account except a value too
//! large for the sum to stay exact. The privacy budget is charged (write-ahead) before noise is
//! drawn, and stays charged whatever happens next.

use super::cpu_time::CpuStopwatch;
use super::refusal::{self, QUERY_ID_REUSED, STALE_MASKING_KEY, UNKNOWN_COHORT, refuse};
use super::round_log::{Claim, MemberRecord, RoundRecord};
use super::{Refused, SecureAggregates, secure};
use super::{epoch_key::EpochKey, hex};
use crate::aggregate::{ledger_status, one_violation, querier_of, too_large};
use crate::audit::AuditEntry;
use crate::reporting::store_status;
use prost::Message;
use psonet_core::disclosure::discrete_gaussian::{DiscreteGaussian, OsRandom};
use psonet_core::disclosure::{canonical, noise};
use psonet_core::month::Month;
use psonet_core::pb;
use psonet_core::query::AggregateQuery;
use psonet_core::secagg::MAX_COHORT;
use psonet_core::secagg::cohort::Cohort;
use psonet_core::secagg::lanes::{self, LaneDomain};
use psonet_core::secagg::mask::QueryId;
use psonet_core::secagg::noise_share::{add_noise_share, share_variance};
use psonet_core::secagg::protocol::NodeRound1;
use psonet_core::violations::FieldViolations;
use psonet_core::wire::{masking_key_from_wire, query_id_from_wire};
use psonet_serve::identity::Principal;
use std::collections::{BTreeMap, BTreeSet};
use tonic::{Code, Status};

impl SecureAggregates {
    /// Answers round 1 (or replays the stored answer to an identical retry); the audit entry
    /// comes back filled in either way.
    pub(super) fn round_one(
        &self,
        caller: &Principal,
        req: &pb::MaskedRoundRequest,
        known: Option<&[u8]>,
        digest: [u8; 32],
        mut entry: AuditEntry,
    ) -> Result<(pb::MaskedRoundResponse, AuditEntry), Refused> {
        let query_id = match query_id_from_wire(&req.query_id, "query_id") {
            Ok(q) => q,
            Err(v) => return Err((v.into_status(), Box::new(entry))),
        };
        secure(&mut entry).query_id = query_id.to_string();
        let key = match self.current_key() {
            Ok(key) => key,
            Err(status) => return Err((status, Box::new(entry))),
        };
        match self
            .rounds
            .claim_round_one(&query_id, &digest, key.signed.epoch)
        {
            Ok(Claim::Fresh) => {}
            Ok(Claim::Replay(record)) => {
                return match pb::MaskedRoundResponse::decode(record.round1_response.as_slice()) {
                    Ok(response) => {
                        entry.outcome = "replayed";
                        entry.query = record.query.clone();
                        let s = secure(&mut entry);
                        s.cohort_size = record.members.len() as u32;
                        s.threshold = record.threshold;
                        s.revealed = "the same masked vector and sealed shares again".into();
                        Ok((response, entry))
                    }
                    Err(e) => Err((
                        refusal::round_log(super::round_log::RoundLogError::Corrupt(e.to_string())),
                        Box::new(entry),
                    )),
                };
            }
            Ok(Claim::Taken) => {
                let status = refuse(
                    Code::FailedPrecondition,
                    QUERY_ID_REUSED,
                    format!(
                        "query id {query_id} was already used; a node answers each round once per query id"
                    ),
                    &[],
                );
                return Err((status, Box::new(entry)));
            }
            Err(e) => return Err((refusal::round_log(e), Box::new(entry))),
        }
        match self.answer_round_one(caller, req, known, &key, query_id, &digest, &mut entry) {
            Ok(response) => {
                entry.outcome = "answered";
                Ok((response, entry))
            }
            Err(status) => {
                if let Err(e) = self.rounds.release(&query_id) {
                    tracing::warn!(error = %e, "a refused round's query id could not be released");
                }
                Err((status, Box::new(entry)))
            }
        }
    }

    /// The cohort of round 1: the keys it carries, or the kept cohort `known` names by its hash
    /// (UNKNOWN_COHORT when none is kept). This node's own key must be its current one (else the
    /// gateway holds a stale key: STALE_MASKING_KEY), every key must verify.
    fn cohort(
        &self,
        keys: &[pb::SignedMaskingKey],
        known: Option<&[u8]>,
        own: &EpochKey,
    ) -> Result<Cohort, Status> {
        if let Some(hash) = known {
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| one_violation("cohort_hash", "32 bytes"))?;
            let cohort = match self.checks.known(&hash) {
                None => {
                    return Err(refuse(
                        Code::FailedPrecondition,
                        UNKNOWN_COHORT,
                        format!(
                            "this node holds no cohort {}: send the cohort's keys",
                            hex(&hash)
                        ),
                        &[],
                    ));
                }
                Some(Err((facility, e))) => return Err(refusal::untrusted(&facility, e)),
                Some(Ok(cohort)) => cohort,
            };
            if let Some(stale) = cohort.member(&self.facility).filter(|m| {
                m.public_key != own.signed.public_key || cohort.epoch() != own.signed.epoch
            }) {
                return Err(refuse(
                    Code::FailedPrecondition,
                    STALE_MASKING_KEY,
                    format!(
                        "the cohort carries a masking key of {:?} for {} that is not its current one: fetch the keys again",
                        stale.facility,
                        cohort.epoch()
                    ),
                    &[("facility", stale.facility.clone())],
                ));
            }
            return Ok(cohort);
        }
        if keys.len() > MAX_COHORT {
            return Err(one_violation(
                "cohort",
                &format!("{} members; at most {MAX_COHORT}", keys.len()),
            ));
        }
        let mut violations = FieldViolations::new();
        let mut parsed = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            match masking_key_from_wire(key, &format!("cohort[{i}]")) {
                Ok(k) => parsed.push(k),
                Err(v) => {
                    for f in v.iter() {
                        violations.add(f.field.clone(), f.description.clone());
                    }
                }
            }
        }
        if !violations.is_empty() {
            return Err(violations.into_status());
        }
        if let Some(stale) = parsed.iter().find(|k| {
            k.facility == self.facility
                && (k.public_key != own.signed.public_key || k.epoch != own.signed.epoch)
        }) {
            return Err(refuse(
                Code::FailedPrecondition,
                STALE_MASKING_KEY,
                format!(
                    "the cohort carries a masking key of {:?} for {} that is not its current one: fetch the keys again",
                    stale.facility, stale.epoch
                ),
                &[("facility", stale.facility.clone())],
            ));
        }
        let verified = parsed
            .iter()
            .map(|k| {
                self.checks
                    .verify(k)
                    .map_err(|e| refusal::untrusted(&k.facility, e))
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let cohort = Cohort::new(verified).map_err(|e| one_violation("cohort", &e.to_string()))?;
        self.checks.remember(&cohort, parsed);
        Ok(cohort)
    }

    #[allow(clippy::too_many_arguments)]
    fn answer_round_one(
        &self,
        caller: &Principal,
        req: &pb::MaskedRoundRequest,
        known: Option<&[u8]>,
        key: &EpochKey,
        query_id: QueryId,
        digest: &[u8; 32],
        entry: &mut AuditEntry,
    ) -> Result<pb::MaskedRoundResponse, Status> {
        let cpu = CpuStopwatch::start();
        let wire_query = req
            .query
            .as_ref()
            .ok_or_else(|| one_violation("query", "required"))?;
        let querier = querier_of(caller, wire_query)?;
        entry.querier = querier.uri();
        let query = AggregateQuery::from_wire(wire_query)?;
        entry.query = canonical(&query);
        self.rules.finest_grain.check(&query)?;
        self.policy
            .approve(&querier, &query)
            .map_err(|r| r.into_status())?;

        let keys_cpu = CpuStopwatch::start();
        let cohort = self.cohort(&req.cohort, known, key)?;
        let mut masking_micros = keys_cpu.micros();
        {
            let s = secure(entry);
            s.cohort_size = cohort.len() as u32;
            s.cohort_hash = hex(&cohort.hash().0);
            s.threshold = req.threshold;
        }
        let round = NodeRound1 {
            facility: &self.facility,
            secret: &key.secret,
            cohort: &cohort,
            query_id,
            threshold: req.threshold as usize,
            min_cohort: self.min_cohort,
        };
        round.check().map_err(refusal::protocol)?;
        let months: Vec<Month> = query.range.months().collect();
        let members: BTreeSet<String> = cohort
            .members()
            .iter()
            .map(|m| m.facility.clone())
            .collect();
        self.participants
            .check(&months, &members)
            .map_err(refusal::participants)?;

        let domain = LaneDomain::of(&query).map_err(too_large)?;
        let layout = domain.layout();
        let cells = self.store.aggregate(&query).map_err(store_status)?;
        let totals = match query.event_totals() {
            Some(totals) => self.store.aggregate(&totals).map_err(store_status)?,
            None => BTreeMap::new(),
        };
        let units = query
            .filter
            .get(&pb::Dimension::UnitType)
            .cloned()
            .unwrap_or_default();
        let exposure = self
            .store
            .exposure(query.range, query.grain, &units)
            .map_err(store_status)?;
        let exact = domain.exact_values(&cells, &totals, &exposure);

        let mut noise = Vec::new();
        let mut noise_variance = 0.0;
        if let Some(ledger) = &self.ledger {
            ledger
                .reserve(&querier.uri(), &months)
                .map_err(|e| ledger_status(&self.store, e))?;
            entry.rho_spent_micros = ledger.per_query().micros();
            let l2 = noise::l2_squared(&query, query.event_totals().is_some());
            let variance = share_variance(l2, ledger.per_query(), cohort.len())
                .ok_or_else(|| Status::internal("privacy.rho_per_query is zero"))?;
            noise_variance = variance.numerator as f64 / variance.denominator as f64;
            noise = vec![0i64; layout.noised()];
            add_noise_share(
                &mut noise,
                &DiscreteGaussian::new(variance),
                &mut OsRandom::default(),
            );
        }
        let lanes = layout
            .encode(&exact, &noise, cohort.len())
            .map_err(refusal::lanes)?;

        let masking_cpu = CpuStopwatch::start();
        let out = round
            .mask(&lanes, &mut OsRandom::default())
            .map_err(refusal::protocol)?;
        let shares: Vec<u8> = out
            .shares
            .iter()
            .flat_map(|s| s.ciphertext.iter().copied())
            .collect();
        masking_micros += masking_cpu.micros();

        let response = pb::MaskedRoundResponse {
            masked: lanes::to_bytes(&out.masked),
            lanes: layout.len() as u32,
            count_lanes: layout.counts as u32,
            total_lanes: layout.totals as u32,
            exposure_lanes: layout.exposure as u32,
            shares,
            noise_variance,
            cpu_micros: cpu.micros(),
            masking_cpu_micros: masking_micros,
        };
        secure(entry).revealed = format!(
            "a masked vector of {} lanes ({} counts, {} totals, {} exposure, {} indicators){} and {} sealed seed shares",
            layout.len(),
            layout.counts,
            layout.totals,
            layout.exposure,
            layout.values(),
            if noise.is_empty() {
                String::new()
            } else {
                format!(", counts noised with variance {noise_variance:.3}")
            },
            cohort.len()
        );
        let record = RoundRecord {
            epoch: cohort.epoch().value(),
            round1_digest: digest.to_vec(),
            round1_answered: true,
            round1_response: response.encode_to_vec(),
            threshold: req.threshold,
            network: cohort.network().to_string(),
            members: cohort
                .members()
                .iter()
                .map(|m| MemberRecord {
                    facility: m.facility.clone(),
                    public_key: m.public_key.to_vec(),
                })
                .collect(),
            months: months.iter().map(|m| m.index()).collect(),
            querier: querier.uri(),
            query: entry.query.clone(),
            ..Default::default()
        };
        self.rounds
            .put(&query_id, &record)
            .map_err(refusal::round_log)?;
        Ok(response)
    }
}
