//! Masks: per-query keys derived from epoch secrets, and the ChaCha20 stream that hides a vector.
//!
//! A node's masked vector is y = x + PRG(self key) + Σ_j sign(i, j)·PRG(k_ij) mod 2^32, lane by
//! lane. The pairwise terms cancel in the cohort's sum because i adds what j subtracts; the
//! self term is removed by the gateway only after t members hand over shares of its seed.
//! Everything here is derived, never stored: keys come from HKDF-SHA256 over the epoch's X25519
//! secret with the query id as salt, so revealing one query's key says nothing about another's
//! or about the epoch secret. The stream is the raw ChaCha20 keystream (RFC 8439, nonce 0) read
//! as little-endian u32 lanes, which is fixed by the RFC; a `rand` generator's stream is stable
//! only by library policy.

use super::field::FieldElement;
use super::masking_key::PairSecret;
use super::put_prefixed;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use ring::{digest, hmac};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Domain-separation label of pairwise mask keys.
const MASK_INFO: &[u8] = b"psonet/secagg/v1/mask";
/// Domain-separation label of self-mask keys.
const SELF_INFO: &[u8] = b"psonet/secagg/v1/self";
/// Domain-separation label of the cohort hash.
const COHORT_LABEL: &[u8] = b"psonet/secagg/v1/cohort";

/// A query's identity: 16 random bytes the gateway draws, and the salt of every key the query
/// derives. A node answers each query id at most once.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueryId(pub [u8; 16]);

impl QueryId {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueryId({self})")
    }
}

impl fmt::Display for QueryId {
    /// Lower-case hex, as in audit records.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// SHA-256 of a cohort's members and keys in order: it binds every pairwise key to the exact
/// cohort, so keys of one cohort are useless in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CohortHash(pub [u8; 32]);

/// The cohort hash of `members` (facility id, X25519 public key), in cohort order.
pub fn cohort_hash<'a>(members: impl IntoIterator<Item = (&'a str, &'a [u8; 32])>) -> CohortHash {
    let mut bytes = Vec::new();
    put_prefixed(&mut bytes, COHORT_LABEL);
    for (facility, public_key) in members {
        put_prefixed(&mut bytes, facility.as_bytes());
        bytes.extend_from_slice(public_key);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, &bytes).as_ref());
    CohortHash(out)
}

/// A 256-bit ChaCha20 key for one mask stream, zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MaskKey([u8; 32]);

impl MaskKey {
    /// A key received on the wire (a dropped member's pairwise key, at the gateway).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key bytes, to send a dropped member's key to the gateway.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MaskKey(..)")
    }
}

/// HKDF-SHA256 (RFC 5869) with a 32-byte output: extract PRK = HMAC(salt, ikm), then the
/// first output block T(1) = HMAC(PRK, info ‖ 0x01). One block is exactly HKDF's first 32
/// bytes, and HMAC cannot fail, so no error path exists for callers to handle.
pub(crate) fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> [u8; 32] {
    let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, salt), ikm);
    let mut context = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()));
    for part in info {
        context.update(part);
    }
    context.update(&[1]);
    let mut out = [0u8; 32];
    out.copy_from_slice(context.sign().as_ref());
    out
}

/// k_ij,q = HKDF(ikm = s_ij, salt = query id, info = label ‖ cohort hash): the key of the mask
/// members i and j share for one query. i and j derive the same key from the same X25519 secret.
pub fn pairwise_key(shared: &PairSecret, query_id: &QueryId, cohort: &CohortHash) -> MaskKey {
    MaskKey(hkdf_sha256(
        shared.as_bytes(),
        query_id.as_bytes(),
        &[MASK_INFO, &cohort.0],
    ))
}

/// The key of a node's self mask, from its per-query seed b (16 little-endian bytes).
pub fn self_mask_key(seed: FieldElement, query_id: &QueryId) -> MaskKey {
    let mut ikm = seed.to_bytes();
    let key = hkdf_sha256(&ikm, query_id.as_bytes(), &[SELF_INFO]);
    ikm.zeroize();
    MaskKey(key)
}

/// Whether a pairwise mask is added or subtracted: member i adds PRG(k_ij) when its facility id
/// sorts before j's, and subtracts it otherwise, so the pair's terms cancel in the sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// Added.
    Plus,
    /// Subtracted.
    Minus,
}

