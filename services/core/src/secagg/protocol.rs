//! The secure-aggregation rounds as pure steps: a node's round 1, a node's round 2, and the
//! gateway's unmask. No I/O, no clock, no storage — the node and gateway wrap these with gRPC,
//! sled and audit.
//!
//! Round 1 ([`NodeRound1`]): a member masks its lane vector x as
//! y = x + PRG(b) + Σ_{j≠i} sign(i, j)·PRG(k_ij) (mod 2^32) and Shamir-shares its fresh seed b
//! t-of-|S|, sealing one share to **every** member — itself included. The design had shares go
//! to every *other* member only; then the survivors other than i hold |A| − 1 shares of b_i, one
//! short when |A| = t, and the node would have to keep its own share as a secret between rounds.
//! A share sealed to itself and relayed back by the gateway needs no secret state at all.
//!
//! Round 2 ([`NodeRound2`]): given survivors A and dropped D, a member returns its share of b_j
//! for every j ∈ A and its pairwise key k_id for every d ∈ D — never both for one member, which
//! is what keeps a member that the gateway falsely calls dropped masked by its own b.
//!
//! Unmask ([`GatewayUnmask`]): z = Σ_A y − Σ_A PRG(b_j) − Σ_{i∈A, d∈D} sign(i, d)·PRG(k_id).
//!
//! What a node must persist between the rounds is only public: the [`Round1Record`] (query id,
//! threshold, the cohort's ids and public keys) and whether it answered round 2. Its seed and
//! shares are dropped after round 1; its epoch secret stays in memory. A node whose epoch
//! secret changed between the rounds (restart, new month) cannot answer round 2
//! ([`ProtocolError::StaleMaskingKey`]).
//!
//! A limit of Variant A to know: when D is not empty, a member that answered round 1 but not
//! round 2 leaves masks with D in its y that nobody else can remove (its per-query pairwise keys
//! with the dropped are known only to it and to them). The gateway then refuses to produce a sum
//! ([`UnmaskError::MissingDroppedKey`]) — never a wrong one — and the query must be re-run under
//! a new query id. When D is empty, round-2 failures are tolerated while every survivor's seed
//! has t shares.

use super::cohort::Cohort;
use super::field::FieldElement;
use super::mask::{MaskKey, QueryId, Sign, apply_mask, pairwise_key, self_mask_key};
use super::masking_key::{MaskingSecret, PairSecret};
use super::shamir::{self, ShamirError, Share};
use super::share_box::{self, ShareBoxError};
use crate::disclosure::discrete_gaussian::UniformSource;
use std::collections::{BTreeMap, BTreeSet};
use zeroize::Zeroize;

/// The smallest cohort any node configuration may allow.
pub const MIN_COHORT_FLOOR: usize = 3;
/// The cohort minimum of a node that does not configure one.
pub const DEFAULT_MIN_COHORT: usize = 5;

/// The smallest Shamir threshold for a cohort of `size`: ⌊2|S|/3⌋ + 1, Bonawitz's value when the
/// gateway may collude with members or lie (privacy.md §2.1).
pub fn min_threshold(size: usize) -> usize {
    2 * size / 3 + 1
}

/// A share sealed by this node for member `to`, for the gateway to relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingShare {
    /// Addressee.
    pub to: String,
    /// The sealed share.
    pub ciphertext: Vec<u8>,
}

/// A share member `from` sealed for this node in round 1, relayed by the gateway in round 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingShare {
    /// Sender.
    pub from: String,
    /// The sealed share.
    pub ciphertext: Vec<u8>,
}

