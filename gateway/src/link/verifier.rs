//! Who may link: a node whose certificate chains to the network CA *and* names a facility of
//! this gateway's registry — the same peer identity check every connection makes
//! ([`psonet_serve::peer_identity::verify_peer`]), against the registry entry the certificate
//! claims. Checked inside the TLS handshake, so an unknown facility is refused before it can
//! carry a single HTTP/2 frame; the node reads the refusal as an `access_denied` alert, and the
//! link listener's security log puts it on record (reason `not_admitted`, with the principal).

use psonet_serve::identity::{Principal, Role};
use psonet_serve::peer_identity::verify_peer;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use std::collections::HashSet;
use std::sync::Arc;

/// A client certificate verifier that admits the CA's certificates of registered facilities
/// only.
#[derive(Debug)]
pub struct RegisteredFacilities {
    ca: Arc<dyn ClientCertVerifier>,
    network: String,
    facilities: HashSet<String>,
}

impl RegisteredFacilities {
    /// Wraps the CA check `ca`; admits facilities `facilities` of `network`.
    pub fn new(
        ca: Arc<dyn ClientCertVerifier>,
        network: &str,
        facilities: impl IntoIterator<Item = String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            ca,
            network: network.to_string(),
            facilities: facilities.into_iter().collect(),
        })
    }

    /// The registry entry a certificate claims, if there is one: the principal it must name.
    fn expected(&self, leaf: &CertificateDer<'_>) -> Result<Principal, String> {
        let claimed = Principal::from_certificate_der(leaf).map_err(|e| e.to_string())?;
        match &claimed.role {
            Role::Facility(id) if self.facilities.contains(id) => {
                Ok(Principal::facility(&self.network, id))
            }
            Role::Facility(id) => Err(format!(
                "{claimed}: facility {id} is not in this gateway's registry"
            )),
            _ => Err(format!("{claimed} is not a facility node")),
        }
    }

    /// Admits `leaf` when it names exactly the registered facility it claims to be.
    fn admit(&self, leaf: &CertificateDer<'_>) -> Result<Principal, String> {
        let expected = self.expected(leaf)?;
        verify_peer(Some(std::slice::from_ref(leaf)), &expected).map_err(|e| e.to_string())
    }
}

impl ClientCertVerifier for RegisteredFacilities {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.ca.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self.ca.verify_client_cert(end_entity, intermediates, now)?;
        match self.admit(end_entity) {
            Ok(_) => Ok(verified),
            Err(why) => {
                tracing::debug!("link refused: {why}");
                Err(Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.ca.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.ca.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.ca.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate naming `uri` (the CA check is not what is tested here).
    fn certificate(uri: &str) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::URI(uri.try_into().unwrap()));
        let key = rcgen::KeyPair::generate().unwrap();
        CertificateDer::from(params.self_signed(&key).unwrap().der().to_vec())
    }

    #[test]
    fn only_registered_facilities_of_the_network_are_admitted() {
        let verifier = RegisteredFacilities {
            ca: rustls::server::WebPkiClientVerifier::no_client_auth(),
            network: "net".into(),
            facilities: ["f1".to_string()].into(),
        };
        let admitted = verifier.admit(&certificate("spiffe://net/facility/f1"));
        assert_eq!(admitted.unwrap(), Principal::facility("net", "f1"));
        let unknown = verifier
            .admit(&certificate("spiffe://net/facility/f9"))
            .unwrap_err();
        assert!(
            unknown.contains("not in this gateway's registry"),
            "{unknown}"
        );
        let other_network = verifier
            .admit(&certificate("spiffe://other/facility/f1"))
            .unwrap_err();
        assert!(
            other_network.contains("spiffe://net/facility/f1"),
            "{other_network}"
        );
        assert!(
            verifier
                .admit(&certificate("spiffe://net/partner/f1"))
                .is_err()
        );
        assert!(
            verifier
                .admit(&certificate("spiffe://net/gateway"))
                .is_err()
        );
    }
}
