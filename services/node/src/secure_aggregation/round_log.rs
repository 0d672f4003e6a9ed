//! Which rounds this node answered, per query id, kept in sled (tree [`ROUNDS_TREE`]).
//!
//! A node answers each round at most once per query id: a second masked vector under the same
//! pairwise masks, or a second set of unmasking material, could open what one execution keeps
//! shut. So round 1 *claims* its query id (an atomic insert-if-absent) before anything is
//! computed, and records what round 2 will need — the cohort's ids and public keys, the
//! threshold, the months (for the differencing rule), the querier — together with the answer.
//! Everything kept is public or already sent: no seed, no share, no secret.
//!
//! A retry of a round that carries exactly the same request (same SHA-256) gets the stored
//! answer back, byte for byte: the gateway learns nothing it did not have, and a transport retry
//! (a connection reset after the node answered) does not cost the member its place in the sum.
//! Any other request under a used query id is refused. The round-1 answer is dropped once round
//! 2 is answered (a round-1 retry then is refused).
//!
//! Records live as long as the masking key they were answered with could still be used: those
//! of epochs before the previous one are pruned (at start and when the epoch changes). A query
//! id answered under an older key cannot be replayed anyway — its round 1 would be refused as
//! stale, and its round 2 needs the secret that is gone — so at most two months of records are
//! kept, about the answer's size (a few KiB) per query until its round 2.

use prost::Message;
use psonet_core::secagg::cohort::{Cohort, CohortError, Member};
use psonet_core::secagg::mask::QueryId;
use psonet_core::secagg::masking_key::Epoch;
use psonet_core::secagg::protocol::Round1Record;
use sled::Tree;

/// Name of the sled tree of answered rounds.
pub const ROUNDS_TREE: &str = "secagg_rounds";

/// One query id's rounds, as stored.
#[derive(Clone, PartialEq, Message)]
pub struct RoundRecord {
    /// Epoch of the masking key round 1 was answered with.
    #[prost(uint32, tag = "1")]
    pub epoch: u32,
    /// SHA-256 of the round-1 request.
    #[prost(bytes = "vec", tag = "2")]
    pub round1_digest: Vec<u8>,
    /// Whether round 1 was answered (false while it is being computed).
    #[prost(bool, tag = "3")]
    pub round1_answered: bool,
    /// The round-1 answer as sent, for an identical retry; emptied once round 2 is answered.
    #[prost(bytes = "vec", tag = "4")]
    pub round1_response: Vec<u8>,
    /// Shamir threshold t.
    #[prost(uint32, tag = "5")]
    pub threshold: u32,
    /// The cohort's network.
    #[prost(string, tag = "6")]
    pub network: String,
    /// The cohort's members and their masking keys.
    #[prost(message, repeated, tag = "7")]
    pub members: Vec<MemberRecord>,
    /// The data months the query covers (month indexes).
    #[prost(uint32, repeated, tag = "8")]
    pub months: Vec<u32>,
    /// The querier the gateway asked for.
    #[prost(string, tag = "9")]
    pub querier: String,
    /// The canonical query, for the audit trail.
    #[prost(string, tag = "10")]
    pub query: String,
    /// SHA-256 of the round-2 request, once answered.
    #[prost(bytes = "vec", tag = "11")]
    pub round2_digest: Vec<u8>,
    /// The round-2 answer as sent, for an identical retry.
    #[prost(bytes = "vec", tag = "12")]
    pub round2_response: Vec<u8>,
}

/// A cohort member as stored.
#[derive(Clone, PartialEq, Message)]
pub struct MemberRecord {
    /// Facility id.
    #[prost(string, tag = "1")]
    pub facility: String,
    /// Its X25519 masking key (32 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
}

impl RoundRecord {
    /// Whether round 2 was answered.
    pub fn round2_answered(&self) -> bool {
        !self.round2_digest.is_empty()
    }

    /// What the protocol's round 2 needs from round 1.
    pub fn round1(&self, query_id: QueryId) -> Result<Round1Record, RoundLogError> {
        let members = self
            .members
            .iter()
            .map(|m| {
                Ok(Member {
                    facility: m.facility.clone(),
                    public_key: m
                        .public_key
                        .as_slice()
                        .try_into()
                        .map_err(|_| RoundLogError::Corrupt("a stored public key".into()))?,
                })
            })
            .collect::<Result<Vec<_>, RoundLogError>>()?;
        let cohort = Cohort::restore(self.network.clone(), Epoch::from_u32(self.epoch), members)
            .map_err(RoundLogError::Cohort)?;
        Ok(Round1Record {
            query_id,
            threshold: self.threshold as usize,
            cohort,
        })
    }
}

/// The log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RoundLogError {
    /// sled failed.
    #[error("the round log failed: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record does not decode.
    #[error("a stored round record is corrupt: {0}")]
    Corrupt(String),
    /// A stored cohort is not one.
    #[error("a stored cohort is invalid: {0}")]
    Cohort(CohortError),
}

