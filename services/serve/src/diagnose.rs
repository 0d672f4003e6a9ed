//! Failed calls in plain words.
//!
//! A client whose certificate is refused connects fine and sees its first call fail with
//! `Unknown: transport error`; the real cause (unknown CA, no certificate, wrong host) hides in
//! the error's source chain. This module finds it, once, for every client and for the
//! gateway's coverage report.

use rustls::{AlertDescription, CertificateError};
use std::error::Error as StdError;
use tonic::{Code, Status};
use tonic_types::StatusExt;

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
            | Failure::Other(s) => s,
        }
    }
}

/// Classifies a failed call to `peer` (a name such as "the node at 10.0.0.5:7111").
pub fn diagnose(status: &Status, peer: &str) -> Failure {
    if let Some(f) = from_source_chain(status, peer) {
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

fn from_source_chain(status: &Status, peer: &str) -> Option<Failure> {
    let mut next: Option<&(dyn StdError + 'static)> = status.source();
    while let Some(err) = next {
        if let Some(f) = from_error(err, peer) {
            return Some(f);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(f) = diagnose_tls_io(io, peer)
        {
            return Some(f);
        }
        next = err.source();
    }
    None
}

/// Classifies an I/O error from a TLS connection (e.g. a handshake or a read), if it is one.
pub fn diagnose_tls_io(err: &std::io::Error, peer: &str) -> Option<Failure> {
    err.get_ref()
        .and_then(|inner| from_error(inner, peer))
        .or_else(|| from_error(err, peer))
}

fn from_error(err: &(dyn StdError + 'static), peer: &str) -> Option<Failure> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(from_tls(tls, peer));
    }
    let io = err.downcast_ref::<std::io::Error>()?;
    if let Some(f) = from_tls_text(&io.to_string(), peer) {
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
fn from_tls_text(text: &str, peer: &str) -> Option<Failure> {
    use rustls::Error as E;
    let alert = text.strip_prefix("received fatal alert: ").map(str::trim);
    let tls = match alert {
        Some("UnknownCA") => E::AlertReceived(AlertDescription::UnknownCA),
        Some("CertificateRequired") => E::AlertReceived(AlertDescription::CertificateRequired),
        Some("CertificateExpired") => E::AlertReceived(AlertDescription::CertificateExpired),
        Some("BadCertificate") => E::AlertReceived(AlertDescription::BadCertificate),
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
        None => return None,
    };
    Some(from_tls(&tls, peer))
}

fn from_tls(tls: &rustls::Error, peer: &str) -> Failure {
    use rustls::Error as E;
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
            return Failure::Refused(format!("{peer} refused our certificate: it has expired"));
        }
        E::AlertReceived(
            AlertDescription::BadCertificate | AlertDescription::UnsupportedCertificate,
        ) => {
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
        other => format!("TLS with {peer} failed: {other}"),
    };
    Failure::Unreachable(text)
}
