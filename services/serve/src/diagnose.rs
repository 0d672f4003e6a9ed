//! Failed calls in plain words.
//!
//! A client whose certificate is refused connects fine and sees its first call fail with
//! `Unknown: transport error`; the real cause (unknown CA, no certificate, wrong host) hides in
//! the error's source chain. This module finds it, once, for every client and for the
//! gateway's coverage report.
//!
//! A TLS alert says little: `certificate_expired` is also what a server sends for a certificate
//! that is *not yet* valid, `unsupported_certificate` what it sends for one without
//! `clientAuth`. A client that knows its own certificate ([`diagnose_as`]) reads which it is.

use crate::peer_identity::PeerIdentityError;
use rustls::{AlertDescription, CertificateError};
use std::error::Error as StdError;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

/// What went wrong with a call, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The peer could not be reached or the TLS handshake failed.
    Unreachable(String),
    /// The peer refused the caller (authentication or authorization).
    Refused(String),
    /// The call ran out of time.
    TimedOut(String),
    /// The request was invalid.
    Invalid(String),
    /// The peer was reached and its certificate is valid, but it is not who we meant to reach
    /// (see [`crate::peer_identity`]); the connection was closed before any request.
    WrongPeer(String),
    /// Any other error.
    Other(String),
}

impl Failure {
    /// The plain-words explanation.
    pub fn explanation(&self) -> &str {
        match self {
            Failure::Unreachable(s)
            | Failure::Refused(s)
            | Failure::TimedOut(s)
            | Failure::Invalid(s)
            | Failure::WrongPeer(s)
            | Failure::Other(s) => s,
        }
    }
}

/// Classifies a failed call to `peer` (a name such as "the node at 10.0.0.5:7111").
pub fn diagnose(status: &Status, peer: &str) -> Failure {
    diagnose_as(status, peer, None)
}

/// [`diagnose`], for a caller that presented `own_certificate` (DER): a refusal of it is
/// explained from what the certificate says (not yet valid, expired, not for clients).
pub fn diagnose_as(status: &Status, peer: &str, own_certificate: Option<&[u8]>) -> Failure {
    let side = Side {
        peer,
        own_certificate,
    };
    if let Some(f) = from_source_chain(status, &side) {
        return f;
    }
    let msg = status.message();
    match status.code() {
        Code::Unavailable => Failure::Unreachable(format!("{peer} is unavailable: {msg}")),
        Code::Unauthenticated => {
            Failure::Refused(format!("{peer} did not accept our identity: {msg}"))
        }
        Code::PermissionDenied => Failure::Refused(format!("{peer} denied the call: {msg}")),
        Code::DeadlineExceeded | Code::Cancelled => {
            Failure::TimedOut(format!("{peer} did not answer in time: {msg}"))
        }
        Code::InvalidArgument => Failure::Invalid(invalid_argument(status)),
        Code::ResourceExhausted => Failure::Refused(format!(
            "{peer} refused for lack of budget or capacity: {msg}"
        )),
        code => Failure::Other(format!("{peer} answered {code:?}: {msg}")),
    }
}

fn invalid_argument(status: &Status) -> String {
    let Some(bad) = status.get_details_bad_request() else {
        return format!("the request was refused as invalid: {}", status.message());
    };
    let fields: Vec<String> = bad
        .field_violations
        .iter()
        .map(|v| format!("  {}: {}", v.field, v.description))
        .collect();
    format!("the request was refused as invalid:\n{}", fields.join("\n"))
}

/// Who failed us, and what we presented.
struct Side<'a> {
    peer: &'a str,
    own_certificate: Option<&'a [u8]>,
}

