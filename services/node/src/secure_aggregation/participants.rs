//! The participant sets this node's figures went into, per data month, kept in sled (tree
//! [`PARTICIPANTS_TREE`]), and the differencing rule checked against them (privacy.md §4.3).
//!
//! Two sums over sets that differ by one facility give away that facility's figures; more
//! generally, any facility whose unit vector lies in the span of the sets' incidence vectors can
//! be solved for ([`ParticipantSets`]). The history is kept **per data month**, for every query
//! that touches it, rather than per query shape: every figure of a month is a linear function of
//! the same per-facility counts (a total is a sum of finer cells, a filtered query a subset of
//! them), so a gateway could otherwise difference a by-category sum over S against a
//! by-category-and-harm sum over S ∖ {k}. The price is that a cohort one member away from one
//! already answered for a month is refused for every query touching that month — a dropout of
//! a facility that took part before makes the month's figures unavailable rather than
//! revealing.
//!
//! A set is stored when the node answers round 2 with it as the survivors (only then does a
//! sum exist), and only when it adds rank (a set in the span of the stored ones reveals nothing
//! new). Bound: at most [`MAX_SETS_PER_MONTH`] sets per month, the oldest dropped beyond it — a
//! network that always asks its whole registry or a handful of peer groups stores one set per
//! cohort shape, far below the bound; a gateway that tried many shapes to push old sets out would
//! have to get each of them admitted first, and each admitted set is itself checked against the
//! 63 kept. Months are bounded by the data the node holds (120 months per query range at most).
//!
//! Each round 1 and round 2 checks every month of its query, so the histories are kept decoded
//! in memory as well (this type is the tree's only writer: it updates both under its lock), each
//! with a digest, and the rule's verdict on a (history, set) pair is remembered: the rule is a
//! pure function of the two, and a network that asks the same cohort again would otherwise
//! decode and solve the same months in every round.

use prost::Message;
use psonet_core::month::Month;
use psonet_core::secagg::differencing::{Admission, DifferencingError, ParticipantSets};
use ring::digest::{Context, SHA256};
use sled::Tree;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// Name of the sled tree of participant sets.
pub const PARTICIPANTS_TREE: &str = "secagg_participants";
/// Sets kept per month; the oldest is dropped beyond it.
pub const MAX_SETS_PER_MONTH: usize = 64;

/// One month's history, as stored.
#[derive(Clone, PartialEq, Message)]
struct MonthHistory {
    /// The sets, oldest first.
    #[prost(message, repeated, tag = "1")]
    sets: Vec<StoredSet>,
}

/// One participant set, as stored.
#[derive(Clone, PartialEq, Message)]
struct StoredSet {
    /// Facility ids, sorted.
    #[prost(string, repeated, tag = "1")]
    facilities: Vec<String>,
}

