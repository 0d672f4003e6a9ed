//! Who is calling: principals taken from SPIFFE-style URI SANs in certificates.
//!
//! `spiffe://<network>/gateway`, `spiffe://<network>/facility/<id>` and
//! `spiffe://<network>/partner/<id>`. A principal is the only input to authorization; it is
//! read from the verified peer certificate, never from request data.

use std::fmt;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// What a caller is in the network.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// The PSO gateway.
    Gateway,
    /// A facility (its node, or one of its own local clients).
    Facility(String),
    /// A partner system of the PSO (analyst tools, dashboards).
    Partner(String),
}

/// A caller: a network and a role in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// Network name (the SPIFFE trust domain).
    pub network: String,
    /// Role within the network.
    pub role: Role,
}

/// Why a certificate or URI names no principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The certificate could not be parsed.
    #[error("the certificate is not valid X.509 DER")]
    BadCertificate,
    /// No `spiffe://` URI SAN was found.
    #[error("the certificate has no spiffe:// URI subject alternative name")]
    NoSpiffeId,
    /// More than one URI SAN: which would be the identity is ambiguous, so none is (SPIFFE's
    /// X.509-SVID rule: exactly one URI SAN).
    #[error(
        "the certificate has {0} URI subject alternative names; a psonet identity has exactly one"
    )]
    SeveralUris(usize),
    /// The URI is not one of the known shapes.
    #[error("{0:?} is not spiffe://<network>/gateway, /facility/<id> or /partner/<id>")]
    UnknownShape(String),
    /// A network or an id uses characters outside `[a-z0-9-]` or is too long.
    #[error("{0:?} is not a valid name: use 1-63 of a-z, 0-9 and '-'")]
    BadName(String),
}

/// Checks a network name or an id: 1 to 63 of `[a-z0-9-]`, not starting with `-`.
pub fn check_name(name: &str) -> Result<(), IdentityError> {
    let ok = (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(IdentityError::BadName(name.to_string()))
    }
}

impl Principal {
    /// The gateway of `network`.
    pub fn gateway(network: &str) -> Self {
        Self::new(network, Role::Gateway)
    }

    /// Facility `id` of `network`.
    pub fn facility(network: &str, id: &str) -> Self {
        Self::new(network, Role::Facility(id.to_string()))
    }

    /// Partner `id` of `network`.
    pub fn partner(network: &str, id: &str) -> Self {
        Self::new(network, Role::Partner(id.to_string()))
    }

    fn new(network: &str, role: Role) -> Self {
        Self {
            network: network.to_string(),
            role,
        }
    }

    /// Parses `spiffe://<network>/<role>[/<id>]`.
    pub fn from_uri(uri: &str) -> Result<Self, IdentityError> {
        let shape = || IdentityError::UnknownShape(uri.to_string());
        let rest = uri.strip_prefix("spiffe://").ok_or_else(shape)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let network = parts[0];
        check_name(network)?;
        let role = match parts[1..] {
            ["gateway"] => Role::Gateway,
            ["facility", id] => {
                check_name(id)?;
                Role::Facility(id.to_string())
            }
            ["partner", id] => {
                check_name(id)?;
                Role::Partner(id.to_string())
            }
            _ => return Err(shape()),
        };
        Ok(Self::new(network, role))
    }

    /// The principal named by the one URI SAN of a DER certificate. A certificate with two
    /// URI SANs names no one: if the first won, a CA that signed an extra URI into a
    /// certificate (or a request it copied SANs from) would hand out a second identity.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|_| IdentityError::BadCertificate)?;
        let san = cert
            .subject_alternative_name()
            .map_err(|_| IdentityError::BadCertificate)?
            .ok_or(IdentityError::NoSpiffeId)?;
        let uris: Vec<&str> = san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::URI(uri) => Some(*uri),
                _ => None,
            })
            .collect();
        match uris[..] {
            [] => Err(IdentityError::NoSpiffeId),
            [uri] if !uri.starts_with("spiffe://") => Err(IdentityError::NoSpiffeId),
            [uri] => Self::from_uri(uri),
            _ => Err(IdentityError::SeveralUris(uris.len())),
        }
    }

    /// The SPIFFE URI of this principal.
    pub fn uri(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.role {
            Role::Gateway => write!(f, "spiffe://{}/gateway", self.network),
            Role::Facility(id) => write!(f, "spiffe://{}/facility/{id}", self.network),
            Role::Partner(id) => write!(f, "spiffe://{}/partner/{id}", self.network),
        }
    }
}

/// A self-signed certificate (DER) for `127.0.0.1` with `uris` as its URI SANs, for the tests
/// of what a certificate names.
#[cfg(test)]
pub(crate) fn test_certificate(uris: &[&str]) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    for uri in uris {
        params
            .subject_alt_names
            .push(rcgen::SanType::URI((*uri).try_into().unwrap()));
    }
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        for p in [
            Principal::gateway("net"),
            Principal::facility("net", "st-mary-01"),
            Principal::partner("net", "analyst"),
        ] {
            assert_eq!(Principal::from_uri(&p.uri()).unwrap(), p);
        }
    }

    #[test]
    fn a_certificate_names_its_one_uri_and_two_uris_name_no_one() {
        let one = test_certificate(&["spiffe://net/facility/f1"]);
        assert_eq!(
            Principal::from_certificate_der(&one).unwrap(),
            Principal::facility("net", "f1")
        );
        // On main the first spiffe:// URI won, whatever followed it.
        let two = test_certificate(&["spiffe://net/facility/f1", "spiffe://net/gateway"]);
        let err = Principal::from_certificate_der(&two).unwrap_err();
        assert_eq!(err, IdentityError::SeveralUris(2));
        assert!(err.to_string().contains("exactly one"), "{err}");
        let mixed = test_certificate(&["https://example.org/", "spiffe://net/gateway"]);
        assert_eq!(
            Principal::from_certificate_der(&mixed).unwrap_err(),
            IdentityError::SeveralUris(2)
        );
        let none = test_certificate(&[]);
        assert_eq!(
            Principal::from_certificate_der(&none).unwrap_err(),
            IdentityError::NoSpiffeId
        );
    }

    #[test]
    fn odd_uris_are_refused() {
        for bad in [
            "https://net/gateway",
            "spiffe://net/facility",
            "spiffe://net/facility/a/b",
            "spiffe://net/admin/x",
            "spiffe://Net/gateway",
            "spiffe://net/facility/..",
        ] {
            assert!(Principal::from_uri(bad).is_err(), "{bad}");
        }
    }
}