fn from_source_chain(status: &Status, side: &Side<'_>) -> Option<Failure> {
    let mut next: Option<&(dyn StdError + 'static)> = status.source();
    while let Some(err) = next {
        if let Some(f) = from_error(err, side) {
            return Some(f);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(f) = tls_io(io, side)
        {
            return Some(f);
        }
        next = err.source();
    }
    None
}

/// Classifies an I/O error from a TLS connection (e.g. a handshake or a read), if it is one.
pub fn diagnose_tls_io(err: &std::io::Error, peer: &str) -> Option<Failure> {
    diagnose_tls_io_as(err, peer, None)
}

/// [`diagnose_tls_io`], for a caller that presented `own_certificate` (DER).
pub fn diagnose_tls_io_as(
    err: &std::io::Error,
    peer: &str,
    own_certificate: Option<&[u8]>,
) -> Option<Failure> {
    let side = Side {
        peer,
        own_certificate,
    };
    tls_io(err, &side)
}

fn tls_io(err: &std::io::Error, side: &Side<'_>) -> Option<Failure> {
    err.get_ref()
        .and_then(|inner| from_error(inner, side))
        .or_else(|| from_error(err, side))
}

fn from_error(err: &(dyn StdError + 'static), side: &Side<'_>) -> Option<Failure> {
    let peer = side.peer;
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(from_tls(tls, side));
    }
    if let Some(wrong) = err.downcast_ref::<PeerIdentityError>() {
        return Some(Failure::WrongPeer(format!(
            "{peer} {wrong}; the connection was refused before any request"
        )));
    }
    let io = err.downcast_ref::<std::io::Error>()?;
    if let Some(f) = from_tls_text(&io.to_string(), side) {
        return Some(f);
    }
    use std::io::ErrorKind::*;
    match io.kind() {
        ConnectionRefused => Some(Failure::Unreachable(format!(
            "{peer} refused the connection: is it running, and is the address right?"
        ))),
        ConnectionReset | BrokenPipe | UnexpectedEof => Some(Failure::Unreachable(format!(
            "{peer} closed the connection ({io})"
        ))),
        TimedOut => Some(Failure::TimedOut(format!("connecting to {peer} timed out"))),
        _ => None,
    }
}

/// Some layers keep only the text of a rustls error ("received fatal alert: UnknownCA").
fn from_tls_text(text: &str, side: &Side<'_>) -> Option<Failure> {
    let peer = side.peer;
    use rustls::Error as E;
    let alert = text.strip_prefix("received fatal alert: ").map(str::trim);
    let tls = match alert {
        Some("UnknownCA") => E::AlertReceived(AlertDescription::UnknownCA),
        Some("CertificateRequired") => E::AlertReceived(AlertDescription::CertificateRequired),
        Some("CertificateExpired") => E::AlertReceived(AlertDescription::CertificateExpired),
        Some("BadCertificate") => E::AlertReceived(AlertDescription::BadCertificate),
        Some("UnsupportedCertificate") => {
            E::AlertReceived(AlertDescription::UnsupportedCertificate)
        }
        Some("DecryptError") => E::AlertReceived(AlertDescription::DecryptError),
        Some("AccessDenied") => E::AlertReceived(AlertDescription::AccessDenied),
        Some(other) => {
            return Some(Failure::Unreachable(format!(
                "{peer} ended the TLS handshake with alert {other}"
            )));
        }
        None if text.contains("invalid peer certificate: UnknownIssuer") => {
            E::InvalidCertificate(CertificateError::UnknownIssuer)
        }
        None if text.contains("invalid peer certificate: NotValidForName") => {
            E::InvalidCertificate(CertificateError::NotValidForName)
        }
        None if text.contains("invalid peer certificate: Expired") => {
            E::InvalidCertificate(CertificateError::Expired)
        }
        None if text.contains("invalid peer certificate: NotValidYet") => {
            E::InvalidCertificate(CertificateError::NotValidYet)
        }
        None => return None,
    };
    Some(from_tls(&tls, side))
}

fn from_tls(tls: &rustls::Error, side: &Side<'_>) -> Failure {
    use rustls::Error as E;
    let peer = side.peer;
    let text = match tls {
        E::AlertReceived(AlertDescription::UnknownCA) => {
            return Failure::Refused(format!(
                "{peer} refused our certificate: unknown CA (it does not trust the CA that issued it)"
            ));
        }
        E::AlertReceived(AlertDescription::CertificateRequired) => {
            return Failure::Refused(format!(
                "{peer} requires a client certificate and we presented none"
            ));
        }
        E::AlertReceived(AlertDescription::CertificateExpired) => {
            return Failure::Refused(out_of_date(peer, side.own_certificate));
        }
        E::AlertReceived(AlertDescription::UnsupportedCertificate) => {
            return Failure::Refused(not_for_clients(peer, side.own_certificate));
        }
        E::AlertReceived(AlertDescription::BadCertificate) => {
            return Failure::Refused(format!("{peer} refused our certificate as invalid"));
        }
        E::AlertReceived(AlertDescription::DecryptError) => {
            return Failure::Refused(format!(
                "{peer} refused our certificate: its signature does not verify (issued by another CA of the same name?)"
            ));
        }
        E::AlertReceived(AlertDescription::AccessDenied) => {
            return Failure::Refused(format!(
                "{peer} refused our certificate: access denied (the name it carries is not one \
                 this peer admits, e.g. a facility its registry does not list)"
            ));
        }
        E::AlertReceived(other) => format!("{peer} ended the TLS handshake with alert {other:?}"),
        E::InvalidCertificate(CertificateError::UnknownIssuer) => {
            format!("{peer} presented a certificate that our CA did not issue (unknown issuer)")
        }
        E::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!("{peer} presented a certificate for another host name"),
        E::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => format!("{peer} presented an expired certificate"),
        E::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => format!(
            "{peer} presented a certificate that is not valid yet (check its start date, and \
             the clocks of both machines)"
        ),
        E::InvalidCertificate(
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. },
        ) => format!(
            "{peer} presented a certificate that is not for servers (its extended key usage \
             lacks serverAuth)"
        ),
        other => format!("TLS with {peer} failed: {other}"),
    };
    Failure::Unreachable(text)
}

/// The peer sent `certificate_expired`, which TLS also uses for "not yet valid": which it is,
/// read from our certificate when we know it.
fn out_of_date(peer: &str, own_certificate: Option<&[u8]>) -> String {
    let Some((from, until)) = own_certificate.and_then(validity) else {
        return format!("{peer} refused our certificate as expired or not yet valid");
    };
    let now = ASN1Time::now();
    if now < from {
        format!(
            "{peer} refused our certificate: it is not valid yet (valid from {from}); wait, or \
             check this machine's clock"
        )
    } else if now > until {
        format!("{peer} refused our certificate: it has expired (valid until {until}); renew it")
    } else {
        format!(
            "{peer} refused our certificate as expired or not yet valid, but by our clock it is \
             valid from {from} to {until}: check {peer}'s clock"
        )
    }
}

/// The peer sent `unsupported_certificate`: the certificate may not be used as a client's.
fn not_for_clients(peer: &str, own_certificate: Option<&[u8]>) -> String {
    let for_clients = own_certificate.and_then(allows_client_auth);
    match for_clients {
        Some(false) => format!(
            "{peer} refused our certificate: it is not a client certificate (its extended key \
             usage lacks clientAuth); use a certificate issued for clients"
        ),
        _ => format!(
            "{peer} refused our certificate as unsuitable for a client (a client certificate \
             needs the extended key usage clientAuth)"
        ),
    }
}

fn validity(der: &[u8]) -> Option<(ASN1Time, ASN1Time)> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let v = cert.validity();
    Some((v.not_before, v.not_after))
}

