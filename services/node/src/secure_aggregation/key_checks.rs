//! Checking the cohort's masking keys against the network CA, with the verdicts remembered.
//!
//! Every round 1 carries every member's signed key, and checking one costs a certificate-chain
//! walk and two ECDSA verifications — about as much CPU as masking a year of counts. Members'
//! keys change once a month (or on a restart), so a verdict is kept for a while under the SHA-256
//! of everything that was checked (network, epoch, facility, key, signature, certificate). It is
//! checked again after [`VERDICT_LIFETIME`], so a certificate that expires is noticed, and the
//! cache is emptied when it holds [`MAX_VERDICTS`] keys.

use psonet_core::secagg::MAX_COHORT;
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

/// The verifier and its remembered verdicts.
pub struct KeyChecks {
    verifier: MaskingKeyVerifier,
    verdicts: Mutex<HashMap<[u8; 32], (VerifiedMaskingKey, Instant)>>,
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
