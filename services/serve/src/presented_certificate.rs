//! Who a refused client claimed to be: the certificate it presented, read during the handshake.
//!
//! When rustls refuses a client certificate (unknown CA, expired, not for clients), the
//! handshake error says why but not whose certificate it was, and a failed handshake gives no
//! access to it afterwards. The security log wants both. So the listener's client verifier is
//! wrapped in [`RecordingVerifier`], which notes what the end-entity certificate names before
//! passing it on unchanged, and [`tls_incoming`](crate::listener::tls_incoming) runs each
//! handshake inside [`noting_presented`], a task-local slot the verifier writes to: the
//! verifier runs synchronously inside the handshake future's poll, on that task. What is
//! noted is a *claim* — the certificate may be the one that failed verification.

use crate::identity::Principal;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::cell::RefCell;
use std::sync::Arc;

tokio::task_local! {
    static PRESENTED: RefCell<Option<String>>;
}

/// Runs `handshake`, and returns with its output what the client's certificate claims (its
/// principal, marked unverified, or what else it is), if it presented one.
pub async fn noting_presented<F: Future>(handshake: F) -> (F::Output, Option<String>) {
    PRESENTED
        .scope(RefCell::new(None), async move {
            let out = handshake.await;
            let presented = PRESENTED.with(|slot| slot.borrow_mut().take());
            (out, presented)
        })
        .await
}

/// What a certificate names, in words: its principal, or why it names none.
pub fn describe(certificate: &[u8]) -> String {
    match Principal::from_certificate_der(certificate) {
        Ok(principal) => principal.uri(),
        Err(e) => format!("a certificate naming no psonet identity ({e})"),
    }
}

/// A client verifier that notes what each presented certificate names, then verifies it with
/// `inner` (whose verdict it returns unchanged).
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl RecordingVerifier {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ClientCertVerifier>) -> Arc<Self> {
        Arc::new(Self { inner })
    }
}

impl ClientCertVerifier for RecordingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Outside a noting handshake (there is none) this does nothing.
        let _ = PRESENTED.try_with(|slot| {
            *slot.borrow_mut() = Some(format!("{} (claimed, unverified)", describe(end_entity)))
        });
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}
