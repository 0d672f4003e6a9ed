//! Who may call a listener: deny by default, decided from the verified peer certificate.
//!
//! Each listener is wrapped in an [`AccessRule`] interceptor. It maps the client certificate
//! to a [`Principal`], refuses anyone the rule does not name, and leaves the principal in the
//! request's extensions for the handlers. On a link a node dialled out to the gateway, the
//! caller is the link's TLS server, and the same rule reads its certificate instead.

use crate::identity::{Principal, Role};
use crate::link::DialledPeer;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Which principals a listener serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Only the network's gateway (a node's federation listener).
    Gateway,
    /// Only the facility itself (a node's local listener).
    OwnFacility(String),
    /// Partners and facilities (the gateway's benchmark listener).
    PartnersAndFacilities,
    /// Partners only: the PSO's own staff and systems (the gateway's list of linked
    /// facilities, which a facility has no business reading).
    Partners,
}

/// An access rule for one listener of one network.
#[derive(Debug, Clone)]
pub struct AccessRule {
    network: String,
    audience: Audience,
}

impl AccessRule {
    /// Serves `audience` of `network`, and no one else.
    pub fn new(network: &str, audience: Audience) -> Self {
        Self {
            network: network.to_string(),
            audience,
        }
    }

    /// The caller's principal, or the status that refuses it.
    pub fn check<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let certs = peer_certificates(request)
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let principal = Principal::from_certificate_der(leaf)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        if self.allows(&principal) {
            Ok(principal)
        } else {
            Err(Status::permission_denied(format!(
                "{principal} may not call this listener; it serves {}",
                self.describe()
            )))
        }
    }

    fn allows(&self, p: &Principal) -> bool {
        p.network == self.network
            && match (&self.audience, &p.role) {
                (Audience::Gateway, Role::Gateway) => true,
                (Audience::OwnFacility(own), Role::Facility(id)) => own == id,
                (Audience::PartnersAndFacilities, Role::Partner(_) | Role::Facility(_)) => true,
                (Audience::Partners, Role::Partner(_)) => true,
                _ => false,
            }
    }

    fn describe(&self) -> String {
        let n = &self.network;
        match &self.audience {
            Audience::Gateway => format!("only spiffe://{n}/gateway"),
            Audience::OwnFacility(id) => format!("only spiffe://{n}/facility/{id}"),
            Audience::PartnersAndFacilities => {
                format!("only spiffe://{n}/partner/* and spiffe://{n}/facility/*")
            }
            Audience::Partners => format!("only spiffe://{n}/partner/*"),
        }
    }
}

impl Interceptor for AccessRule {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let principal = self.check(&request)?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The verified certificates of whoever is at the other end of `request`'s connection: the
/// client of a connection a listener accepted, or the TLS server of a link this process dialled
/// and serves on ([`DialledPeer`]). The same rule applies to both.
pub fn peer_certificates<T>(request: &Request<T>) -> Option<Arc<Vec<CertificateDer<'static>>>> {
    request.peer_certs().or_else(|| {
        request
            .extensions()
            .get::<DialledPeer>()
            .map(|peer| peer.certificates.clone())
    })
}

/// The principal an [`AccessRule`] admitted for `request`: handlers read their caller here
/// rather than from the certificate again. UNAUTHENTICATED when no rule ran.
pub fn caller<T>(request: &Request<T>) -> Result<&Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| Status::unauthenticated("no verified caller"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_admit_exactly_their_principals() {
        let fed = AccessRule::new("net", Audience::Gateway);
        assert!(fed.allows(&Principal::gateway("net")));
        assert!(!fed.allows(&Principal::gateway("other")));
        assert!(!fed.allows(&Principal::partner("net", "a")));
        assert!(!fed.allows(&Principal::facility("net", "f1")));
        let local = AccessRule::new("net", Audience::OwnFacility("f1".into()));
        assert!(local.allows(&Principal::facility("net", "f1")));
        assert!(!local.allows(&Principal::facility("net", "f2")));
        assert!(!local.allows(&Principal::gateway("net")));
        let bench = AccessRule::new("net", Audience::PartnersAndFacilities);
        assert!(bench.allows(&Principal::partner("net", "a")));
        assert!(bench.allows(&Principal::facility("net", "f2")));
        assert!(!bench.allows(&Principal::gateway("net")));
        let staff = AccessRule::new("net", Audience::Partners);
        assert!(staff.allows(&Principal::partner("net", "a")));
        assert!(!staff.allows(&Principal::facility("net", "f2")));
    }

    #[test]
    fn a_request_without_certificates_is_unauthenticated() {
        let rule = AccessRule::new("net", Audience::Gateway);
        let status = rule.check(&Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
}
