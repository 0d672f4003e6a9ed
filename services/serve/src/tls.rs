//! TLS material for listeners and clients: one CA, one certificate and one key per side.
//!
//! Every listener requires a client certificate from its CA (mutual TLS); every client checks
//! the server against its CA. Files are checked when configuration loads, so a wrong path is
//! reported with the key that named it instead of failing at the first call.

use crate::presented_certificate::RecordingVerifier;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// Paths of the PEM files one side of a mutual TLS connection needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificate(s) that peers' certificates must chain to.
    pub ca: PathBuf,
    /// This side's certificate chain.
    pub cert: PathBuf,
    /// This side's private key.
    pub key: PathBuf,
}

/// A TLS file that is missing or is not what it should be.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("{key} = {path}: cannot read it")]
    Read {
        /// Configuration key that named the file.
        key: String,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file has no PEM block of the expected kind.
    #[error("{key} = {path}: no PEM {expected} found")]
    NotPem {
        /// Configuration key that named the file.
        key: String,
        /// The path.
        path: PathBuf,
        /// What was expected ("CERTIFICATE", "PRIVATE KEY").
        expected: &'static str,
    },
    /// The file is PEM but not usable (unparsable, or a key that does not fit the certificate).
    #[error("{key} = {path}: {reason}")]
    Invalid {
        /// Configuration key that named the file.
        key: String,
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The PEM contents of [`TlsFiles`], read and checked.
#[derive(Clone)]
pub struct TlsMaterial {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl TlsFiles {
    /// Makes relative paths relative to `base` (the directory of the config file).
    pub fn resolve_relative(&mut self, base: &Path) {
        for p in [&mut self.ca, &mut self.cert, &mut self.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Reads the three files; `section` prefixes the key names in errors (e.g. `local.tls`).
    pub fn load(&self, section: &str) -> Result<TlsMaterial, TlsError> {
        let read = |name: &str, path: &Path, expected: &'static str| {
            let key = format!("{section}.{name}");
            let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
                key: key.clone(),
                path: path.to_path_buf(),
                source,
            })?;
            let text = String::from_utf8_lossy(&bytes);
            if !text.contains("-----BEGIN") || !text.contains(expected) {
                return Err(TlsError::NotPem {
                    key,
                    path: path.to_path_buf(),
                    expected,
                });
            }
            Ok(bytes)
        };
        Ok(TlsMaterial {
            ca: read("ca", &self.ca, "CERTIFICATE")?,
            cert: read("cert", &self.cert, "CERTIFICATE")?,
            key: read("key", &self.key, "PRIVATE KEY")?,
        })
    }
}

impl TlsMaterial {
    /// Material from PEM bytes already in memory.
    pub fn from_pem(ca: Vec<u8>, cert: Vec<u8>, key: Vec<u8>) -> Self {
        Self { ca, cert, key }
    }

    /// The CA certificates (PEM) peers are checked against: also what a signed masking key's
    /// certificate must chain to.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca
    }

    /// Server side: present our certificate, require a client certificate from our CA.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert, &self.key))
            .client_ca_root(Certificate::from_pem(&self.ca))
    }

    /// Client side: present our certificate, accept a server whose certificate from our CA
    /// names `server_name` (a DNS name or an IP address).
    pub fn client_config(&self, server_name: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .identity(Identity::from_pem(&self.cert, &self.key))
            .domain_name(server_name)
    }
}

/// Installs ring as the process's rustls crypto provider. Call once at start; later calls are
/// harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// This side's certificate and key, swapped in place when the files change, so certificates
/// are rotated without a restart.
///
/// Listeners use it as their certificate resolver and the gateway as its client certificate
/// resolver: every new TLS handshake presents whatever was loaded last; connections already
/// open keep the certificate they started with. A reload that fails (a half-written file, a
/// key that does not match) keeps the previous identity and says why.
#[derive(Debug)]
pub struct ReloadableIdentity {
    files: TlsFiles,
    section: String,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableIdentity {
    /// Loads the certificate and key named by `files`; `section` prefixes keys in errors.
    pub fn load(files: &TlsFiles, section: &str) -> Result<Arc<Self>, TlsError> {
        let current = certified_key(files, section)?;
        Ok(Arc::new(Self {
            files: files.clone(),
            section: section.to_string(),
            current: RwLock::new(current),
        }))
    }

    /// Reads the certificate and key again and presents them from the next handshake on.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = certified_key(&self.files, &self.section)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The files this identity is read from (to watch them for changes).
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The certificate presented now (leaf first, DER).
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.key().cert[0].clone()
    }