/// Whether a certificate may authenticate a client: no extended key usage, `anyExtendedKeyUsage`
/// or `clientAuth`; `None` when it does not parse.
fn allows_client_auth(der: &[u8]) -> Option<bool> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(match cert.extended_key_usage().ok()? {
        None => true,
        Some(eku) => eku.value.any || eku.value.client_auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate valid from `from` to `to` (y, m, d) with these key usages.
    fn own(
        from: (i32, u8, u8),
        to: (i32, u8, u8),
        usages: Vec<rcgen::ExtendedKeyUsagePurpose>,
    ) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        params.extended_key_usages = usages;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn refusal(alert: AlertDescription, own_certificate: Option<&[u8]>) -> String {
        let side = Side {
            peer: "the node",
            own_certificate,
        };
        match from_tls(&rustls::Error::AlertReceived(alert), &side) {
            Failure::Refused(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn certificate_expired_says_which_from_our_own_certificate() {
        let client = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let future = own((2090, 1, 1), (2091, 1, 1), client.clone());
        let text = refusal(AlertDescription::CertificateExpired, Some(&future));
        // On main: "the node refused our certificate: it has expired".
        assert!(
            text.contains("not valid yet") && text.contains("2090"),
            "{text}"
        );
        let past = own((2020, 1, 1), (2021, 1, 1), client.clone());
        let text = refusal(AlertDescription::CertificateExpired, Some(&past));
        assert!(
            text.contains("has expired") && text.contains("2021"),
            "{text}"
        );
        let current = own((2020, 1, 1), (2090, 1, 1), client);
        let text = refusal(AlertDescription::CertificateExpired, Some(&current));
        assert!(text.contains("check the node's clock"), "{text}");
        let text = refusal(AlertDescription::CertificateExpired, None);
        assert!(text.contains("expired or not yet valid"), "{text}");
    }

    #[test]
    fn a_certificate_without_client_auth_is_named_as_such() {
        let server_only = own(
            (2020, 1, 1),
            (2090, 1, 1),
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
        );
        let text = refusal(AlertDescription::UnsupportedCertificate, Some(&server_only));
        // On main: "the node refused our certificate as invalid".
        assert!(text.contains("lacks clientAuth"), "{text}");
        let text = refusal(AlertDescription::UnsupportedCertificate, None);
        assert!(text.contains("clientAuth"), "{text}");
        assert!(
            from_tls_text(
                "received fatal alert: UnsupportedCertificate",
                &Side {
                    peer: "p",
                    own_certificate: None
                }
            )
            .is_some_and(|f| f.explanation().contains("clientAuth"))
        );
    }

    #[test]
    fn a_wrong_peer_inside_an_io_error_is_named() {
        let wrong = PeerIdentityError::Mismatch {
            presented: crate::identity::Principal::facility("n", "facility-1"),
            expected: crate::identity::Principal::facility("n", "facility-5"),
        };
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, wrong);
        match diagnose_tls_io(&io, "the node of facility-5") {
            Some(Failure::WrongPeer(s)) => assert!(
                s.contains(
                    "facility-5 presented the certificate of spiffe://n/facility/facility-1"
                ),
                "{s}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
