//! A Shamir share sealed from one member to another, relayed by the gateway.
//!
//! Shares of a node's self-mask seed travel through the gateway, which must not read them (with
//! t of them it would remove the self mask of a member it claims dropped) nor alter them
//! unnoticed. Each share is sealed with ChaCha20-Poly1305 (ring) under a key only the two
//! members can derive: HKDF(ikm = s_ij, salt = query id, info = label ‖ from ‖ to). The key is
//! new for every query and direction and seals exactly one share, so the zero nonce is never
//! reused; the associated data binds the query id and both member ids.

use super::field::{FieldElement, NotAFieldElement};
use super::mask::{QueryId, hkdf_sha256};
use super::masking_key::PairSecret;
use super::put_prefixed;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroize;

/// Domain-separation label of share-box keys.
const SHARE_INFO: &[u8] = b"psonet/secagg/v1/share";

/// Bytes of a sealed share: 16 of share and 16 of tag.
pub const SEALED_LEN: usize = 16 + 16;

/// Why a share cannot be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareBoxError {
    /// The AEAD refused to seal (it does so only for impossible lengths).
    #[error("the share could not be sealed")]
    Seal,
    /// The ciphertext is not one sealed share.
    #[error("a sealed share is {SEALED_LEN} bytes, this one is {0}")]
    Length(usize),
    /// Authentication failed: altered, sealed for another member or query, or by someone else.
    #[error(
        "the sealed share does not authenticate (altered, or not sealed from this member to this one for this query)"
    )]
    Forged,
    /// It authenticated but holds no field element: the sender itself is faulty.
    #[error("the sealed share holds no field element")]
    NotAFieldElement(#[from] NotAFieldElement),
}

/// The direction-bound AEAD key and associated data of a share from `from` to `to`.
fn key_and_aad(
    shared: &PairSecret,
    query_id: &QueryId,
    from: &str,
    to: &str,
) -> Result<(LessSafeKey, Vec<u8>), ShareBoxError> {
    let mut names = Vec::new();
    put_prefixed(&mut names, from.as_bytes());
    put_prefixed(&mut names, to.as_bytes());
    let mut key = hkdf_sha256(
        shared.as_bytes(),
        query_id.as_bytes(),
        &[SHARE_INFO, &names],
    );
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key);
    key.zeroize();
    let unbound = unbound.map_err(|_| ShareBoxError::Seal)?;
    let mut aad = query_id.as_bytes().to_vec();
    aad.extend_from_slice(&names);
    Ok((LessSafeKey::new(unbound), aad))
}

/// Seals `share` from member `from` to member `to` for one query.
pub fn seal(
    shared: &PairSecret,
    query_id: &QueryId,
    from: &str,
    to: &str,
    share: FieldElement,
) -> Result<Vec<u8>, ShareBoxError> {
    let (key, aad) = key_and_aad(shared, query_id, from, to)?;
    let mut buffer = share.to_bytes().to_vec();
    buffer.reserve(CHACHA20_POLY1305.tag_len());
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key([0; 12]),
        Aad::from(&aad),
        &mut buffer,
    )
    .map_err(|_| ShareBoxError::Seal)?;
    Ok(buffer)
}

/// Opens a share `from` sealed to `to` for one query.
pub fn open(
    shared: &PairSecret,
    query_id: &QueryId,
    from: &str,
    to: &str,
    ciphertext: &[u8],
) -> Result<FieldElement, ShareBoxError> {
    if ciphertext.len() != SEALED_LEN {
        return Err(ShareBoxError::Length(ciphertext.len()));
    }
    let (key, aad) = key_and_aad(shared, query_id, from, to)?;
    let mut buffer = ciphertext.to_vec();
    let opened = key
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(&aad),
            &mut buffer,
        )
        .map_err(|_| ShareBoxError::Forged)?;
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(opened);
    buffer.zeroize();
    let share = FieldElement::from_bytes(bytes);
    bytes.zeroize();
    Ok(share?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secagg::masking_key::{Epoch, MaskingSecret};

    /// s_ab as a sees it, as b sees it, and s_cb.
    fn pair() -> (PairSecret, PairSecret, PairSecret) {
        let [a, b, c] = [(); 3].map(|_| MaskingSecret::generate(Epoch::from_u32(1)).unwrap());
        (
            a.agree(&b.public_key()).unwrap(),
            b.agree(&a.public_key()).unwrap(),
            c.agree(&b.public_key()).unwrap(),
        )
    }

    #[test]
    fn only_the_addressee_of_this_query_opens_a_share() {
        let (ab, ba, cb) = pair();
        let q = QueryId([5; 16]);
        let share = FieldElement::from_u64(123_456_789);
        let sealed = seal(&ab, &q, "a", "b", share).unwrap();
        assert_eq!(sealed.len(), SEALED_LEN);
        assert_eq!(open(&ba, &q, "a", "b", &sealed), Ok(share));
        // Another query, the other direction, another sender's secret, a flipped bit: refused.
        assert_eq!(
            open(&ba, &QueryId([6; 16]), "a", "b", &sealed),
            Err(ShareBoxError::Forged)
        );
        assert_eq!(open(&ba, &q, "b", "a", &sealed), Err(ShareBoxError::Forged));
        assert_eq!(open(&cb, &q, "a", "b", &sealed), Err(ShareBoxError::Forged));
        let mut flipped = sealed.clone();
        flipped[3] ^= 1;
        assert_eq!(
            open(&ba, &q, "a", "b", &flipped),
            Err(ShareBoxError::Forged)
        );
        assert_eq!(
            open(&ba, &q, "a", "b", &sealed[..20]),
            Err(ShareBoxError::Length(20))
        );
    }

    #[test]
    fn ids_are_length_prefixed_so_they_cannot_be_re_split() {
        let (ab, ba, _) = pair();
        let q = QueryId([5; 16]);
        let sealed = seal(&ab, &q, "ab", "c", FieldElement::ONE).unwrap();
        assert_eq!(
            open(&ba, &q, "a", "bc", &sealed),
            Err(ShareBoxError::Forged)
        );
    }
}