impl Sign {
    /// The sign member `me` gives the mask it shares with `peer`.
    pub fn between(me: &str, peer: &str) -> Self {
        if me < peer { Sign::Plus } else { Sign::Minus }
    }

    /// The other sign: what removes a mask added with `self`.
    pub fn opposite(self) -> Self {
        match self {
            Sign::Plus => Sign::Minus,
            Sign::Minus => Sign::Plus,
        }
    }
}

/// Bytes of keystream made per step: large enough to amortise the cipher's setup, small
/// enough to stay in the L1 cache.
const CHUNK: usize = 4096;

/// Adds (or subtracts) the keystream of `key`, read as little-endian u32 lanes, into `lanes`,
/// wrapping mod 2^32.
pub fn apply_mask(lanes: &mut [u32], key: &MaskKey, sign: Sign) {
    let mut cipher = ChaCha20::new(&key.0.into(), &[0u8; 12].into());
    let mut buffer = [0u8; CHUNK];
    for block in lanes.chunks_mut(CHUNK / 4) {
        let bytes = &mut buffer[..block.len() * 4];
        bytes.fill(0);
        cipher.apply_keystream(bytes);
        for (lane, word) in block.iter_mut().zip(bytes.chunks_exact(4)) {
            let m = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            *lane = match sign {
                Sign::Plus => lane.wrapping_add(m),
                Sign::Minus => lane.wrapping_sub(m),
            };
        }
    }
    buffer.zeroize();
}

/// The first `lanes` lanes of `key`'s stream, PRG(key).
pub fn keystream(key: &MaskKey, lanes: usize) -> Vec<u32> {
    let mut out = vec![0u32; lanes];
    apply_mask(&mut out, key, Sign::Plus);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secagg::masking_key::{Epoch, MaskingSecret};

    #[test]
    fn the_stream_is_rfc_8439_chacha20_with_a_zero_nonce() {
        // RFC 8439 A.1, test vector #1: all-zero key and nonce, block counter 0.
        let lanes = keystream(&MaskKey([0; 32]), 4);
        assert_eq!(lanes, [0xade0_b876, 0x903d_f1a0, 0xe56a_5d40, 0x28bd_8653]);
        // Chunks join seamlessly: lane 1030 is the same whether made alone or in a long run.
        let long = keystream(&MaskKey([7; 32]), 3000);
        assert_eq!(long[..1030], keystream(&MaskKey([7; 32]), 1030)[..]);
    }

    #[test]
    fn a_mask_and_its_opposite_cancel() {
        let key = MaskKey([9; 32]);
        let x: Vec<u32> = (0..2500).collect();
        let mut y = x.clone();
        apply_mask(&mut y, &key, Sign::between("a", "b"));
        assert_ne!(x, y);
        apply_mask(&mut y, &key, Sign::between("b", "a"));
        assert_eq!(x, y);
        assert_eq!(Sign::Plus.opposite(), Sign::Minus);
    }

    #[test]
    fn hkdf_is_rfc_5869() {
        // RFC 5869 test case 1; our one-block output is the first 32 bytes of its OKM.
        let ikm = [0x0b; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf_sha256(&ikm, &salt, &[&info[..4], &info[4..]]);
        let expected = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf";
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn keys_depend_on_the_query_and_the_cohort() {
        let a = MaskingSecret::generate(Epoch::from_u32(1)).unwrap();
        let b = MaskingSecret::generate(Epoch::from_u32(1)).unwrap();
        let ab = a.agree(&b.public_key()).unwrap();
        let ba = b.agree(&a.public_key()).unwrap();
        let h1 = cohort_hash([("a", &[1; 32]), ("b", &[2; 32])]);
        let h2 = cohort_hash([("a", &[1; 32]), ("c", &[2; 32])]);
        let (q1, q2) = (QueryId([1; 16]), QueryId([2; 16]));
        assert_eq!(pairwise_key(&ab, &q1, &h1), pairwise_key(&ba, &q1, &h1));
        assert_ne!(pairwise_key(&ab, &q1, &h1), pairwise_key(&ab, &q2, &h1));
        assert_ne!(pairwise_key(&ab, &q1, &h1), pairwise_key(&ab, &q1, &h2));
        assert_ne!(
            self_mask_key(FieldElement::ONE, &q1),
            self_mask_key(FieldElement::ONE, &q2)
        );
        assert_eq!(q1.to_string(), "01".repeat(16));
    }
}
