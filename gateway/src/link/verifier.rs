//! Who may link: a node whose certificate chains to the network CA *and* names a facility of
//! this gateway's registry. Checked inside the TLS handshake, so an unknown facility is refused
//! before it can carry a single HTTP/2 frame; the node reads the refusal as an `access_denied`
//! alert, the gateway logs and counts it.

use crate::link::table::Refusals;
use psonet_serve::identity::{Principal, Role};
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
    refusals: Refusals,
}

impl RegisteredFacilities {
    /// Wraps the CA check `ca`; admits facilities `facilities` of `network`, counting refusals
    /// in `refusals`.
    pub fn new(
        ca: Arc<dyn ClientCertVerifier>,
        network: &str,
        facilities: impl IntoIterator<Item = String>,
        refusals: Refusals,
    ) -> Arc<Self> {
        Arc::new(Self {
            ca,
            network: network.to_string(),
            facilities: facilities.into_iter().collect(),
            refusals,
        })
    }

    /// The registered facility `principal` names, or why it may not link.
    fn admit(&self, principal: &Principal) -> Result<(), String> {
        match &principal.role {
            _ if principal.network != self.network => {
                Err(format!("{principal} is not in network {}", self.network))
            }
            Role::Facility(id) if self.facilities.contains(id) => Ok(()),
            Role::Facility(id) => Err(format!(
                "{principal}: facility {id} is not in this gateway's registry"
            )),
            _ => Err(format!("{principal} is not a facility node")),
        }
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
        let refused = match Principal::from_certificate_der(end_entity) {
            Ok(principal) => match self.admit(&principal) {
                Ok(()) => return Ok(verified),
                Err(why) => why,
            },
            Err(e) => format!("the certificate names no principal: {e}"),
        };
        tracing::warn!("refused a link: {refused}");
        self.refusals.count("not_registered");
        Err(Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
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

    #[test]
    fn only_registered_facilities_of_the_network_are_admitted() {
        let verifier = RegisteredFacilities {
            ca: rustls::server::WebPkiClientVerifier::no_client_auth(),
            network: "net".into(),
            facilities: ["f1".to_string()].into(),
            refusals: Refusals::default(),
        };
        assert!(verifier.admit(&Principal::facility("net", "f1")).is_ok());
        let unknown = verifier
            .admit(&Principal::facility("net", "f9"))
            .unwrap_err();
        assert!(
            unknown.contains("not in this gateway's registry"),
            "{unknown}"
        );
        assert!(verifier.admit(&Principal::facility("other", "f1")).is_err());
        assert!(verifier.admit(&Principal::partner("net", "f1")).is_err());
        assert!(verifier.admit(&Principal::gateway("net")).is_err());
    }
}