/// Why a node refuses a round. Each variant names the member or number at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Fewer members than the node's minimum.
    #[error("the cohort has {size} members; this node answers cohorts of at least {min}")]
    CohortTooSmall {
        /// |S|.
        size: usize,
        /// The node's minimum.
        min: usize,
    },
    /// This node is not a member.
    #[error("facility {0:?} is not in the cohort")]
    NotInCohort(String),
    /// The cohort carries a key of this node other than its current one.
    #[error("the cohort carries a masking key of {0:?} that is not its current one")]
    StaleMaskingKey(String),
    /// The threshold is outside ⌊2|S|/3⌋+1 ..= |S|.
    #[error("threshold {threshold} is outside {min}..={max} for this cohort")]
    Threshold {
        /// Asked for.
        threshold: usize,
        /// ⌊2|S|/3⌋ + 1.
        min: usize,
        /// |S|.
        max: usize,
    },
    /// A member's key is a low-order point.
    #[error("the masking key of {0:?} is a low-order point")]
    WeakKey(String),
    /// A member named in round 2 is not in the round-1 cohort.
    #[error("{0:?} was not in the round-1 cohort")]
    UnknownMember(String),
    /// A member named twice among survivors and dropped.
    #[error("{0:?} is listed twice")]
    ListedTwice(String),
    /// A member named both survivor and dropped.
    #[error("{0:?} is listed both as a survivor and as dropped")]
    SurvivorAndDropped(String),
    /// A cohort member named neither survivor nor dropped.
    #[error("{0:?} is in the cohort but neither a survivor nor dropped")]
    Unaccounted(String),
    /// This node is called dropped.
    #[error("this node answered round 1 but is not among the survivors")]
    NotASurvivor,
    /// Too few survivors to open anything safely.
    #[error("{survivors} survivors; at least {need} are needed")]
    TooFewSurvivors {
        /// |A|.
        survivors: usize,
        /// max(t, the node's minimum).
        need: usize,
    },
    /// A share relayed from a member called dropped: the gateway has its round-1 answer.
    #[error("a share from {0:?}, which is called dropped: it answered round 1")]
    ShareFromDropped(String),
    /// Two shares from one member.
    #[error("two shares from {0:?}")]
    DuplicateShare(String),
    /// A survivor's share for this node is missing.
    #[error("no share from survivor {0:?}")]
    MissingShare(String),
    /// A relayed share does not open.
    #[error("the share from {from:?} does not open: {error}")]
    BadShare {
        /// Sender.
        from: String,
        /// What failed.
        error: ShareBoxError,
    },
    /// Sealing a share failed.
    #[error("sealing a share failed: {0}")]
    Seal(ShareBoxError),
    /// Splitting the seed failed.
    #[error("sharing the seed failed: {0}")]
    Shamir(#[from] ShamirError),
}

/// What a node keeps from round 1 for round 2: public values only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round1Record {
    /// The query.
    pub query_id: QueryId,
    /// Shamir threshold t.
    pub threshold: usize,
    /// The cohort answered.
    pub cohort: Cohort,
}

/// A node's round-1 answer and what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round1Output {
    /// y, one u32 per lane.
    pub masked: Vec<u32>,
    /// One sealed seed share per member, in cohort order (this node's own included).
    pub shares: Vec<OutgoingShare>,
    /// What to persist for round 2.
    pub record: Round1Record,
}

/// Checks the parts of a round both rounds share: membership with the current key, and the
/// node's cohort minimum.
fn check_member(
    facility: &str,
    secret: &MaskingSecret,
    cohort: &Cohort,
) -> Result<(), ProtocolError> {
    let me = cohort
        .member(facility)
        .ok_or_else(|| ProtocolError::NotInCohort(facility.to_string()))?;
    if me.public_key != secret.public_key() || cohort.epoch() != secret.epoch() {
        return Err(ProtocolError::StaleMaskingKey(facility.to_string()));
    }
    Ok(())
}

/// The X25519 secret with every member, in cohort order.
fn agreements(secret: &MaskingSecret, cohort: &Cohort) -> Result<Vec<PairSecret>, ProtocolError> {
    cohort
        .members()
        .iter()
        .map(|m| {
            secret
                .agree(&m.public_key)
                .map_err(|_| ProtocolError::WeakKey(m.facility.clone()))
        })
        .collect()
}

