//! Who a report is for, read from the identity it is asked with: a facility gets its own
//! scorecards, a partner (or PSO staff) the network's benchmarks. The certificate decides, not a
//! flag, because the gateway answers by the certificate too: a facility cannot ask for another
//! facility's scorecard, and a partner has no scorecard to ask for.

use anyhow::{Context, Result, bail};
use psonet_serve::identity::{Principal, Role};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;

/// The reader of a report and what it may be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// A partner system or PSO analyst: network figures, facilities only as pseudonyms.
    Network {
        /// The network's name (SPIFFE trust domain).
        network: String,
        /// The principal's SPIFFE URI, printed on the cover.
        principal: String,
    },
    /// A facility: its own figures named, its peers anonymous.
    Facility {
        /// The network's name.
        network: String,
        /// The facility's id.
        id: String,
    },
}

impl Reader {
    /// The reader named by `identity/cert.pem`.
    pub fn from_identity(identity: &Path) -> Result<Self> {
        let path = identity.join("cert.pem");
        let cert = CertificateDer::from_pem_file(&path)
            .with_context(|| format!("reading the certificate {}", path.display()))?;
        let principal = Principal::from_certificate_der(&cert)
            .with_context(|| format!("reading the identity in {}", path.display()))?;
        Self::from_principal(principal)
    }

    /// The reader a principal is; the gateway's own identity asks for no reports.
    pub fn from_principal(principal: Principal) -> Result<Self> {
        let uri = principal.uri();
        Ok(match principal.role {
            Role::Facility(id) => Reader::Facility {
                network: principal.network,
                id,
            },
            Role::Partner(_) => Reader::Network {
                network: principal.network,
                principal: uri,
            },
            Role::Gateway => bail!(
                "{uri} is the gateway's identity: ask for a report as a partner (the network \
                 report) or as a facility client (that facility's report)"
            ),
        })
    }

    /// The network's name.
    pub fn network(&self) -> &str {
        match self {
            Reader::Network { network, .. } | Reader::Facility { network, .. } => network,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_get_their_own_report_partners_the_network_one() {
        let facility = Reader::from_principal(Principal::facility("midwest", "st-marys")).unwrap();
        assert_eq!(
            facility,
            Reader::Facility {
                network: "midwest".into(),
                id: "st-marys".into()
            }
        );
        let partner = Reader::from_principal(Principal::partner("midwest", "acme")).unwrap();
        assert_eq!(partner.network(), "midwest");
        assert!(matches!(partner, Reader::Network { .. }));
        let err = Reader::from_principal(Principal::gateway("midwest")).unwrap_err();
        assert!(err.to_string().contains("gateway's identity"), "{err}");
    }
}
