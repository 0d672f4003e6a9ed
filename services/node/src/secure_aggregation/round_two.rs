//! Round 2: the unmasking material for the survivors the gateway names — this node's share of
//! every survivor's self-mask seed, and its per-query pairwise key with every dropped member,
//! never both for one member — once per query id, and only for survivors the differencing rule
//! admits. The survivors become a participant set of every month the query covers.

use super::cpu_time::CpuStopwatch;
use super::refusal::{self, ROUND_ONE_MISSING, ROUND_TWO_ANSWERED, refuse};
use super::round_log::RoundRecord;
use super::{Refused, SecureAggregates, secure};
use super::{hex, request_digest};
use crate::audit::AuditEntry;
use prost::Message;
use psonet_core::month::Month;
use psonet_core::pb;
use psonet_core::secagg::protocol::{IncomingShare, NodeRound2};
use psonet_core::secagg::share_box::SEALED_LEN;
use psonet_core::wire::query_id_from_wire;
use std::collections::BTreeSet;
use std::sync::PoisonError;
use tonic::{Code, Status};

impl SecureAggregates {
    /// Answers round 2 (or replays the stored answer to an identical retry); the audit entry
    /// comes back filled in either way.
    pub(super) fn round_two(
        &self,
        req: &pb::UnmaskRoundRequest,
        mut entry: AuditEntry,
    ) -> Result<(pb::UnmaskRoundResponse, AuditEntry), Refused> {
        match self.answer_round_two(req, &mut entry) {
            Ok(response) => Ok((response, entry)),
            Err(status) => Err((status, Box::new(entry))),
        }
    }

    fn answer_round_two(
        &self,
        req: &pb::UnmaskRoundRequest,
        entry: &mut AuditEntry,
    ) -> Result<pb::UnmaskRoundResponse, Status> {
        let cpu = CpuStopwatch::start();
        let query_id = query_id_from_wire(&req.query_id, "query_id")?;
        secure(entry).query_id = query_id.to_string();
        let key = self.current_key()?;
        let digest = request_digest(req);
        let _one_at_a_time = self
            .round_two
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut record = self
            .rounds
            .get(&query_id)
            .map_err(refusal::round_log)?
            .filter(|r| r.round1_answered)
            .ok_or_else(|| {
                refuse(
                    Code::FailedPrecondition,
                    ROUND_ONE_MISSING,
                    format!("this node answered no round 1 for query id {query_id}"),
                    &[],
                )
            })?;
        entry.querier = record.querier.clone();
        entry.query = record.query.clone();
        {
            let s = secure(entry);
            s.cohort_size = record.members.len() as u32;
            s.threshold = record.threshold;
            s.dropped = req.dropped.clone();
        }
        if record.round2_answered() {
            if record.round2_digest == digest {
                let response = pb::UnmaskRoundResponse::decode(record.round2_response.as_slice())
                    .map_err(|e| {
                    refusal::round_log(super::round_log::RoundLogError::Corrupt(e.to_string()))
                })?;
                entry.outcome = "replayed";
                secure(entry).revealed = "the same unmasking material again".into();
                return Ok(response);
            }
            return Err(refuse(
                Code::FailedPrecondition,
                ROUND_TWO_ANSWERED,
                format!("round 2 of query id {query_id} was already answered, for other survivors"),
                &[],
            ));
        }
        let round1 = record.round1(query_id).map_err(refusal::round_log)?;
        secure(entry).cohort_hash = hex(&round1.cohort.hash().0);
        let mut round = NodeRound2 {
            facility: &self.facility,
            secret: &key.secret,
            record: &round1,
            min_cohort: self.min_cohort,
            survivors: &req.survivors,
            dropped: &req.dropped,
            shares: &[],
        };
        round.check().map_err(refusal::protocol)?;
        // The relayed shares run in cohort order over the survivors.
        let survivors: BTreeSet<&str> = req.survivors.iter().map(String::as_str).collect();
        let senders: Vec<&str> = round1
            .cohort
            .members()
            .iter()
            .map(|m| m.facility.as_str())
            .filter(|f| survivors.contains(f))
            .collect();
        if req.shares.len() != senders.len() * SEALED_LEN {
            return Err(crate::aggregate::one_violation(
                "shares",
                &format!(
                    "{} bytes; {} survivors send {SEALED_LEN} bytes each",
                    req.shares.len(),
                    senders.len()
                ),
            ));
        }
        let incoming: Vec<IncomingShare> = senders
            .iter()
            .zip(req.shares.chunks_exact(SEALED_LEN))
            .map(|(from, ciphertext)| IncomingShare {
                from: from.to_string(),
                ciphertext: ciphertext.to_vec(),
            })
            .collect();
        round.shares = &incoming;
        let months: Vec<Month> = record
            .months
            .iter()
            .filter_map(|m| Month::from_index(*m))
            .collect();
        let participants: BTreeSet<String> = req.survivors.iter().cloned().collect();
        let answered = self
            .participants
            .admit(&months, &participants, || {
                let answer = round.answer().map_err(refusal::protocol)?;
                let response = pb::UnmaskRoundResponse {
                    seed_shares: answer
                        .seed_shares
                        .iter()
                        .flat_map(|s| s.share.to_bytes())
                        .collect(),
                    dropped_keys: answer
                        .dropped_keys
                        .iter()
                        .flat_map(|k| *k.key.as_bytes())
                        .collect(),
                    cpu_micros: cpu.micros(),
                };
                self.mark_round_two(&query_id, &mut record, &digest, &response)?;
                Ok::<_, Status>((
                    response,
                    answer.seed_shares.len(),
                    answer.dropped_keys.len(),
                ))
            })
            .map_err(refusal::participants)?;
        let (response, shares, keys) = answered?;
        entry.outcome = "answered";
        secure(entry).revealed = format!(
            "seed shares of {shares} survivors and pairwise keys with {keys} dropped members"
        );
        Ok(response)
    }

    /// Records round 2 as answered, with its answer for an identical retry; round 1's answer is
    /// no longer kept.
    fn mark_round_two(
        &self,
        query_id: &psonet_core::secagg::mask::QueryId,
        record: &mut RoundRecord,
        digest: &[u8; 32],
        response: &pb::UnmaskRoundResponse,
    ) -> Result<(), Status> {
        record.round2_digest = digest.to_vec();
        record.round2_response = response.encode_to_vec();
        record.round1_response.clear();
        self.rounds
            .put(query_id, record)
            .map_err(refusal::round_log)
    }
}