/// A node's round 1.
#[derive(Debug)]
pub struct NodeRound1<'a> {
    /// This node's facility id.
    pub facility: &'a str,
    /// This node's current epoch secret.
    pub secret: &'a MaskingSecret,
    /// The verified cohort.
    pub cohort: &'a Cohort,
    /// The query.
    pub query_id: QueryId,
    /// Shamir threshold t.
    pub threshold: usize,
    /// The node's cohort minimum (raised to [`MIN_COHORT_FLOOR`]).
    pub min_cohort: usize,
}

impl NodeRound1<'_> {
    /// Checks the cohort and threshold without masking anything.
    pub fn check(&self) -> Result<(), ProtocolError> {
        let size = self.cohort.len();
        let min = self.min_cohort.max(MIN_COHORT_FLOOR);
        if size < min {
            return Err(ProtocolError::CohortTooSmall { size, min });
        }
        check_member(self.facility, self.secret, self.cohort)?;
        let lowest = min_threshold(size);
        if self.threshold < lowest || self.threshold > size {
            return Err(ProtocolError::Threshold {
                threshold: self.threshold,
                min: lowest,
                max: size,
            });
        }
        Ok(())
    }

    /// Masks `lanes` and seals the seed's shares. `rng` draws the seed and the Shamir
    /// coefficients (the OS CSPRNG in production).
    pub fn mask(
        &self,
        lanes: &[u32],
        rng: &mut impl UniformSource,
    ) -> Result<Round1Output, ProtocolError> {
        self.check()?;
        let shared = agreements(self.secret, self.cohort)?;
        let mut masked = lanes.to_vec();
        let mut seed = FieldElement::random(rng);
        apply_mask(
            &mut masked,
            &self_mask_key(seed, &self.query_id),
            Sign::Plus,
        );
        for (member, s) in self.cohort.members().iter().zip(&shared) {
            if member.facility != self.facility {
                let key = pairwise_key(s, &self.query_id, self.cohort.hash());
                apply_mask(
                    &mut masked,
                    &key,
                    Sign::between(self.facility, &member.facility),
                );
            }
        }
        let mut shares = shamir::split(seed, self.threshold, self.cohort.len(), rng)?;
        seed.zeroize();
        let sealed = self
            .cohort
            .members()
            .iter()
            .zip(&shared)
            .zip(&shares)
            .map(|((member, s), share)| {
                share_box::seal(s, &self.query_id, self.facility, &member.facility, share.y)
                    .map(|ciphertext| OutgoingShare {
                        to: member.facility.clone(),
                        ciphertext,
                    })
                    .map_err(ProtocolError::Seal)
            })
            .collect::<Result<Vec<_>, _>>();
        shares.zeroize();
        Ok(Round1Output {
            masked,
            shares: sealed?,
            record: Round1Record {
                query_id: self.query_id,
                threshold: self.threshold,
                cohort: self.cohort.clone(),
            },
        })
    }
}

/// A survivor's share of member `of`'s seed (at this node's x-coordinate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedShare {
    /// Whose seed.
    pub of: String,
    /// The share.
    pub share: FieldElement,
}

/// This node's per-query pairwise key with a dropped member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedKey {
    /// The dropped member.
    pub dropped: String,
    /// k_id for this query.
    pub key: MaskKey,
}

/// A node's round-2 answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Round2Answer {
    /// One share per survivor, in cohort order.
    pub seed_shares: Vec<SeedShare>,
    /// One key per dropped member, in cohort order.
    pub dropped_keys: Vec<DroppedKey>,
}

/// A node's round 2.
#[derive(Debug)]
pub struct NodeRound2<'a> {
    /// This node's facility id.
    pub facility: &'a str,
    /// This node's current epoch secret.
    pub secret: &'a MaskingSecret,
    /// What round 1 recorded.
    pub record: &'a Round1Record,
    /// The node's cohort minimum (raised to [`MIN_COHORT_FLOOR`]).
    pub min_cohort: usize,
    /// A: members whose round-1 answer the gateway has.
    pub survivors: &'a [String],
    /// D: members that failed round 1.
    pub dropped: &'a [String],
    /// The round-1 shares other members (and this node) sealed for this node.
    pub shares: &'a [IncomingShare],
}

