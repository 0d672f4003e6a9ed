//! Epoch masking keys: a node's X25519 key for a calendar month, signed with its certificate key.
//!
//! Pairwise masks come from X25519 agreements between members, so every member must be sure the
//! public key it agrees with is really its peer's: a gateway that could substitute keys would
//! share every mask itself. A node therefore signs its masking key with the private key of its
//! node certificate (P-256 ECDSA, ring), and every peer checks three things before using a key:
//! the certificate chains to the network CA for server authentication at the current time
//! (rustls-webpki), it names exactly one URI — `spiffe://<network>/facility/<id>` of the facility
//! the key claims — and the signature verifies with the certificate's key.
//!
//! A key lives for one epoch (a calendar month, UTC) and only in memory: a restart makes a new
//! one, and the old secret is zeroized when it is replaced (x25519-dalek zeroizes on drop). The
//! X25519 agreement with each peer is computed once per epoch and kept with the secret
//! (privacy.md §2.2 step 1), so a query costs no key agreement — only HKDF and ChaCha20.

use crate::month::Month;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, SignatureVerificationAlgorithm};
use rustls_pki_types::{TrustAnchor, UnixTime};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use webpki::{EndEntityCert, KeyUsage};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Domain-separation label of the signed message.
const SIGNED_LABEL: &[u8] = b"psonet/secagg/v1/masking-key";

/// Signature algorithms a certificate chain may use (the masking-key signature itself is always
/// ECDSA P-256 with SHA-256).
static CHAIN_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// A masking-key epoch: a calendar month (UTC) numbered `year·12 + month − 1`, the same number
/// as [`Month::index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(u32);

impl Epoch {
    /// The epoch of `month`.
    pub fn of(month: Month) -> Self {
        Self(month.index())
    }

    /// The epoch of the current month (UTC).
    pub fn current() -> Self {
        Self::of(Month::current())
    }

    /// The epoch numbered `value` (as carried on the wire).
    pub fn from_u32(value: u32) -> Self {
        Self(value)
    }

    /// `year·12 + month − 1`.
    pub fn value(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Epoch {
    /// `YYYY-MM`, or the raw number when it is no accepted month.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Month::from_index(self.0) {
            Some(m) => write!(f, "{m}"),
            None => write!(f, "epoch {}", self.0),
        }
    }
}

/// Why a masking key cannot be made, signed or trusted. Each variant names what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskingKeyError {
    /// The operating system's random source failed.
    #[error("the system random source failed")]
    Random,
    /// The node's private key is not one ring can sign P-256 ECDSA with.
    #[error("the node key is not a P-256 PKCS#8 private key: {0}")]
    SigningKey(String),
    /// The node's certificate could not be read.
    #[error("the node certificate is unreadable: {0}")]
    SignerCertificate(String),
    /// The node's private key belongs to another certificate.
    #[error("the node key does not belong to the node certificate")]
    KeyDoesNotMatchCertificate,
    /// The node certificate does not name one facility.
    #[error("the node certificate does not name a facility: {0}")]
    NotAFacility(String),
    /// ECDSA signing failed.
    #[error("signing the masking key failed")]
    Sign,
    /// A CA certificate cannot anchor a chain.
    #[error("a CA certificate is not a usable trust anchor: {0}")]
    TrustAnchor(webpki::Error),
    /// The key is for another network.
    #[error("the masking key is for network {found:?}, this is network {expected:?}")]
    WrongNetwork {
        /// This network.
        expected: String,
        /// The key's network.
        found: String,
    },
    /// The certificate is not parseable X.509.
    #[error("the masking key's certificate is not a valid X.509 certificate: {0}")]
    BadCertificate(String),
    /// Chain building failed: another CA, expired, not yet valid, or not for server auth.
    #[error(
        "the masking key's certificate is not a node certificate of the network CA valid now: {0}"
    )]
    Untrusted(webpki::Error),
    /// The certificate names no URI.
    #[error("the masking key's certificate has no URI subject alternative name")]
    NoUriSan,
    /// The certificate names several URIs, so it does not identify one facility.
    #[error(
        "the masking key's certificate has {0} URI subject alternative names; exactly one is allowed"
    )]
    SeveralUriSans(usize),
    /// The certificate is some other principal's.
    #[error("the masking key claims {expected} but its certificate is {found}")]
    WrongIdentity {
        /// The URI the key's network and facility make.
        expected: String,
        /// The certificate's URI.
        found: String,
    },
    /// The signature does not verify with the certificate's key.
    #[error("the masking key's signature does not verify with its certificate's key")]
    BadSignature,
}

