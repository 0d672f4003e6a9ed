//! The security log: every refused TLS handshake and every refused call, on record.
//!
//! A refusal is the first sign of a misconfigured peer (a certificate from the wrong CA, an
//! expired one, a facility client calling the federation listener) and of someone probing. Each
//! one is
//!
//! - **logged** at WARN with who (the principal the certificate names, or what it presented),
//!   from where (the peer's address), on which listener, and why — at most
//!   [`LINES_PER_WINDOW`] lines per listener per [`WINDOW`]; the refusals past that are not
//!   logged one by one, and the next line says how many there were, so a flood of bad
//!   handshakes cannot flood the log (or the audit trail) while nothing goes unaccounted;
//! - **counted**, every one, in `psonet_refusals_total{listener, stage, reason}`;
//! - on a node's federation listener, **appended to the audit trail** (a [`RefusalAudit`]),
//!   under the same limit as the log.
//!
//! Listeners get their log from [`SecurityLog::new`]; handshakes are reported by
//! [`crate::listener::tls_incoming`], calls by [`crate::auth::AccessRule`].

use crate::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long one rate-limit window of the log lasts.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Refusals logged (and audited) one by one per listener per [`WINDOW`].
pub const LINES_PER_WINDOW: u32 = 10;

/// Where in a connection a refusal happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The TLS handshake failed: no call was made.
    Handshake,
    /// A call was refused by the listener's access rule.
    Call,
}

impl Stage {
    /// Lower-case name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Handshake => "handshake",
            Stage::Call => "call",
        }
    }
}

/// Why a handshake or call was refused, in few enough kinds to be a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The client presented no certificate.
    NoCertificate,
    /// The certificate is not from the listener's CA.
    UnknownCa,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The certificate may not be used by a client (no `clientAuth`).
    NotForClients,
    /// Any other certificate fault (bad signature, bad encoding…).
    BadCertificate,
    /// Not TLS, an old TLS version, no common cipher or protocol.
    Protocol,
    /// The client ended the handshake with an alert (it refused our certificate).
    ClientAlert,
    /// The handshake did not finish in time.
    Timeout,
    /// The certificate names no psonet principal (no URI SAN, two of them, an odd one).
    NoIdentity,
    /// The principal is not one this listener serves.
    NotAdmitted,
}

impl Reason {
    /// Lower-case name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoCertificate => "no_certificate",
            Reason::UnknownCa => "unknown_ca",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::NotForClients => "not_for_clients",
            Reason::BadCertificate => "bad_certificate",
            Reason::Protocol => "protocol",
            Reason::ClientAlert => "client_alert",
            Reason::Timeout => "timeout",
            Reason::NoIdentity => "no_identity",
            Reason::NotAdmitted => "not_admitted",
        }
    }

    /// The reason a server-side rustls handshake error stands for.
    pub fn of_tls(error: &rustls::Error) -> Self {
        use rustls::CertificateError as C;
        use rustls::Error as E;
        match error {
            E::NoCertificatesPresented => Reason::NoCertificate,
            E::InvalidCertificate(cert) => match cert {
                C::UnknownIssuer => Reason::UnknownCa,
                C::Expired | C::ExpiredContext { .. } => Reason::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => Reason::NotYetValid,
                C::InvalidPurpose | C::InvalidPurposeContext { .. } => Reason::NotForClients,
                // A listener's own check after the CA's (the link listener's registry).
                C::ApplicationVerificationFailure => Reason::NotAdmitted,
                _ => Reason::BadCertificate,
            },
            E::AlertReceived(_) => Reason::ClientAlert,
            _ => Reason::Protocol,
        }
    }
}

/// One refused handshake or call.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Handshake or call.
    pub stage: Stage,
    /// Why, as a kind.
    pub reason: Reason,
    /// Who: the principal the certificate names (for a handshake, the one it claims, not
    /// verified), or what it presented; `None` when nothing was presented.
    pub who: Option<String>,
    /// From where.
    pub peer: Option<SocketAddr>,
    /// What was asked: the method of a call, `TLS handshake` for a handshake.
    pub what: String,
    /// Why, in words.
    pub detail: String,
}

/// Where a listener's refusals are audited (a node's federation listener: its audit trail).
pub trait RefusalAudit: Send + Sync {
    /// Records `refusal` on `listener`; `unrecorded` refusals before it were over the rate
    /// limit and are not recorded one by one.
    fn record(&self, listener: &str, refusal: &Refusal, unrecorded: u64);
}

/// The security log of one listener.
pub struct SecurityLog {
    listener: String,
    metrics: Arc<Metrics>,
    audit: Option<Arc<dyn RefusalAudit>>,
    limit: Mutex<RateWindow>,
}

impl std::fmt::Debug for SecurityLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityLog")
            .field("listener", &self.listener)
            .field("audited", &self.audit.is_some())
            .finish()
    }
}

impl SecurityLog {
    /// The log of `listener` (e.g. `federation`), counting into `metrics`.
    pub fn new(listener: &str, metrics: &Arc<Metrics>) -> Arc<Self> {
        Self::build(listener, metrics, None)
    }

