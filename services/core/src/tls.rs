//! TLS material for listeners and clients: one CA, one certificate and one key per side.
//!
//! Every listener requires a client certificate from its CA (mutual TLS); every client checks
//! the server against its CA. Files are checked when configuration loads, so a wrong path is
//! reported with the key that named it instead of failing at the first call.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
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