/// A peer's public key that yields a predictable X25519 secret (a low-order point): masks
/// derived from it would be known to anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the masking key is a low-order point; agreement with it would be public")]
pub struct WeakPublicKey;

/// s_ij = X25519(sk_i, pk_j): the secret two members share for an epoch, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PairSecret([u8; 32]);

impl PairSecret {
    /// The secret bytes, as key-derivation input.
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PairSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairSecret(..)")
    }
}

/// Agreements kept per epoch before the cache is emptied (keys of restarted peers pile up):
/// twice the largest cohort.
const MAX_AGREEMENTS: usize = 2 * super::MAX_COHORT;

/// A node's masking secret for one epoch: in memory only, zeroized on drop, with its
/// agreements with peers' keys.
pub struct MaskingSecret {
    epoch: Epoch,
    secret: StaticSecret,
    public: PublicKey,
    agreements: Mutex<HashMap<[u8; 32], PairSecret>>,
}

impl MaskingSecret {
    /// A fresh secret for `epoch` from the operating system's CSPRNG.
    pub fn generate(epoch: Epoch) -> Result<Self, MaskingKeyError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| MaskingKeyError::Random)?;
        let secret = StaticSecret::from(bytes);
        bytes.zeroize();
        let public = PublicKey::from(&secret);
        Ok(Self {
            epoch,
            secret,
            public,
            agreements: Mutex::new(HashMap::new()),
        })
    }

    /// The epoch it is for.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The X25519 public key peers agree with.
    pub fn public_key(&self) -> [u8; 32] {
        self.public.to_bytes()
    }

    /// s_ij = X25519(own secret, `peer`): the secret this node shares with the owner of `peer`,
    /// computed on first use in the epoch. A node agreeing with its own public key gets a
    /// secret only it knows (used to seal a share to itself).
    pub fn agree(&self, peer: &[u8; 32]) -> Result<PairSecret, WeakPublicKey> {
        let mut cache = self
            .agreements
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = cache.get(peer) {
            return Ok(known.clone());
        }
        let shared = self.secret.diffie_hellman(&PublicKey::from(*peer));
        if !shared.was_contributory() {
            return Err(WeakPublicKey);
        }
        let secret = PairSecret(shared.to_bytes());
        if cache.len() >= MAX_AGREEMENTS {
            cache.clear();
        }
        cache.insert(*peer, secret.clone());
        Ok(secret)
    }
}

impl fmt::Debug for MaskingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskingSecret")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// A masking key as published: what the gateway relays and every peer verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMaskingKey {
    /// Network name (SPIFFE trust domain).
    pub network: String,
    /// Epoch of the key.
    pub epoch: Epoch,
    /// Facility id of the node.
    pub facility: String,
    /// X25519 public key.
    pub public_key: [u8; 32],
    /// ECDSA P-256 SHA-256 signature (ASN.1 DER) over [`signed_message`].
    pub signature: Vec<u8>,
    /// The node certificate (DER) whose key signed.
    pub certificate: Vec<u8>,
}

/// The bytes a node signs: label ‖ len-prefixed network ‖ epoch (u32 BE) ‖ len-prefixed
/// facility ‖ public key.
pub fn signed_message(
    network: &str,
    epoch: Epoch,
    facility: &str,
    public_key: &[u8; 32],
) -> Vec<u8> {
    let mut out = SIGNED_LABEL.to_vec();
    super::put_prefixed(&mut out, network.as_bytes());
    out.extend_from_slice(&epoch.0.to_be_bytes());
    super::put_prefixed(&mut out, facility.as_bytes());
    out.extend_from_slice(public_key);
    out
}

/// `spiffe://<network>/facility/<facility>`: the only URI a facility's node certificate holds.
pub fn facility_uri(network: &str, facility: &str) -> String {
    format!("spiffe://{network}/facility/{facility}")
}

/// The network and facility of a facility URI (the inverse of [`facility_uri`]).
fn facility_of(uri: &str) -> Option<(&str, &str)> {
    let (network, facility) = uri.strip_prefix("spiffe://")?.split_once("/facility/")?;
    let plain = |s: &str| !s.is_empty() && !s.contains('/');
    (plain(network) && plain(facility)).then_some((network, facility))
}

