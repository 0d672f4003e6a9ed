//! Checking the cohort's masking keys against the network CA, with the verdicts remembered.
//!
//! Every round 1 carries every member's signed key, and checking one costs a certificate-chain
//! walk and two ECDSA verifications — about as much CPU as masking a year of counts. Members'
//! keys change once a month (or on a restart), so a verdict is kept for a while under the SHA-256
//! of everything that was checked (network, epoch, facility, key, signature, certificate). It is
//! checked again after [`VERDICT_LIFETIME`], so a certificate that expires is noticed, and the
//! cache is emptied when it holds [`MAX_VERDICTS`] keys.
//!
//! The cohorts built from checked keys are kept too, by cohort hash, so that a round 1 may name
//! a cohort this node already checked instead of carrying its n keys and certificates again
//! (`MaskedRoundRequest.cohort_hash`): the n² bytes a round would otherwise move and the n
//! fingerprints it would hash. A kept cohort's keys are checked again, all of them, when its
//! verdict is older than [`VERDICT_LIFETIME`]; at most [`MAX_COHORTS`] are kept, the oldest
//! forgotten first.

use psonet_core::secagg::MAX_COHORT;
use psonet_core::secagg::cohort::Cohort;
use psonet_core::secagg::masking_key::{
    MaskingKeyError, MaskingKeyVerifier, SignedMaskingKey, VerifiedMaskingKey, signed_message,
};
use ring::digest::{Context, SHA256};
use rustls_pki_types::UnixTime;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a key's verdict is trusted before the key is checked again.
pub const VERDICT_LIFETIME: Duration = Duration::from_secs(600);
/// Verdicts kept at most: twice the largest cohort, for restarted members' old keys.
pub const MAX_VERDICTS: usize = 2 * MAX_COHORT;
/// Checked cohorts kept at most (the whole network and its peer groups, old and new keys).
pub const MAX_COHORTS: usize = 32;

/// A cohort built from checked keys, with the keys, to check them again.
struct KnownCohort {
    cohort: Cohort,
    keys: Vec<SignedMaskingKey>,
    checked: Instant,
}

/// The verifier and its remembered verdicts.
pub struct KeyChecks {
    verifier: MaskingKeyVerifier,
    verdicts: Mutex<HashMap<[u8; 32], (VerifiedMaskingKey, Instant)>>,
    cohorts: Mutex<HashMap<[u8; 32], KnownCohort>>,
}

fn fingerprint(key: &SignedMaskingKey) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    let message = signed_message(&key.network, key.epoch, &key.facility, &key.public_key);
    for part in [&message, &key.signature, &key.certificate] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl KeyChecks {
    /// Checks with `verifier` (the network CA and name).
    pub fn new(verifier: MaskingKeyVerifier) -> Self {
        Self {
            verifier,
            verdicts: Mutex::new(HashMap::new()),
            cohorts: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps `cohort`, built from `keys` just checked, under its hash.
    pub fn remember(&self, cohort: &Cohort, keys: Vec<SignedMaskingKey>) {
        let mut cohorts = self.cohorts.lock().unwrap_or_else(PoisonError::into_inner);
        if cohorts.len() >= MAX_COHORTS && !cohorts.contains_key(&cohort.hash().0) {
            let oldest = cohorts
                .iter()
                .min_by_key(|(_, known)| known.checked)
                .map(|(hash, _)| *hash);
            if let Some(oldest) = oldest {
                cohorts.remove(&oldest);
            }
        }
        cohorts.insert(
            cohort.hash().0,
            KnownCohort {
                cohort: cohort.clone(),
                keys,
                checked: Instant::now(),
            },
        );
    }

    /// The cohort kept under `hash`, if any; its keys are checked again first when its verdict
    /// is older than [`VERDICT_LIFETIME`] (Err: the facility whose key no longer verifies, and
    /// why; the cohort is forgotten).
    pub fn known(&self, hash: &[u8; 32]) -> Option<Result<Cohort, (String, MaskingKeyError)>> {
        let stale_keys = {
            let cohorts = self.cohorts.lock().unwrap_or_else(PoisonError::into_inner);
            let known = cohorts.get(hash)?;
            if known.checked.elapsed() < VERDICT_LIFETIME {
                return Some(Ok(known.cohort.clone()));
            }
            known.keys.clone()
        };
        let checked = stale_keys.iter().try_for_each(|k| {
            self.verify(k)
                .map(|_| ())
                .map_err(|e| (k.facility.clone(), e))
        });
        let mut cohorts = self.cohorts.lock().unwrap_or_else(PoisonError::into_inner);
        match checked {
            Ok(()) => {
                let known = cohorts.get_mut(hash)?;
                known.checked = Instant::now();
                Some(Ok(known.cohort.clone()))
            }
            Err(why) => {
                cohorts.remove(hash);
                Some(Err(why))
            }
        }
    }

    /// `key`, verified now or recently.
    pub fn verify(&self, key: &SignedMaskingKey) -> Result<VerifiedMaskingKey, MaskingKeyError> {
        let id = fingerprint(key);
        let fresh = |(verified, at): &(VerifiedMaskingKey, Instant)| {
            (at.elapsed() < VERDICT_LIFETIME).then(|| verified.clone())
        };
        if let Some(known) = self
            .verdicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .and_then(fresh)
        {
            return Ok(known);
        }
        let verified = self.verifier.verify(key, UnixTime::now())?;
        let mut verdicts = self.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
        if verdicts.len() >= MAX_VERDICTS {
            verdicts.clear();
        }
        verdicts.insert(id, (verified.clone(), Instant::now()));
        Ok(verified)
    }
}
