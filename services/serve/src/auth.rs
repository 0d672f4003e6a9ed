//! Who may call a listener: deny by default, decided from the verified peer certificate.
//!
//! Each listener is wrapped in an [`AccessRule`] interceptor. It maps the client certificate
//! to a [`Principal`], refuses anyone the rule does not name — and puts the refusal on record
//! in the listener's [`SecurityLog`] — and leaves the principal in the request's extensions for
//! the handlers. On a link a node dialled out to the gateway, the caller is the link's TLS
//! server, and the same rule reads its certificate instead.

use crate::identity::{Principal, Role};
use crate::link::DialledPeer;
use crate::presented_certificate::describe;
use crate::security_log::{Reason, Refusal, SecurityLog, Stage};
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

/// The gRPC method of a call (its path, `/package.Service/Method`), put in the request's
/// extensions by the listener's outermost layer ([`crate::metrics::RpcMetricsLayer`]), so
/// that a refusal can say what was refused: an interceptor does not see the path.
#[derive(Debug, Clone)]
pub struct CalledMethod(pub String);

/// An access rule for one listener of one network.
#[derive(Debug, Clone)]
pub struct AccessRule {
    network: String,
    audience: Audience,
    log: Arc<SecurityLog>,
}

impl AccessRule {
    /// Serves `audience` of `network`, and no one else; refusals go to `log`.
    pub fn new(network: &str, audience: Audience, log: &Arc<SecurityLog>) -> Self {
        Self {
            network: network.to_string(),
            audience,
            log: log.clone(),
        }
    }

    /// The caller's principal, or the status that refuses it (and the refusal on record).
    pub fn check<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        self.decide(request).map_err(|(reason, who, status)| {
            self.log.refuse(Refusal {
                stage: Stage::Call,
                reason,
                who,
                peer: request.remote_addr().or_else(|| {
                    let dialled = request.extensions().get::<DialledPeer>();
                    dialled.and_then(|peer| peer.address)
                }),
                what: request
                    .extensions()
                    .get::<CalledMethod>()
                    .map_or_else(|| "a call".to_string(), |m| m.0.clone()),
                detail: status.message().to_string(),
            });
            status
        })
    }

    /// The caller's principal, or why not: the reason, who the certificate names, the status.
    fn decide<T>(
        &self,
        request: &Request<T>,
    ) -> Result<Principal, (Reason, Option<String>, Status)> {
        let no_certificate = || {
            (
                Reason::NoCertificate,
                None,
                Status::unauthenticated("a client certificate is required"),
            )
        };
        let certs = peer_certificates(request).ok_or_else(no_certificate)?;
        let leaf = certs.first().ok_or_else(no_certificate)?;
        let principal = Principal::from_certificate_der(leaf).map_err(|e| {
            (
                Reason::NoIdentity,
                Some(describe(leaf)),
                Status::unauthenticated(format!("client certificate: {e}")),
            )
        })?;
        if self.allows(&principal) {
            Ok(principal)
        } else {
            let status = Status::permission_denied(format!(
                "{principal} may not call this listener; it serves {}",
                self.describe()
            ));
            Err((Reason::NotAdmitted, Some(principal.uri()), status))
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

    fn rule(audience: Audience) -> AccessRule {
        let log = SecurityLog::new("test", &crate::metrics::Metrics::new());
        AccessRule::new("net", audience, &log)
    }

    #[test]
    fn audiences_admit_exactly_their_principals() {
        let fed = rule(Audience::Gateway);
        assert!(fed.allows(&Principal::gateway("net")));
        assert!(!fed.allows(&Principal::gateway("other")));
        assert!(!fed.allows(&Principal::partner("net", "a")));
        assert!(!fed.allows(&Principal::facility("net", "f1")));
        let local = rule(Audience::OwnFacility("f1".into()));
        assert!(local.allows(&Principal::facility("net", "f1")));
        assert!(!local.allows(&Principal::facility("net", "f2")));
        assert!(!local.allows(&Principal::gateway("net")));
        let bench = rule(Audience::PartnersAndFacilities);
        assert!(bench.allows(&Principal::partner("net", "a")));
        assert!(bench.allows(&Principal::facility("net", "f2")));
        assert!(!bench.allows(&Principal::gateway("net")));
        let staff = rule(Audience::Partners);
        assert!(staff.allows(&Principal::partner("net", "a")));
        assert!(!staff.allows(&Principal::facility("net", "f2")));
    }

    #[test]
    fn a_request_without_certificates_is_unauthenticated_and_on_record() {
        let metrics = crate::metrics::Metrics::new();
        let log = SecurityLog::new("federation", &metrics);
        let rule = AccessRule::new("net", Audience::Gateway, &log);
        let status = rule.check(&Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                "psonet_refusals_total{listener=\"federation\",stage=\"call\",reason=\"no_certificate\"} 1"
            ),
            "{text}"
        );
    }
}