impl NodeRound2<'_> {
    /// Checks A and D against the round-1 cohort: disjoint, covering it, this node in A, and
    /// |A| ≥ max(t, minimum).
    pub fn check(&self) -> Result<(), ProtocolError> {
        let cohort = &self.record.cohort;
        check_member(self.facility, self.secret, cohort)?;
        let mut listed = BTreeSet::new();
        for f in self.survivors.iter().chain(self.dropped) {
            if cohort.position(f).is_none() {
                return Err(ProtocolError::UnknownMember(f.clone()));
            }
            if !listed.insert(f.as_str()) {
                return Err(if self.survivors.contains(f) && self.dropped.contains(f) {
                    ProtocolError::SurvivorAndDropped(f.clone())
                } else {
                    ProtocolError::ListedTwice(f.clone())
                });
            }
        }
        if let Some(m) = cohort
            .members()
            .iter()
            .find(|m| !listed.contains(m.facility.as_str()))
        {
            return Err(ProtocolError::Unaccounted(m.facility.clone()));
        }
        let survivors: BTreeSet<&str> = self.survivors.iter().map(String::as_str).collect();
        if !survivors.contains(self.facility) {
            return Err(ProtocolError::NotASurvivor);
        }
        let need = self
            .record
            .threshold
            .max(self.min_cohort.max(MIN_COHORT_FLOOR));
        if survivors.len() < need {
            return Err(ProtocolError::TooFewSurvivors {
                survivors: survivors.len(),
                need,
            });
        }
        Ok(())
    }

    /// The answer: seed shares for survivors, pairwise keys for the dropped.
    pub fn answer(&self) -> Result<Round2Answer, ProtocolError> {
        self.check()?;
        let cohort = &self.record.cohort;
        let query_id = &self.record.query_id;
        let mut sealed: BTreeMap<&str, &[u8]> = BTreeMap::new();
        for share in self.shares {
            if cohort.position(&share.from).is_none() {
                return Err(ProtocolError::UnknownMember(share.from.clone()));
            }
            if self.dropped.contains(&share.from) {
                return Err(ProtocolError::ShareFromDropped(share.from.clone()));
            }
            if sealed
                .insert(&share.from, share.ciphertext.as_slice())
                .is_some()
            {
                return Err(ProtocolError::DuplicateShare(share.from.clone()));
            }
        }
        let mut answer = Round2Answer::default();
        for (member, s) in cohort
            .members()
            .iter()
            .zip(agreements(self.secret, cohort)?)
        {
            if self.dropped.contains(&member.facility) {
                answer.dropped_keys.push(DroppedKey {
                    dropped: member.facility.clone(),
                    key: pairwise_key(&s, query_id, cohort.hash()),
                });
                continue;
            }
            let ciphertext = sealed
                .get(member.facility.as_str())
                .ok_or_else(|| ProtocolError::MissingShare(member.facility.clone()))?;
            let share = share_box::open(&s, query_id, &member.facility, self.facility, ciphertext)
                .map_err(|error| ProtocolError::BadShare {
                    from: member.facility.clone(),
                    error,
                })?;
            answer.seed_shares.push(SeedShare {
                of: member.facility.clone(),
                share,
            });
        }
        Ok(answer)
    }
}

