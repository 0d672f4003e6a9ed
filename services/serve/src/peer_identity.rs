//! Is the peer the one we meant to reach? The check every psonet connection makes of the other
//! side, whichever side dialled.
//!
//! TLS proves that a peer holds a certificate from the network's CA and that the certificate
//! names the host dialled. That is not enough: host names are shared (loopback, a load
//! balancer, a certificate issued with too many names), so a node listening at an address the
//! registry gives for facility 5 could be facility 1's, and the gateway would count facility 1
//! twice. What a peer *is* in the network is its principal, the one URI SAN of its certificate
//! (see [`crate::identity`]), and [`verify_peer`] checks that principal against the one the
//! caller expected: the gateway expects `spiffe://<network>/facility/<id>` of the registry
//! entry it is calling, a node expects `spiffe://<network>/gateway`.
//!
//! Call it once per connection, right after the handshake, with the peer's verified chain
//! (`rustls::CommonState::peer_certificates`): a connection that fails it is closed before any
//! request goes over it.

use crate::identity::{IdentityError, Principal};
use rustls::pki_types::CertificateDer;

/// Why a peer is not the one expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIdentityError {
    /// The peer presented no certificate (only possible where certificates are optional).
    #[error("presented no certificate, where {expected} was expected")]
    NoCertificate {
        /// The principal we meant to reach.
        expected: Principal,
    },
    /// The certificate names no principal (no URI SAN, two of them, an unknown shape).
    #[error(
        "presented a certificate that names no psonet identity ({reason}), where {expected} was expected"
    )]
    NoIdentity {
        /// The principal we meant to reach.
        expected: Principal,
        /// Why the certificate names no one.
        reason: IdentityError,
    },
    /// The certificate is someone else's.
    #[error("presented the certificate of {presented}, where {expected} was expected")]
    Mismatch {
        /// Who the certificate names.
        presented: Principal,
        /// The principal we meant to reach.
        expected: Principal,
    },
}

impl PeerIdentityError {
    /// The principal the peer's certificate names, when it names one.
    pub fn presented(&self) -> Option<&Principal> {
        match self {
            PeerIdentityError::Mismatch { presented, .. } => Some(presented),
            _ => None,
        }
    }
}

/// Checks that the leaf of the peer's verified chain `certificates` names exactly `expected`,
/// and returns it. The chain must already be verified by TLS (this reads, it does not verify
/// signatures).
pub fn verify_peer(
    certificates: Option<&[CertificateDer<'_>]>,
    expected: &Principal,
) -> Result<Principal, PeerIdentityError> {
    let leaf =
        certificates
            .and_then(<[_]>::first)
            .ok_or_else(|| PeerIdentityError::NoCertificate {
                expected: expected.clone(),
            })?;
    let presented =
        Principal::from_certificate_der(leaf).map_err(|reason| PeerIdentityError::NoIdentity {
            expected: expected.clone(),
            reason,
        })?;
    if &presented == expected {
        Ok(presented)
    } else {
        Err(PeerIdentityError::Mismatch {
            presented,
            expected: expected.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(uris: &[&str]) -> CertificateDer<'static> {
        CertificateDer::from(crate::identity::test_certificate(uris))
    }

    #[test]
    fn only_the_expected_principal_passes() {
        let expected = Principal::facility("net", "facility-5");
        let own = [certificate(&["spiffe://net/facility/facility-5"])];
        assert_eq!(verify_peer(Some(&own), &expected).unwrap(), expected);

        let other = [certificate(&["spiffe://net/facility/facility-1"])];
        let err = verify_peer(Some(&other), &expected).unwrap_err();
        assert_eq!(
            err.presented(),
            Some(&Principal::facility("net", "facility-1"))
        );
        assert_eq!(
            err.to_string(),
            "presented the certificate of spiffe://net/facility/facility-1, where \
             spiffe://net/facility/facility-5 was expected"
        );
        let other_network = [certificate(&["spiffe://elsewhere/facility/facility-5"])];
        assert!(verify_peer(Some(&other_network), &expected).is_err());

        let two = [certificate(&[
            "spiffe://net/facility/facility-5",
            "spiffe://net/facility/facility-1",
        ])];
        let err = verify_peer(Some(&two), &expected).unwrap_err().to_string();
        assert!(err.contains("exactly one"), "{err}");
        assert!(matches!(
            verify_peer(None, &expected),
            Err(PeerIdentityError::NoCertificate { .. })
        ));
        assert!(matches!(
            verify_peer(Some(&[]), &expected),
            Err(PeerIdentityError::NoCertificate { .. })
        ));
    }
}
