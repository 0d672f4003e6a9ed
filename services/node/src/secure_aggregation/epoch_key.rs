//! The node's masking key: one X25519 secret per epoch (calendar month, UTC), in memory only,
//! signed with the key of the node's federation certificate.
//!
//! The secret is made on first use in a month and replaced once the month has changed — within
//! [`ROTATION_POLL`] of it, by a task that does not wait for the next round — and the old one is
//! zeroized when the last round still holding it lets go (x25519-dalek and the epoch's
//! agreements zeroize on drop). A restart loses it on purpose: the node then has a new key, and a
//! cohort carrying the old one is refused as stale, so no round can be answered twice across a
//! restart with the same masks. The certificate and key files are read again when they change
//! (certificate rotation), and the current secret is signed anew with the new certificate.

use psonet_core::secagg::masking_key::{
    Epoch, MaskingKeyError, MaskingKeySigner, MaskingSecret, SignedMaskingKey,
};
use psonet_serve::tls::TlsFiles;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// How often the node checks whether the month, or its certificate, has changed.
pub const ROTATION_POLL: Duration = Duration::from_secs(60);

/// Why the node cannot sign masking keys with its federation identity.
#[derive(Debug, thiserror::Error)]
pub enum EpochKeyError {
    /// A file could not be read.
    #[error("{key} = {path}: cannot read it: {source}")]
    Read {
        /// Configuration key that names the file.
        key: &'static str,
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate or key cannot sign masking keys.
    #[error(
        "federation.tls: secure aggregation signs masking keys with the federation certificate's key, which must be ECDSA P-256 in PKCS#8 PEM (as `psonet pki` issues): {0}"
    )]
    Signer(MaskingKeyError),
    /// The certificate is another facility's or another network's.
    #[error(
        "federation.tls.cert names {found}, but this node is facility {facility:?} of network {network:?}"
    )]
    OtherIdentity {
        /// What the certificate names.
        found: String,
        /// The configured facility.
        facility: String,
        /// The configured network.
        network: String,
    },
}

/// The current epoch's secret with its signed public key.
pub struct EpochKey {
    /// The secret, shared with the rounds using it; zeroized when the last holder drops it.
    pub secret: Arc<MaskingSecret>,
    /// Its public key, signed for publication.
    pub signed: SignedMaskingKey,
}

/// When the certificate and key files were last modified, to notice a rotation.
type FileStamp = (Option<SystemTime>, Option<SystemTime>);

struct Current {
    signer: MaskingKeySigner,
    stamp: FileStamp,
    secret: Option<Arc<MaskingSecret>>,
    signed: Option<SignedMaskingKey>,
}

/// The node's masking keys, epoch after epoch.
pub struct EpochKeys {
    files: TlsFiles,
    facility: String,
    network: String,
    current: Mutex<Current>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, EpochKeyError> {
    std::fs::read(path).map_err(|source| EpochKeyError::Read {
        key,
        path: path.display().to_string(),
        source,
    })
}

impl EpochKeys {
    /// Keys signed with the federation identity in `files`, which must name `facility` of
    /// `network`. Fails at start, naming the file, when it cannot sign.
    pub fn load(files: &TlsFiles, facility: &str, network: &str) -> Result<Self, EpochKeyError> {
        let (signer, stamp) = Self::signer(files, facility, network)?;
        Ok(Self {
            files: files.clone(),
            facility: facility.to_string(),
            network: network.to_string(),
            current: Mutex::new(Current {
                signer,
                stamp,
                secret: None,
                signed: None,
            }),
        })
    }

    fn signer(
        files: &TlsFiles,
        facility: &str,
        network: &str,
    ) -> Result<(MaskingKeySigner, FileStamp), EpochKeyError> {
        let stamp = (modified(&files.cert), modified(&files.key));
        let cert = read("federation.tls.cert", &files.cert)?;
        let key = read("federation.tls.key", &files.key)?;
        let signer = MaskingKeySigner::from_pem(&cert, &key).map_err(EpochKeyError::Signer)?;
        if signer.facility() != facility || signer.network() != network {
            return Err(EpochKeyError::OtherIdentity {
                found: psonet_core::secagg::masking_key::facility_uri(
                    signer.network(),
                    signer.facility(),
                ),
                facility: facility.to_string(),
                network: network.to_string(),
            });
        }
        Ok((signer, stamp))
    }

    /// The key of the current epoch, made (and the previous one released) when the month has
    /// changed, and signed again when the certificate files have.
    pub fn current(&self) -> Result<EpochKey, MaskingKeyError> {
        let epoch = Epoch::current();
        let mut c = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let stamp = (modified(&self.files.cert), modified(&self.files.key));
        if stamp != c.stamp {
            match Self::signer(&self.files, &self.facility, &self.network) {
                Ok((signer, stamp)) => {
                    c.signer = signer;
                    c.stamp = stamp;
                    c.signed = None;
                    tracing::info!("federation certificate changed: masking key signed anew");
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "federation certificate changed but cannot sign masking keys; keeping the previous one"
                ),
            }
        }
        let secret = match &c.secret {
            Some(s) if s.epoch() == epoch => s.clone(),
            _ => {
                let fresh = Arc::new(MaskingSecret::generate(epoch)?);
                if c.secret.is_some() {
                    tracing::info!(%epoch, "new masking epoch: the previous masking key is released");
                }
                c.secret = Some(fresh.clone());
                c.signed = None;
                fresh
            }
        };
        let signed = match &c.signed {
            Some(s) => s.clone(),
            None => {
                let s = c.signer.sign(&secret)?;
                c.signed = Some(s.clone());
                s
            }
        };
        Ok(EpochKey { secret, signed })
    }
}

/// Keeps `keys` current in the background until `stopped`: every [`ROTATION_POLL`], the key of
/// the month is made if the month has changed (releasing the previous secret) and signed again
/// if the certificate has.
pub fn rotate_in_background(
    keys: Arc<EpochKeys>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tokio::spawn(async move {
        tokio::pin!(stopped);
        let mut ticks = tokio::time::interval(ROTATION_POLL);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = ticks.tick() => {}
            }
            if let Err(e) = keys.current() {
                tracing::warn!(error = %e, "the masking key could not be renewed");
            }
        }
    });
}
