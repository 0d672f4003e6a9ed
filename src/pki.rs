//! `psonet pki init`: a development certificate authority and every identity a network needs.
//!
//! Each identity is a directory holding `ca.pem`, `cert.pem` and `key.pem`, which is what every
//! psonet config and client takes. Principals are SPIFFE-style URI SANs
//! (`spiffe://<network>/gateway`, `/facility/<id>`, `/partner/<id>`). Production sites bring
//! their own CA; these certificates are for demos, tests and pilots.

use anyhow::{Context, Result, bail};
use psonet_core::month::Month;
use psonet_serve::identity::{Principal, check_name};
use psonet_serve::tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, date_time_ymd,
};
use std::path::{Path, PathBuf};

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

    /// Writes an identity directory (`ca.pem`, `cert.pem`, `key.pem` readable by the owner
    /// only) and returns its TLS file paths.
    pub fn write_identity(&self, dir: &Path, identity: &IssuedIdentity) -> Result<TlsFiles> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
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

    /// Issues facility `id`'s node (server) and local-client identities under `out/<id>` and
    /// writes its `node.toml` listening on loopback `ports` (local, federation).
    pub fn write_facility(
        &self,
        out: &Path,
        id: &str,
        hosts: &[String],
        (local, federation): (u16, u16),
    ) -> Result<FacilityLayout> {
        let dir = out.join(id);
        let principal = Principal::facility(&self.network, id);
        let node_tls = self.write_identity(
            &dir.join("node"),
            &self.issue(&principal, Usage::Server, hosts)?,
        )?;
        let client_identity = dir.join("client");
        self.write_identity(
            &client_identity,
            &self.issue(&principal, Usage::Client, &[])?,
        )?;
        let node_config = dir.join("node.toml");
        let text =
            crate::example_config::node(&self.network, id, local, federation, &node_tls, &dir)?;
        write(&node_config, &text)?;
        Ok(FacilityLayout {
            id: id.to_string(),
            node_config,
            client_identity,
        })
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

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Where `psonet pki init` put one facility's files.
#[derive(Debug, Clone)]
pub struct FacilityLayout {
    /// Facility id.
    pub id: String,
    /// Its node's config file.
    pub node_config: PathBuf,
    /// Identity directory of its local clients (submit, import, read back).
    pub client_identity: PathBuf,
}

/// Everything `psonet pki init` wrote.
#[derive(Debug, Clone)]
pub struct NetworkLayout {
    /// The output directory.
    pub out: PathBuf,
    /// The gateway's config file.
    pub gateway_config: PathBuf,
    /// Identity directory of the partner client.
    pub partner_identity: PathBuf,
    /// Each facility's files.
    pub facilities: Vec<FacilityLayout>,
}

/// Options of `psonet pki init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Network name.
    pub network: String,
    /// Output directory.
    pub out: PathBuf,
    /// Facility ids.
    pub facilities: Vec<String>,
    /// Extra host names or addresses for server certificates (besides localhost, 127.0.0.1).
    pub hosts: Vec<String>,
    /// First port of the example configs; `None` writes port 0 (pick a free port) everywhere.
    pub base_port: Option<u16>,
    /// Years the certificates are valid.
    pub years: i32,
}

/// Options of `psonet pki add-facility`.
#[derive(Debug, Clone)]
pub struct AddFacilityOptions {
    /// Directory holding the network's `ca.pem` and `ca.key`.
    pub ca_dir: PathBuf,
    /// Network name.
    pub network: String,
    /// The new facility's id.
    pub facility: String,
    /// Host names or addresses the node is reached at (besides localhost, 127.0.0.1).
    pub hosts: Vec<String>,
    /// Ports of the node's local and federation listeners.
    pub ports: (u16, u16),
    /// Years the certificates are valid.
    pub years: i32,
}

/// Issues a node and a client identity for one more facility of an existing network, with its
/// `node.toml`, under `<ca_dir>/<facility>`; the gateway's registry needs the entry
/// [`registry_entry`] prints. Refuses a facility that already has files there.
pub fn add_facility(options: &AddFacilityOptions) -> Result<FacilityLayout> {
    let id = &options.facility;
    check_name(id).with_context(|| format!("facility id {id:?}"))?;
    let dir = options.ca_dir.join(id);
    if dir.exists() {
        bail!(
            "{} already exists: facility {id} has identities",
            dir.display()
        );
    }
    let ca = Authority::load(&options.ca_dir, &options.network, options.years)?;
    ca.write_facility(
        &options.ca_dir,
        id,
        &server_hosts(&options.hosts),
        options.ports,
    )
}

/// The names every server certificate carries: loopback, then `extra`.
fn server_hosts(extra: &[String]) -> Vec<String> {
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    hosts.extend(extra.iter().cloned());
    hosts
}

/// The `[[facilities]]` entry a gateway needs for a node reached at `host:federation_port`.
pub fn registry_entry(id: &str, host: &str, federation_port: u16) -> String {
    format!("[[facilities]]\nid = \"{id}\"\nendpoint = \"https://{host}:{federation_port}\"\n")
}

/// Creates the CA, every identity and example configs under `options.out`.
pub fn init(options: &InitOptions) -> Result<NetworkLayout> {
    let out = &options.out;
    if out.join("ca.pem").exists() {
        bail!(
            "{} already holds a CA; choose another --out or remove it",
            out.display()
        );
    }
    for id in &options.facilities {
        check_name(id).with_context(|| format!("facility id {id:?}"))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let ca = Authority::new(&options.network, options.years)?;
    ca.write_ca(out)?;
    let hosts = server_hosts(&options.hosts);
    let net = &options.network;
    let port = |offset: u16| options.base_port.map_or(0, |base| base + offset);

    let mut facilities = Vec::new();
    let mut registry = Vec::new();
    for (i, id) in options.facilities.iter().enumerate() {
        let (local, federation) = (port(10 * (i as u16 + 1) + 1), port(10 * (i as u16 + 1) + 2));
        registry.push((id.clone(), format!("https://127.0.0.1:{federation}")));
        facilities.push(ca.write_facility(out, id, &hosts, (local, federation))?);
    }
    let gateway_dir = out.join("gateway");
    let gateway_tls = ca.write_identity(
        &gateway_dir,
        &ca.issue(&Principal::gateway(net), Usage::ServerAndClient, &hosts)?,
    )?;
    let gateway_config = out.join("gateway.toml");
    write(
        &gateway_config,
        &crate::example_config::gateway(net, port(0), &gateway_tls, out, &registry)?,
    )?;
    let partner_identity = out.join("partner");
    ca.write_identity(
        &partner_identity,
        &ca.issue(&Principal::partner(net, "analyst"), Usage::Client, &[])?,
    )?;
    Ok(NetworkLayout {
        out: out.clone(),
        gateway_config,
        partner_identity,
        facilities,
    })
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