/// The one URI SAN of a certificate. (URIs that are not UTF-8 cannot name a facility and are
/// not counted.)
fn only_uri(cert: &EndEntityCert<'_>) -> Result<String, MaskingKeyError> {
    let uris: Vec<&str> = cert.valid_uri_names().collect();
    match uris.as_slice() {
        [] => Err(MaskingKeyError::NoUriSan),
        [uri] => Ok(uri.to_string()),
        several => Err(MaskingKeyError::SeveralUriSans(several.len())),
    }
}

/// Signs masking keys with the node certificate's private key.
pub struct MaskingKeySigner {
    key: EcdsaKeyPair,
    certificate: Vec<u8>,
    network: String,
    facility: String,
    rng: SystemRandom,
}

impl MaskingKeySigner {
    /// A signer from the node certificate (DER) and its P-256 private key (PKCS#8 DER). The
    /// certificate must name exactly one facility and hold the key's public half.
    pub fn new(certificate: Vec<u8>, pkcs8: &[u8]) -> Result<Self, MaskingKeyError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng)
            .map_err(|e| MaskingKeyError::SigningKey(e.to_string()))?;
        let der = CertificateDer::from(certificate.as_slice());
        let cert = EndEntityCert::try_from(&der)
            .map_err(|e| MaskingKeyError::SignerCertificate(e.to_string()))?;
        // The key belongs to the certificate exactly when the certificate's key verifies what
        // it signs.
        let probe = b"psonet/secagg/v1/key-probe";
        let signature = key.sign(&rng, probe).map_err(|_| MaskingKeyError::Sign)?;
        cert.verify_signature(webpki::ring::ECDSA_P256_SHA256, probe, signature.as_ref())
            .map_err(|_| MaskingKeyError::KeyDoesNotMatchCertificate)?;
        let uri = only_uri(&cert)?;
        let (network, facility) =
            facility_of(&uri).ok_or_else(|| MaskingKeyError::NotAFacility(uri.clone()))?;
        Ok(Self {
            key,
            certificate,
            network: network.to_string(),
            facility: facility.to_string(),
            rng,
        })
    }

    /// A signer from PEM files' contents: the first certificate of `cert_pem` and the PKCS#8
    /// key of `key_pem` (what `psonet pki` writes).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, MaskingKeyError> {
        let certificate = CertificateDer::pem_slice_iter(cert_pem)
            .next()
            .ok_or_else(|| MaskingKeyError::SignerCertificate("no certificate in the PEM".into()))?
            .map_err(|e| MaskingKeyError::SignerCertificate(e.to_string()))?;
        let key = match PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| MaskingKeyError::SigningKey(e.to_string()))?
        {
            PrivateKeyDer::Pkcs8(key) => key,
            _ => {
                return Err(MaskingKeyError::SigningKey(
                    "the PEM key is not PKCS#8 (\"BEGIN PRIVATE KEY\")".into(),
                ));
            }
        };
        Self::new(certificate.to_vec(), key.secret_pkcs8_der())
    }

    /// The facility the certificate names.
    pub fn facility(&self) -> &str {
        &self.facility
    }

    /// The network the certificate is of.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// `secret`'s public key, signed for publication.
    pub fn sign(&self, secret: &MaskingSecret) -> Result<SignedMaskingKey, MaskingKeyError> {
        let public_key = secret.public_key();
        let message = signed_message(&self.network, secret.epoch, &self.facility, &public_key);
        let signature = self
            .key
            .sign(&self.rng, &message)
            .map_err(|_| MaskingKeyError::Sign)?;
        Ok(SignedMaskingKey {
            network: self.network.clone(),
            epoch: secret.epoch,
            facility: self.facility.clone(),
            public_key,
            signature: signature.as_ref().to_vec(),
            certificate: self.certificate.clone(),
        })
    }
}

/// A masking key whose certificate, identity and signature were checked: the only kind a
/// cohort is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMaskingKey {
    network: String,
    epoch: Epoch,
    facility: String,
    public_key: [u8; 32],
}

impl VerifiedMaskingKey {
    /// Network.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Facility id.
    pub fn facility(&self) -> &str {
        &self.facility
    }

    /// X25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// A key taken as verified, for unit tests of the protocol arithmetic only.
    #[cfg(test)]
    pub(crate) fn assumed(network: &str, epoch: Epoch, facility: &str, key: [u8; 32]) -> Self {
        Self {
            network: network.into(),
            epoch,
            facility: facility.into(),
            public_key: key,
        }
    }
}