    fn key(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A rustls server configuration presenting this identity and requiring a client
    /// certificate from the CA in `self.files().ca`; speaks HTTP/2 only (gRPC). What each
    /// client presents is noted for the security log (see [`crate::presented_certificate`]).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        self.server_config_with(|ca| ca)
    }

    /// As [`ReloadableIdentity::server_config`], with `narrow` wrapped around the check
    /// against the CA: a listener that admits only some of the CA's certificates (the
    /// gateway's link listener admits only the facilities of its registry) refuses the others
    /// during the handshake, so they never reach a service.
    pub fn server_config_with(
        self: &Arc<Self>,
        narrow: impl FnOnce(Arc<dyn ClientCertVerifier>) -> Arc<dyn ClientCertVerifier>,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(self.roots()?);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| self.invalid("ca", e))?;
        let verifier = narrow(verifier);
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.invalid("ca", e))?
            .with_client_cert_verifier(RecordingVerifier::new(verifier))
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// A rustls client configuration presenting this identity and trusting servers from the
    /// CA in `self.files().ca`; speaks HTTP/2 only (gRPC).
    pub fn client_config(self: &Arc<Self>) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.invalid("ca", e))?
            .with_root_certificates(self.roots()?)
            .with_client_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    fn roots(&self) -> Result<RootCertStore, TlsError> {
        let pem = read_file(&self.files.ca, &format!("{}.ca", self.section))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| self.invalid("ca", e))?;
            roots.add(cert).map_err(|e| self.invalid("ca", e))?;
        }
        Ok(roots)
    }

    fn invalid(&self, name: &str, reason: impl std::fmt::Display) -> TlsError {
        let path = match name {
            "ca" => &self.files.ca,
            "key" => &self.files.key,
            _ => &self.files.cert,
        };
        TlsError::Invalid {
            key: format!("{}.{name}", self.section),
            path: path.clone(),
            reason: reason.to_string(),
        }
    }
}

impl ResolvesServerCert for ReloadableIdentity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key())
    }
}

impl ResolvesClientCert for ReloadableIdentity {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn read_file(path: &Path, key: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key: key.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a certificate chain and its key into a signing identity, checking they match.
fn certified_key(files: &TlsFiles, section: &str) -> Result<Arc<CertifiedKey>, TlsError> {
    let invalid = |name: &str, path: &Path, reason: String| TlsError::Invalid {
        key: format!("{section}.{name}"),
        path: path.to_path_buf(),
        reason,
    };
    let cert_pem = read_file(&files.cert, &format!("{section}.cert"))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("cert", &files.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(invalid("cert", &files.cert, "no certificate in it".into()));
    }
    let key_pem = read_file(&files.key, &format!("{section}.key"))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid("key", &files.key, e.to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        invalid(
            "key",
            &files.key,
            format!("does not fit the certificate: {e}"),
        )
    })?;
    Ok(Arc::new(certified))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA and a leaf from it, written as ca.pem, cert.pem and key.pem.
    fn write_identity(dir: &Path, ca: &rcgen::Issuer<'_, rcgen::KeyPair>, ca_pem: &str) -> Vec<u8> {
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, ca).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        cert.der().to_vec()
    }

    #[test]
    fn a_reload_swaps_the_identity_both_sides_present_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
        let ca = rcgen::Issuer::new(ca_params, ca_key);
        let files = TlsFiles {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        let first = write_identity(dir.path(), &ca, &ca_pem);
        let identity = ReloadableIdentity::load(&files, "tls").unwrap();
        identity.server_config().unwrap();
        identity.client_config().unwrap();
        assert_eq!(identity.certificate().as_ref(), first.as_slice());

        let second = write_identity(dir.path(), &ca, &ca_pem);
        identity.reload().unwrap();
        assert_eq!(identity.certificate().as_ref(), second.as_slice());
        let client = ResolvesClientCert::resolve(identity.as_ref(), &[], &[]).unwrap();
        assert_eq!(client.cert[0].as_ref(), second.as_slice());

        // A key that does not fit the certificate is refused; the last good identity stays.
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&files.key, other.serialize_pem()).unwrap();
        let err = identity.reload().unwrap_err().to_string();
        assert!(
            err.contains("tls.key") && err.contains("does not fit"),
            "{err}"
        );
        assert_eq!(identity.certificate().as_ref(), second.as_slice());
    }
}
