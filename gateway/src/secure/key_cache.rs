//! The members' masking keys, fetched once per epoch and checked against the network CA.
//!
//! The gateway only relays keys — every member checks every key itself — but it checks them too
//! before it builds a cohort, so that one member with a broken key is left out of the cohort
//! (with a coverage row saying why) instead of making every other member refuse the round. A
//! key is kept for its epoch (a calendar month); the cache empties when the month changes, and
//! a member's entry is dropped when a node says the key is stale (it restarted) or untrusted, so
//! the next round fetches it again.
//!
//! It also remembers which members hold which cohort: a member that answered a round 1 carrying
//! a cohort's keys has checked and kept them, so later rounds name that cohort by its hash
//! (`MaskedRoundOnKnownCohort`) instead of sending it the n keys and certificates again.

use super::node_call::{CallFailure, SecureReply, SecureRequest, call_each};
use crate::client::registry::Facility;
use psonet_core::pb::{self, CoverageStatus};
use psonet_core::secagg::masking_key::{Epoch, MaskingKeyError, MaskingKeyVerifier};
use psonet_core::wire::masking_key_from_wire;
use rustls::pki_types::UnixTime;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Cohorts (by hash) a member is remembered to hold, at most.
const HELD_PER_MEMBER: usize = 16;

struct Cached {
    epoch: Epoch,
    keys: HashMap<String, pb::SignedMaskingKey>,
    /// Per facility, the hashes of the cohorts it answered a round 1 with the keys of.
    held: HashMap<String, HashSet<[u8; 32]>>,
}

/// Verified masking keys of the current epoch, by facility.
pub struct KeyCache {
    verifier: MaskingKeyVerifier,
    cached: Mutex<Cached>,
}

impl KeyCache {
    /// A cache that checks keys with `verifier` (the network CA and name).
    pub fn new(verifier: MaskingKeyVerifier) -> Self {
        Self {
            verifier,
            cached: Mutex::new(Cached {
                epoch: Epoch::current(),
                keys: HashMap::new(),
                held: HashMap::new(),
            }),
        }
    }

    /// The current keys of `facilities` (same order): from the cache, or fetched from the
    /// nodes now (all at once, by `until`) and checked.
    pub async fn keys(
        &self,
        facilities: &[&Facility],
        until: Instant,
    ) -> Vec<Result<pb::SignedMaskingKey, CallFailure>> {
        let epoch = Epoch::current();
        let mut out: Vec<Option<Result<pb::SignedMaskingKey, CallFailure>>> = {
            let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
            if cached.epoch != epoch {
                cached.epoch = epoch;
                cached.keys.clear();
                cached.held.clear();
            }
            facilities
                .iter()
                .map(|f| cached.keys.get(&f.id).cloned().map(Ok))
                .collect()
        };
        let missing: Vec<&Facility> = facilities
            .iter()
            .zip(&out)
            .filter(|(_, k)| k.is_none())
            .map(|(f, _)| *f)
            .collect();
        if !missing.is_empty() {
            let request = SecureRequest::MaskingKey(pb::GetMaskingKeyRequest {
                epoch: epoch.value(),
            });
            let fetched =
                call_each(&missing, vec![request; missing.len()], until, "masking_key").await;
            let mut fetched = missing.iter().zip(fetched);
            for slot in out.iter_mut().filter(|k| k.is_none()) {
                let Some((facility, called)) = fetched.next() else {
                    break;
                };
                let checked = called
                    .result
                    .and_then(|reply| self.check(facility, epoch, reply));
                if let Ok(key) = &checked {
                    self.cached
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .keys
                        .insert(facility.id.clone(), key.clone());
                }
                *slot = Some(checked);
            }
        }
        out.into_iter()
            .map(|k| {
                k.unwrap_or_else(|| {
                    Err(CallFailure {
                        status: CoverageStatus::Error,
                        detail: "no masking key".into(),
                        reason: None,
                        about: None,
                    })
                })
            })
            .collect()
    }

    /// A fetched key, if it is the facility's, for this epoch, and verifies.
    fn check(
        &self,
        facility: &Facility,
        epoch: Epoch,
        reply: SecureReply,
    ) -> Result<pb::SignedMaskingKey, CallFailure> {
        let refused = |why: String| CallFailure {
            status: CoverageStatus::Error,
            detail: format!("its masking key is refused: {why}"),
            reason: None,
            about: None,
        };
        let SecureReply::MaskingKey(response) = reply else {
            return Err(refused("the node answered another call".into()));
        };
        let wire = response
            .key
            .ok_or_else(|| refused("the node sent no key".into()))?;
        let key = masking_key_from_wire(&wire, "key").map_err(|v| refused(v.to_string()))?;
        if key.facility != facility.id {
            return Err(refused(format!(
                "it is a key of {:?}, not of {:?}",
                key.facility, facility.id
            )));
        }
        if key.epoch != epoch {
            return Err(refused(format!(
                "it is for {}, the current epoch is {epoch}",
                key.epoch
            )));
        }
        self.verifier
            .verify(&key, UnixTime::now())
            .map_err(|e: MaskingKeyError| refused(e.to_string()))?;
        Ok(wire)
    }

    /// Forgets `facility`'s key, so the next round fetches it again, and the cohorts it held.
    pub fn forget(&self, facility: &str) {
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        cached.keys.remove(facility);
        cached.held.remove(facility);
    }

    /// Whether `facility` is remembered to hold the cohort of `hash`.
    pub fn holds(&self, facility: &str, hash: &[u8; 32]) -> bool {
        self.cached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .held
            .get(facility)
            .is_some_and(|held| held.contains(hash))
    }

    /// Remembers that `facility` holds (`true`) or does not hold the cohort of `hash`.
    pub fn set_held(&self, facility: &str, hash: &[u8; 32], holds: bool) {
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        let held = cached.held.entry(facility.to_string()).or_default();
        if !holds {
            held.remove(hash);
            return;
        }
        if held.len() >= HELD_PER_MEMBER {
            held.clear();
        }
        held.insert(*hash);
    }
}
