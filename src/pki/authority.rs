//! A development certificate authority: it issues identities and writes them as directories.
//!
//! Each identity is a directory holding `ca.pem`, `cert.pem` and `key.pem`, which is what every
//! psonet config and client takes. Principals are SPIFFE-style URI SANs
//! (`spiffe://<network>/gateway`, `/facility/<id>`, `/partner/<id>`).

use anyhow::{Context, Result, bail};
use psonet_core::month::Month;
use psonet_serve::identity::{Principal, check_name};
use psonet_serve::private_files;
use psonet_serve::tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, date_time_ymd,
};
use std::path::Path;

/// What a certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A listener only (a node's server certificate).
    Server,
    /// A client only (a facility's local client, a partner).
    Client,
    /// Both (the gateway serves partners and calls nodes).
    ServerAndClient,
}

/// A network's certificate authority, in memory.
pub struct Authority {
    network: String,
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    ca_key_pem: String,
    years: i32,
}

/// A certificate and its key, PEM encoded.
pub struct IssuedIdentity {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

impl Authority {
    /// A new CA for `network`, valid from the start of last month for `years` years. Its name
    /// carries a random tag so two CAs of one network never share a distinguished name.
    pub fn new(network: &str, years: i32) -> Result<Self> {
        check_name(network).context("--network")?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(
            DnType::CommonName,
            format!("psonet {network} network CA {:08x}", rand::random::<u32>()),
        );
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, years);
        let ca_pem = params.self_signed(&key)?.pem();
        let ca_key_pem = key.serialize_pem();
        Ok(Self {
            network: network.to_string(),
            issuer: Issuer::new(params, key),
            ca_pem,
            ca_key_pem,
            years,
        })
    }

    /// The CA that `pki init` (or a site) left in `dir` as `ca.pem` and `ca.key`, to issue more
    /// identities of the same network without re-keying the others.
    pub fn load(dir: &Path, network: &str, years: i32) -> Result<Self> {
        check_name(network).context("--network")?;
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        let (ca_pem, ca_key_pem) = (read("ca.pem")?, read("ca.key")?);
        let key = KeyPair::from_pem(&ca_key_pem).context("ca.key is not a PEM private key")?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, key)
            .context("ca.pem is not a CA certificate for ca.key")?;
        Ok(Self {
            network: network.to_string(),
            issuer,
            ca_pem,
            ca_key_pem,
            years,
        })
    }

    /// The CA certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The network (SPIFFE trust domain) whose principals this CA names.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Issues a certificate for `principal`; `hosts` (DNS names or IP addresses) go into the
    /// SANs of server certificates.
    pub fn issue(
        &self,
        principal: &Principal,
        usage: Usage,
        hosts: &[String],
    ) -> Result<IssuedIdentity> {
        if principal.network != self.network {
            bail!("{principal} is not in network {}", self.network);
        }
        let names = if usage == Usage::Client {
            Vec::new()
        } else {
            hosts.to_vec()
        };
        let mut params = CertificateParams::new(names)?;
        params
            .subject_alt_names
            .push(SanType::URI(principal.uri().try_into()?));
        params
            .distinguished_name
            .push(DnType::CommonName, principal.uri());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        set_validity(&mut params, self.years);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes an identity directory (0700; `ca.pem`, `cert.pem`, and `key.pem` readable by the
    /// owner only, whatever the umask) and returns its TLS file paths.
    pub fn write_identity(&self, dir: &Path, identity: &IssuedIdentity) -> Result<TlsFiles> {
        private_files::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        write(&files.ca, &self.ca_pem)?;
        write(&files.cert, &identity.cert_pem)?;
        write_private(&files.key, &identity.key_pem)?;
        Ok(files)
    }

    /// Writes the CA certificate and its key (keep `ca.key` offline in a real network).
    pub fn write_ca(&self, out: &Path) -> Result<()> {
        write(&out.join("ca.pem"), &self.ca_pem)?;
        write_private(&out.join("ca.key"), &self.ca_key_pem)
    }
}

fn set_validity(params: &mut CertificateParams, years: i32) {
    let now = Month::current();
    let start = now.minus(1);
    params.not_before = date_time_ymd(start.year() as i32, start.month() as u8, 1);
    params.not_after = date_time_ymd(now.year() as i32 + years, now.month() as u8, 1);
}

pub(super) fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes a private key: 0600 whatever the umask, and whatever mode a file it replaces had.
fn write_private(path: &Path, text: &str) -> Result<()> {
    private_files::write(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_name_their_principal() {
        let ca = Authority::new("testnet", 1).unwrap();
        let p = Principal::facility("testnet", "f1");
        let issued = ca.issue(&p, Usage::Server, &["localhost".into()]).unwrap();
        let der = rustls_pemfile_der(&issued.cert_pem);
        assert_eq!(Principal::from_certificate_der(&der).unwrap(), p);
        assert!(
            ca.issue(&Principal::gateway("other"), Usage::Client, &[])
                .is_err()
        );
    }

    fn rustls_pemfile_der(pem: &str) -> Vec<u8> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }
}