/// What a round-1 claim found.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// The query id is new and now held by this request.
    Fresh,
    /// The same request was answered before: send its stored answer again.
    Replay(Box<RoundRecord>),
    /// The query id was used by another request, or its round 1 is still being computed.
    Taken,
}

/// The answered rounds of this node.
pub struct RoundLog {
    tree: Tree,
}

impl RoundLog {
    /// The log in `tree`.
    pub fn new(tree: Tree) -> Self {
        Self { tree }
    }

    /// The record of `query_id`, if any.
    pub fn get(&self, query_id: &QueryId) -> Result<Option<RoundRecord>, RoundLogError> {
        self.tree
            .get(query_id.as_bytes())?
            .map(|bytes| {
                RoundRecord::decode(bytes.as_ref())
                    .map_err(|e| RoundLogError::Corrupt(e.to_string()))
            })
            .transpose()
    }

    /// Claims `query_id` for a round-1 request with SHA-256 `digest`, answered under `epoch`.
    pub fn claim_round_one(
        &self,
        query_id: &QueryId,
        digest: &[u8; 32],
        epoch: Epoch,
    ) -> Result<Claim, RoundLogError> {
        let pending = RoundRecord {
            epoch: epoch.value(),
            round1_digest: digest.to_vec(),
            ..Default::default()
        };
        let swapped = self.tree.compare_and_swap(
            query_id.as_bytes(),
            None as Option<&[u8]>,
            Some(pending.encode_to_vec()),
        )?;
        if swapped.is_ok() {
            return Ok(Claim::Fresh);
        }
        Ok(match self.get(query_id)? {
            Some(r)
                if r.round1_answered
                    && r.round1_digest == digest
                    && !r.round1_response.is_empty() =>
            {
                Claim::Replay(Box::new(r))
            }
            _ => Claim::Taken,
        })
    }

    /// Gives a claim back: round 1 was refused, nothing left the node.
    pub fn release(&self, query_id: &QueryId) -> Result<(), RoundLogError> {
        self.tree.remove(query_id.as_bytes())?;
        Ok(())
    }

    /// Stores `record` (round 1 answered, or round 2 answered) under `query_id`; durable with
    /// the store's next flush.
    pub fn put(&self, query_id: &QueryId, record: &RoundRecord) -> Result<(), RoundLogError> {
        self.tree
            .insert(query_id.as_bytes(), record.encode_to_vec())?;
        Ok(())
    }

    /// Removes the records of epochs before `oldest` (their keys are gone); returns how many.
    pub fn prune(&self, oldest: Epoch) -> Result<usize, RoundLogError> {
        let mut removed = 0;
        for item in self.tree.iter() {
            let (key, value) = item?;
            let epoch = RoundRecord::decode(value.as_ref())
                .map(|r| r.epoch)
                .unwrap_or(0);
            if epoch < oldest.value() {
                self.tree.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> (tempfile::TempDir, RoundLog) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        (dir, RoundLog::new(db.open_tree(ROUNDS_TREE).unwrap()))
    }

    #[test]
    fn a_query_id_is_claimed_once_and_an_identical_retry_replays() {
        let (_dir, log) = log();
        let q = QueryId([1; 16]);
        let e = Epoch::from_u32(24_300);
        assert_eq!(log.claim_round_one(&q, &[9; 32], e).unwrap(), Claim::Fresh);
        // While it is computed, even the same request waits its turn: refused.
        assert_eq!(log.claim_round_one(&q, &[9; 32], e).unwrap(), Claim::Taken);
        let mut record = log.get(&q).unwrap().unwrap();
        record.round1_answered = true;
        record.round1_response = vec![1, 2, 3];
        log.put(&q, &record).unwrap();
        assert_eq!(
            log.claim_round_one(&q, &[9; 32], e).unwrap(),
            Claim::Replay(Box::new(record))
        );
        assert_eq!(log.claim_round_one(&q, &[8; 32], e).unwrap(), Claim::Taken);
        // A refused round gives its id back.
        let other = QueryId([2; 16]);
        assert_eq!(
            log.claim_round_one(&other, &[9; 32], e).unwrap(),
            Claim::Fresh
        );
        log.release(&other).unwrap();
        assert_eq!(
            log.claim_round_one(&other, &[9; 32], e).unwrap(),
            Claim::Fresh
        );
    }

    #[test]
    fn records_of_old_epochs_are_pruned() {
        let (_dir, log) = log();
        for (i, epoch) in [24_300, 24_301, 24_302].into_iter().enumerate() {
            let q = QueryId([i as u8; 16]);
            log.claim_round_one(&q, &[0; 32], Epoch::from_u32(epoch))
                .unwrap();
        }
        assert_eq!(log.prune(Epoch::from_u32(24_301)).unwrap(), 1);
        assert!(log.get(&QueryId([0; 16])).unwrap().is_none());
        assert!(log.get(&QueryId([1; 16])).unwrap().is_some());
    }
}