    /// The log of `listener`, counting into `metrics` and recording into `audit`.
    pub fn audited(
        listener: &str,
        metrics: &Arc<Metrics>,
        audit: Arc<dyn RefusalAudit>,
    ) -> Arc<Self> {
        Self::build(listener, metrics, Some(audit))
    }

    fn build(
        listener: &str,
        metrics: &Arc<Metrics>,
        audit: Option<Arc<dyn RefusalAudit>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            listener: listener.to_string(),
            metrics: metrics.clone(),
            audit,
            limit: Mutex::new(RateWindow::new(Instant::now())),
        })
    }

    /// The listener this log is for.
    pub fn listener(&self) -> &str {
        &self.listener
    }

    /// Counts `refusal`, and logs (and audits) it unless the window's lines are used up.
    pub fn refuse(&self, refusal: Refusal) {
        self.metrics.count_refusal(
            &self.listener,
            refusal.stage.as_str(),
            refusal.reason.as_str(),
        );
        let admitted = self
            .limit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(Instant::now());
        let Some(unlogged) = admitted else {
            return;
        };
        tracing::warn!(
            listener = %self.listener,
            stage = refusal.stage.as_str(),
            reason = refusal.reason.as_str(),
            who = refusal.who.as_deref().unwrap_or("(no certificate)"),
            peer = %refusal.peer.map_or_else(|| "unknown".to_string(), |p| p.to_string()),
            what = %refusal.what,
            unlogged_before = unlogged,
            "refused: {}",
            refusal.detail
        );
        if let Some(audit) = &self.audit {
            audit.record(&self.listener, &refusal, unlogged);
        }
    }
}

/// At most [`LINES_PER_WINDOW`] admissions per [`WINDOW`]; the rest counted until the next.
#[derive(Debug)]
struct RateWindow {
    started: Instant,
    admitted: u32,
    held_back: u64,
}

impl RateWindow {
    fn new(now: Instant) -> Self {
        Self {
            started: now,
            admitted: 0,
            held_back: 0,
        }
    }

    /// `Some(refusals held back since the last admission)` when this one may be logged.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        if now.duration_since(self.started) >= WINDOW {
            self.started = now;
            self.admitted = 0;
        }
        if self.admitted < LINES_PER_WINDOW {
            self.admitted += 1;
            Some(std::mem::take(&mut self.held_back))
        } else {
            self.held_back += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_logged_ten_lines_a_window_and_the_rest_accounted_for() {
        let t0 = Instant::now();
        let mut window = RateWindow::new(t0);
        let first: Vec<_> = (0..25).map(|_| window.admit(t0)).collect();
        assert_eq!(first.iter().filter(|a| a.is_some()).count(), 10);
        assert!(first[10..].iter().all(Option::is_none));
        // The next window's first line says how many were held back.
        assert_eq!(window.admit(t0 + WINDOW), Some(15));
        assert_eq!(window.admit(t0 + WINDOW), Some(0));
    }

    #[derive(Default)]
    struct Recorded(Mutex<Vec<(String, u64)>>);

    impl RefusalAudit for Recorded {
        fn record(&self, listener: &str, refusal: &Refusal, unrecorded: u64) {
            self.0.lock().unwrap().push((
                format!("{listener} {} {}", refusal.what, refusal.detail),
                unrecorded,
            ));
        }
    }

    #[test]
    fn every_refusal_is_counted_and_audited_within_the_limit() {
        let metrics = Metrics::new();
        let audit = Arc::new(Recorded::default());
        let log = SecurityLog::audited("federation", &metrics, audit.clone());
        for _ in 0..12 {
            log.refuse(Refusal {
                stage: Stage::Handshake,
                reason: Reason::UnknownCa,
                who: Some("spiffe://n/facility/x".into()),
                peer: Some("127.0.0.1:5000".parse().unwrap()),
                what: "TLS handshake".into(),
                detail: "unknown issuer".into(),
            });
        }
        let text = metrics.render().unwrap();
        assert!(
            text.lines().any(|l| l
                == "psonet_refusals_total{listener=\"federation\",stage=\"handshake\",reason=\"unknown_ca\"} 12"),
            "{text}"
        );
        let audited = audit.0.lock().unwrap();
        assert_eq!(audited.len(), 10);
        assert_eq!(audited[0].0, "federation TLS handshake unknown issuer");
    }

    #[test]
    fn server_side_tls_errors_map_to_reasons() {
        use rustls::CertificateError as C;
        use rustls::Error as E;
        for (error, reason) in [
            (E::NoCertificatesPresented, Reason::NoCertificate),
            (E::InvalidCertificate(C::UnknownIssuer), Reason::UnknownCa),
            (E::InvalidCertificate(C::Expired), Reason::Expired),
            (E::InvalidCertificate(C::NotValidYet), Reason::NotYetValid),
            (
                E::InvalidCertificate(C::InvalidPurpose),
                Reason::NotForClients,
            ),
            (
                E::InvalidCertificate(C::BadEncoding),
                Reason::BadCertificate,
            ),
            (
                E::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered),
                Reason::Protocol,
            ),
        ] {
            assert_eq!(Reason::of_tls(&error), reason, "{error:?}");
        }
    }
}