/// Why the gateway cannot open a sum. It never returns a wrong one instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnmaskError {
    /// The threshold is outside ⌊2|S|/3⌋+1 ..= |S|.
    #[error("threshold {threshold} is outside {min}..={max} for this cohort")]
    Threshold {
        /// t.
        threshold: usize,
        /// ⌊2|S|/3⌋ + 1.
        min: usize,
        /// |S|.
        max: usize,
    },
    /// A vector or answer from a facility outside the cohort.
    #[error("{0:?} is not in the cohort")]
    UnknownMember(String),
    /// A masked vector of the wrong length.
    #[error("{facility:?} sent {lanes} lanes; the query has {expected}")]
    WrongLength {
        /// Sender.
        facility: String,
        /// Lanes sent.
        lanes: usize,
        /// Lanes of the query.
        expected: usize,
    },
    /// Fewer round-1 answers than the threshold.
    #[error("{survivors} members answered round 1; the threshold is {threshold}")]
    TooFewSurvivors {
        /// |A|.
        survivors: usize,
        /// t.
        threshold: usize,
    },
    /// A round-2 answer from a member whose round-1 vector is not in the sum.
    #[error("a round-2 answer from {0:?}, which is not a survivor")]
    AnswerFromNonSurvivor(String),
    /// A seed share of a dropped member (a node must never send one).
    #[error("{holder:?} sent a seed share of {member:?}, which is dropped")]
    SeedShareOfDropped {
        /// Sender.
        holder: String,
        /// The dropped member.
        member: String,
    },
    /// A pairwise key with a survivor (a node must never send one).
    #[error("{holder:?} sent its pairwise key with {member:?}, which is a survivor")]
    DroppedKeyOfSurvivor {
        /// Sender.
        holder: String,
        /// The survivor.
        member: String,
    },
    /// Too few shares of a survivor's seed arrived in round 2.
    #[error(
        "{have} shares of {member:?}'s seed arrived; {need} are needed to remove its self mask"
    )]
    MissingSeedShares {
        /// Whose seed.
        member: String,
        /// Shares that arrived.
        have: usize,
        /// t.
        need: usize,
    },
    /// A survivor's key with a dropped member did not arrive.
    #[error(
        "no round-2 key from {holder:?} for dropped {dropped:?}: its masked vector cannot be opened; run the query again under a new query id"
    )]
    MissingDroppedKey {
        /// The survivor that did not send it.
        holder: String,
        /// The dropped member.
        dropped: String,
    },
    /// A seed could not be reconstructed.
    #[error("{member:?}'s seed: {error}")]
    Shamir {
        /// Whose seed.
        member: String,
        /// What failed.
        error: ShamirError,
    },
}

/// The gateway's last step: the survivors' sum from their masked vectors and round-2 answers.
#[derive(Debug)]
pub struct GatewayUnmask<'a> {
    /// The cohort of round 1.
    pub cohort: &'a Cohort,
    /// The query.
    pub query_id: QueryId,
    /// Shamir threshold t.
    pub threshold: usize,
    /// Lanes of the query.
    pub lanes: usize,
}