/// Why a set cannot be checked or admitted.
#[derive(Debug, thiserror::Error)]
pub enum ParticipantsError {
    /// The sums would isolate a facility.
    #[error("{month}: {error}")]
    Differencing {
        /// The month whose history refuses it.
        month: Month,
        /// Which facility would be isolated, or why the test cannot run.
        error: DifferencingError,
    },
    /// sled failed.
    #[error("the participant-set history failed: {0}")]
    Sled(#[from] sled::Error),
    /// A stored history does not decode.
    #[error("a stored participant-set history is corrupt: {0}")]
    Corrupt(#[from] prost::DecodeError),
}

/// A month, its stored sets, and whether a new set adds to them.
type Verdict = (Month, Arc<History>, Admission);

/// One month's sets, decoded, with the digest of their stored form.
#[derive(Debug)]
struct History {
    sets: Vec<BTreeSet<String>>,
    digest: [u8; 32],
}

impl History {
    fn of(sets: Vec<BTreeSet<String>>) -> Self {
        let mut ctx = Context::new(&SHA256);
        for set in &sets {
            ctx.update(&(set.len() as u64).to_be_bytes());
            for facility in set {
                ctx.update(&(facility.len() as u64).to_be_bytes());
                ctx.update(facility.as_bytes());
            }
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(ctx.finish().as_ref());
        Self { sets, digest }
    }
}

/// The digest of one set, as [`History::of`] hashes a set.
fn set_digest(set: &BTreeSet<String>) -> [u8; 32] {
    History::of(vec![set.clone()]).digest
}

/// A verdict's key: the digests of a month's history and of the set checked against it.
type VerdictKey = ([u8; 32], [u8; 32]);

/// Verdicts remembered at most; the memo is emptied beyond it.
const MAX_VERDICTS: usize = 4096;

/// The participant-set history of this node.
pub struct Participants {
    tree: Tree,
    /// Round 2 checks and stores under it, so two concurrent rounds cannot both pass a check
    /// that only one of them would pass after the other's set is stored.
    admitting: Mutex<()>,
    /// Months' histories as decoded from `tree` (and updated with it).
    loaded: Mutex<HashMap<Month, Arc<History>>>,
    /// The rule's verdicts, by (history digest, set digest).
    verdicts: Mutex<HashMap<VerdictKey, Admission>>,
}

impl Participants {
    /// The history in `tree`.
    pub fn new(tree: Tree) -> Self {
        Self {
            tree,
            admitting: Mutex::new(()),
            loaded: Mutex::new(HashMap::new()),
            verdicts: Mutex::new(HashMap::new()),
        }
    }

    fn load_history(&self, month: Month) -> Result<Arc<History>, ParticipantsError> {
        if let Some(h) = self
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&month)
        {
            return Ok(h.clone());
        }
        let sets = match self.tree.get(month.index().to_be_bytes())? {
            Some(bytes) => MonthHistory::decode(bytes.as_ref())?
                .sets
                .into_iter()
                .map(|s| s.facilities.into_iter().collect())
                .collect(),
            None => Vec::new(),
        };
        // A round 2 may have stored a newer history meanwhile: it wins (it inserts after writing
        // the tree, so what it inserted is never older than what was read here).
        Ok(self
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(month)
            .or_insert_with(|| Arc::new(History::of(sets)))
            .clone())
    }

    #[cfg(test)]
    fn load(&self, month: Month) -> Result<Vec<BTreeSet<String>>, ParticipantsError> {
        Ok(self.load_history(month)?.sets.clone())
    }

    /// Checks `set` against the history of every month in `months`; months with the same
    /// history are checked once.
    pub fn check(&self, months: &[Month], set: &BTreeSet<String>) -> Result<(), ParticipantsError> {
        self.check_all(months, set).map(|_| ())
    }

    /// The check, with each month's history and verdict.
    fn check_all(
        &self,
        months: &[Month],
        set: &BTreeSet<String>,
    ) -> Result<Vec<Verdict>, ParticipantsError> {
        let of_set = set_digest(set);
        let mut out = Vec::with_capacity(months.len());
        for month in months {
            let history = self.load_history(*month)?;
            let key = (history.digest, of_set);
            let known = self
                .verdicts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .copied();
            let admission = match known {
                Some(a) => a,
                None => {
                    let a = ParticipantSets::from_sets(history.sets.clone())
                        .check(set)
                        .map_err(|error| ParticipantsError::Differencing {
                            month: *month,
                            error,
                        })?;
                    let mut verdicts = self.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
                    if verdicts.len() >= MAX_VERDICTS {
                        verdicts.clear();
                    }
                    verdicts.insert(key, a);
                    a
                }
            };
            out.push((*month, history, admission));
        }
        Ok(out)
    }

    /// Checks `set` for every month of `months`, runs `answer` (which must not make anything
    /// public unless it succeeds), and stores `set` where it adds information — all under one
    /// lock, so concurrent rounds are checked one after the other.
    pub fn admit<T, E>(
        &self,
        months: &[Month],
        set: &BTreeSet<String>,
        answer: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<T, E>, ParticipantsError> {
        let _one_at_a_time = self
            .admitting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let verdicts = self.check_all(months, set)?;
        let answered = answer();
        if answered.is_ok() {
            for (month, history, admission) in verdicts {
                if admission == Admission::AlreadySpanned {
                    continue;
                }
                let mut history = history.sets.clone();
                history.push(set.clone());
                if history.len() > MAX_SETS_PER_MONTH {
                    history.remove(0);
                }
                let stored = MonthHistory {
                    sets: history
                        .iter()
                        .map(|s| StoredSet {
                            facilities: s.iter().cloned().collect(),
                        })
                        .collect(),
                };
                // The memory follows the tree: forgotten first, so that a failed write leaves
                // the month to be read from the tree again.
                self.loaded
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&month);
                self.tree
                    .insert(month.index().to_be_bytes(), stored.encode_to_vec())?;
                self.loaded
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(month, Arc::new(History::of(history)));
            }
        }
        Ok(answered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(members: &str) -> BTreeSet<String> {
        members.split_whitespace().map(String::from).collect()
    }

    fn month(m: &str) -> Month {
        m.parse().unwrap()
    }

    #[test]
    fn a_set_one_member_away_is_refused_for_the_months_it_shares() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let p = Participants::new(db.open_tree(PARTICIPANTS_TREE).unwrap());
        let (jan, feb, mar) = (month("2026-01"), month("2026-02"), month("2026-03"));
        let all = set("a b c d e me");
        p.admit(&[jan, feb], &all, || Ok::<_, ()>(()))
            .unwrap()
            .unwrap();
        // The same set again: nothing new, accepted.
        p.check(&[jan, feb], &all).unwrap();
        // One member fewer, on a month already summed: refused, naming the month and member.
        let err = p.check(&[feb, mar], &set("a b c d me")).unwrap_err();
        assert!(
            matches!(&err, ParticipantsError::Differencing { month, error: DifferencingError::Isolates(f) } if *month == feb && f == "e"),
            "{err}"
        );
        // On a month never summed: accepted.
        p.check(&[mar], &set("a b c d me")).unwrap();
        // A failed answer stores nothing.
        p.admit(&[mar], &set("a b c d me"), || Err::<(), _>("refused"))
            .unwrap()
            .unwrap_err();
        p.check(&[mar], &set("a b c d e f me")).unwrap();
    }

    #[test]
    fn the_history_keeps_at_most_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let p = Participants::new(db.open_tree(PARTICIPANTS_TREE).unwrap());
        let jan = month("2026-01");
        // Disjoint five-member sets each add rank.
        for i in 0..MAX_SETS_PER_MONTH + 3 {
            let s: BTreeSet<String> = (0..5).map(|j| format!("f{i}-{j}")).collect();
            p.admit(&[jan], &s, || Ok::<_, ()>(())).unwrap().unwrap();
        }
        assert_eq!(p.load(jan).unwrap().len(), MAX_SETS_PER_MONTH);
        assert!(p.load(jan).unwrap()[0].contains("f3-0"));
    }
}