/// Checks masking keys against the network CA.
#[derive(Debug, Clone)]
pub struct MaskingKeyVerifier {
    network: String,
    anchors: Vec<TrustAnchor<'static>>,
}

impl MaskingKeyVerifier {
    /// A verifier for `network` trusting the CA certificates `ca` (DER).
    pub fn new(network: &str, ca: &[CertificateDer<'_>]) -> Result<Self, MaskingKeyError> {
        let anchors = ca
            .iter()
            .map(|der| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|a| a.to_owned())
                    .map_err(MaskingKeyError::TrustAnchor)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            network: network.to_string(),
            anchors,
        })
    }

    /// A verifier for `network` trusting every certificate in `ca_pem`.
    pub fn from_pem(network: &str, ca_pem: &[u8]) -> Result<Self, MaskingKeyError> {
        let ca = CertificateDer::pem_slice_iter(ca_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| MaskingKeyError::BadCertificate(e.to_string()))?;
        Self::new(network, &ca)
    }

    /// Checks `key` at time `now`: network, chain, identity, signature — in that order, and
    /// says which failed.
    pub fn verify(
        &self,
        key: &SignedMaskingKey,
        now: UnixTime,
    ) -> Result<VerifiedMaskingKey, MaskingKeyError> {
        if key.network != self.network {
            return Err(MaskingKeyError::WrongNetwork {
                expected: self.network.clone(),
                found: key.network.clone(),
            });
        }
        let der = CertificateDer::from(key.certificate.as_slice());
        let cert = EndEntityCert::try_from(&der)
            .map_err(|e| MaskingKeyError::BadCertificate(e.to_string()))?;
        cert.verify_for_usage(
            CHAIN_ALGORITHMS,
            &self.anchors,
            &[],
            now,
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(MaskingKeyError::Untrusted)?;
        let expected = facility_uri(&key.network, &key.facility);
        let found = only_uri(&cert)?;
        if found != expected {
            return Err(MaskingKeyError::WrongIdentity { expected, found });
        }
        let message = signed_message(&key.network, key.epoch, &key.facility, &key.public_key);
        cert.verify_signature(webpki::ring::ECDSA_P256_SHA256, &message, &key.signature)
            .map_err(|_| MaskingKeyError::BadSignature)?;
        Ok(VerifiedMaskingKey {
            network: key.network.clone(),
            epoch: key.epoch,
            facility: key.facility.clone(),
            public_key: key.public_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_calendar_months() {
        let m: Month = "2026-12".parse().unwrap();
        let e = Epoch::of(m);
        assert_eq!(e.value(), 2026 * 12 + 11);
        assert_eq!(e.to_string(), "2026-12");
        assert!(Epoch::of(m.next()) > e);
    }

    #[test]
    fn facility_uris_round_trip() {
        let uri = facility_uri("midwest-pso", "st-mary");
        assert_eq!(uri, "spiffe://midwest-pso/facility/st-mary");
        assert_eq!(facility_of(&uri), Some(("midwest-pso", "st-mary")));
        assert_eq!(facility_of("spiffe://midwest-pso/gateway"), None);
        assert_eq!(facility_of("spiffe://a/facility/b/c"), None);
    }

    #[test]
    fn the_signed_message_is_unambiguous() {
        let k = [7u8; 32];
        let a = signed_message("ab", Epoch(1), "c", &k);
        let b = signed_message("a", Epoch(1), "bc", &k);
        assert_ne!(a, b);
        assert!(a.starts_with(SIGNED_LABEL));
        assert_eq!(a.len(), SIGNED_LABEL.len() + 4 + 2 + 4 + 4 + 1 + 32);
    }

    #[test]
    fn agreement_is_symmetric_and_low_order_keys_are_refused() {
        let a = MaskingSecret::generate(Epoch(1)).unwrap();
        let b = MaskingSecret::generate(Epoch(1)).unwrap();
        assert_eq!(
            a.agree(&b.public_key()).unwrap().as_bytes(),
            b.agree(&a.public_key()).unwrap().as_bytes()
        );
        // The second agreement comes from the epoch's cache and is the same secret.
        assert_eq!(
            a.agree(&b.public_key()).unwrap().as_bytes(),
            b.agree(&a.public_key()).unwrap().as_bytes()
        );
        assert_eq!(a.agree(&[0; 32]).err(), Some(WeakPublicKey));
        assert!(!format!("{a:?}").contains("secret:"));
    }
}