impl GatewayUnmask<'_> {
    /// Σ_{i∈A} x_i (mod 2^32) from the round-1 vectors of A (`masked`, by facility) and the
    /// round-2 answers (`answers`, by facility). D is the rest of the cohort.
    pub fn sum(
        &self,
        masked: &BTreeMap<String, Vec<u32>>,
        answers: &BTreeMap<String, Round2Answer>,
    ) -> Result<Vec<u32>, UnmaskError> {
        let size = self.cohort.len();
        let lowest = min_threshold(size);
        if self.threshold < lowest || self.threshold > size {
            return Err(UnmaskError::Threshold {
                threshold: self.threshold,
                min: lowest,
                max: size,
            });
        }
        for (facility, y) in masked {
            if self.cohort.position(facility).is_none() {
                return Err(UnmaskError::UnknownMember(facility.clone()));
            }
            if y.len() != self.lanes {
                return Err(UnmaskError::WrongLength {
                    facility: facility.clone(),
                    lanes: y.len(),
                    expected: self.lanes,
                });
            }
        }
        if masked.len() < self.threshold {
            return Err(UnmaskError::TooFewSurvivors {
                survivors: masked.len(),
                threshold: self.threshold,
            });
        }
        let dropped: Vec<&str> = self
            .cohort
            .members()
            .iter()
            .map(|m| m.facility.as_str())
            .filter(|f| !masked.contains_key(*f))
            .collect();
        // Every survivor's seed shares, at the holders' x-coordinates.
        let mut shares: BTreeMap<&str, Vec<Share>> = BTreeMap::new();
        for (holder, answer) in answers {
            let x = match (masked.contains_key(holder), self.cohort.x_of(holder)) {
                (true, Some(x)) => x,
                _ => return Err(UnmaskError::AnswerFromNonSurvivor(holder.clone())),
            };
            for s in &answer.seed_shares {
                if !masked.contains_key(&s.of) {
                    return Err(UnmaskError::SeedShareOfDropped {
                        holder: holder.clone(),
                        member: s.of.clone(),
                    });
                }
                shares
                    .entry(&s.of)
                    .or_default()
                    .push(Share { x, y: s.share });
            }
            if let Some(k) = answer
                .dropped_keys
                .iter()
                .find(|k| !dropped.contains(&k.dropped.as_str()))
            {
                return Err(UnmaskError::DroppedKeyOfSurvivor {
                    holder: holder.clone(),
                    member: k.dropped.clone(),
                });
            }
        }
        let mut sum = vec![0u32; self.lanes];
        for y in masked.values() {
            for (acc, lane) in sum.iter_mut().zip(y) {
                *acc = acc.wrapping_add(*lane);
            }
        }
        // Seeds usually come from the same t holders, so Lagrange coefficients are reused.
        let mut coefficients: BTreeMap<Vec<u32>, Vec<FieldElement>> = BTreeMap::new();
        for member in masked.keys() {
            let of_member = shares.get(member.as_str()).map_or(&[][..], Vec::as_slice);
            if of_member.len() < self.threshold {
                return Err(UnmaskError::MissingSeedShares {
                    member: member.clone(),
                    have: of_member.len(),
                    need: self.threshold,
                });
            }
            let used = &of_member[..self.threshold];
            let xs: Vec<u32> = used.iter().map(|s| s.x).collect();
            let lambda = match coefficients.entry(xs) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let lambda =
                        shamir::lagrange_at_zero(e.key()).map_err(|error| UnmaskError::Shamir {
                            member: member.clone(),
                            error,
                        })?;
                    e.insert(lambda)
                }
            };
            let seed = shamir::combine(used, lambda);
            apply_mask(&mut sum, &self_mask_key(seed, &self.query_id), Sign::Minus);
        }
        if !dropped.is_empty() {
            for holder in masked.keys() {
                for d in &dropped {
                    let key = answers
                        .get(holder)
                        .and_then(|a| a.dropped_keys.iter().find(|k| k.dropped == *d))
                        .ok_or_else(|| UnmaskError::MissingDroppedKey {
                            holder: holder.clone(),
                            dropped: d.to_string(),
                        })?;
                    apply_mask(&mut sum, &key.key, Sign::between(holder, d).opposite());
                }
            }
        }
        Ok(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secagg::SeededSource;
    use crate::secagg::masking_key::{Epoch, VerifiedMaskingKey};

    struct Node {
        facility: String,
        secret: MaskingSecret,
    }

    fn network(n: usize) -> (Vec<Node>, Cohort) {
        let nodes: Vec<Node> = (0..n)
            .map(|i| Node {
                facility: format!("f{i:02}"),
                secret: MaskingSecret::generate(Epoch::from_u32(1)).unwrap(),
            })
            .collect();
        let cohort = Cohort::new(nodes.iter().map(|node| {
            VerifiedMaskingKey::assumed(
                "net",
                node.secret.epoch(),
                &node.facility,
                node.secret.public_key(),
            )
        }))
        .unwrap();
        (nodes, cohort)
    }

    fn round1<'a>(node: &'a Node, cohort: &'a Cohort, t: usize) -> NodeRound1<'a> {
        NodeRound1 {
            facility: &node.facility,
            secret: &node.secret,
            cohort,
            query_id: QueryId([7; 16]),
            threshold: t,
            min_cohort: 3,
        }
    }

    #[test]
    fn round_one_refuses_bad_cohorts_and_thresholds() {
        let (nodes, cohort) = network(4);
        let mut rng = SeededSource::new(11);
        let ok = round1(&nodes[0], &cohort, 3);
        assert!(ok.mask(&[1, 2], &mut rng).is_ok());
        assert_eq!(
            round1(&nodes[0], &cohort, 2).check(),
            Err(ProtocolError::Threshold {
                threshold: 2,
                min: 3,
                max: 4
            })
        );
        assert_eq!(
            round1(&nodes[0], &cohort, 5).check(),
            Err(ProtocolError::Threshold {
                threshold: 5,
                min: 3,
                max: 4
            })
        );
        let strict = NodeRound1 {
            min_cohort: 5,
            ..round1(&nodes[0], &cohort, 3)
        };
        assert_eq!(
            strict.check(),
            Err(ProtocolError::CohortTooSmall { size: 4, min: 5 })
        );
        // The configured minimum never goes below the floor.
        let (small_nodes, small) = network(2);
        let lax = NodeRound1 {
            min_cohort: 1,
            ..round1(&small_nodes[0], &small, 2)
        };
        assert_eq!(
            lax.check(),
            Err(ProtocolError::CohortTooSmall { size: 2, min: 3 })
        );
        // A restarted node (new secret) sees its old key in the cohort.
        let restarted = Node {
            facility: nodes[1].facility.clone(),
            secret: MaskingSecret::generate(Epoch::from_u32(1)).unwrap(),
        };
        assert_eq!(
            round1(&restarted, &cohort, 3).check(),
            Err(ProtocolError::StaleMaskingKey("f01".into()))
        );
        let outsider = Node {
            facility: "zz".into(),
            secret: MaskingSecret::generate(Epoch::from_u32(1)).unwrap(),
        };
        assert_eq!(
            round1(&outsider, &cohort, 3).check(),
            Err(ProtocolError::NotInCohort("zz".into()))
        );
    }

    #[test]
    fn round_two_checks_survivors_and_dropped() {
        let (nodes, cohort) = network(4);
        let mut rng = SeededSource::new(12);
        let out = round1(&nodes[0], &cohort, 3).mask(&[5], &mut rng).unwrap();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let check = |a: &[&str], d: &[&str]| {
            let (a, d) = (ids(a), ids(d));
            NodeRound2 {
                facility: "f00",
                secret: &nodes[0].secret,
                record: &out.record,
                min_cohort: 3,
                survivors: &a,
                dropped: &d,
                shares: &[],
            }
            .check()
        };
        assert_eq!(check(&["f00", "f01", "f02", "f03"], &[]), Ok(()));
        assert_eq!(check(&["f00", "f01", "f02"], &["f03"]), Ok(()));
        assert_eq!(
            check(&["f00", "f01", "f02", "f03"], &["f03"]),
            Err(ProtocolError::SurvivorAndDropped("f03".into()))
        );
        assert_eq!(
            check(&["f00", "f01", "f02"], &[]),
            Err(ProtocolError::Unaccounted("f03".into()))
        );
        assert_eq!(
            check(&["f01", "f02", "f03"], &["f00"]),
            Err(ProtocolError::NotASurvivor)
        );
        assert_eq!(
            check(&["f00", "f01"], &["f02", "f03"]),
            Err(ProtocolError::TooFewSurvivors {
                survivors: 2,
                need: 3
            })
        );
        assert_eq!(
            check(&["f00", "f00", "f01", "f02"], &["f03"]),
            Err(ProtocolError::ListedTwice("f00".into()))
        );
        assert_eq!(
            check(&["f00", "f01", "f02"], &["f03", "f03"]),
            Err(ProtocolError::ListedTwice("f03".into()))
        );
        assert_eq!(
            check(&["f00", "f01", "f02", "f09"], &["f03"]),
            Err(ProtocolError::UnknownMember("f09".into()))
        );
    }
}
