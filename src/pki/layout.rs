//! The files of a network: what `psonet pki init` and `psonet pki add-facility` write, and where.
//!
//! A CA, then per facility a node identity, a local-client identity and a `node.toml`; a gateway
//! identity and `gateway.toml` with the registry; a partner identity. The configs are complete
//! examples, listening on loopback.

use super::authority::{Authority, Usage, write};
use super::example_config;
use anyhow::{Context, Result, bail};
use psonet_serve::identity::{Principal, check_name};
use std::path::{Path, PathBuf};

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
    /// Host names or addresses, each for the one server certificate it belongs on (every
    /// server certificate also names localhost and 127.0.0.1).
    pub hosts: Vec<HostName>,
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
    /// Port of the gateway's link listener, for the commented example in `node.toml`.
    pub link_port: u16,
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
        options.link_port,
    )
}

/// Where the example gateway's link listener is, from the first port: facility i uses
/// `base + 10i + 1` and `+ 2`, so `base + 43` is never one of theirs.
pub const LINK_OFFSET: u16 = 43;

/// The names a server certificate carries: loopback, then `extra`.
fn server_hosts(extra: &[String]) -> Vec<String> {
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    hosts.extend(extra.iter().cloned());
    hosts
}

/// Whose server certificate a host name goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOwner {
    /// The gateway's.
    Gateway,
    /// One facility's node.
    Facility(String),
}

/// A host name (or address) and the one server certificate that carries it, written
/// `OWNER=NAME` on the command line (`gateway=pso.example.org`,
/// `facility-1=node1.example.org`).
///
/// A name on every certificate would let any server answer for any other: the gateway's TLS
/// check of the name dialled would pass whichever node answered. So a name belongs to one
/// identity, and saying which is not optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName {
    /// Whose certificate it goes on.
    pub owner: HostOwner,
    /// The DNS name or IP address.
    pub name: String,
}

impl std::str::FromStr for HostName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let Some((owner, name)) = text.split_once('=') else {
            return Err(format!(
                "{text:?} does not say whose certificate it goes on: write gateway={text} or \
                 <facility id>={text} (each host name goes on one server certificate only)"
            ));
        };
        if name.is_empty() {
            return Err(format!("{text:?} names no host after '='"));
        }
        let owner = match owner {
            "gateway" => HostOwner::Gateway,
            id => {
                check_name(id).map_err(|e| format!("{text:?}: {e}"))?;
                HostOwner::Facility(id.to_string())
            }
        };
        Ok(Self {
            owner,
            name: name.to_string(),
        })
    }
}

/// The names `owner`'s server certificate carries: loopback, then its own from `hosts`.
fn hosts_of(hosts: &[HostName], owner: &HostOwner) -> Vec<String> {
    let own: Vec<String> = hosts
        .iter()
        .filter(|h| &h.owner == owner)
        .map(|h| h.name.clone())
        .collect();
    server_hosts(&own)
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
    for host in &options.hosts {
        if let HostOwner::Facility(id) = &host.owner
            && !options.facilities.contains(id)
        {
            bail!(
                "--host {id}={}: {id} is not a facility of this network (facilities: {})",
                host.name,
                options.facilities.join(", ")
            );
        }
    }
    psonet_serve::private_files::create_dir(out)
        .with_context(|| format!("creating {}", out.display()))?;
    let ca = Authority::new(&options.network, options.years)?;
    ca.write_ca(out)?;
    let net = &options.network;
    let port = |offset: u16| options.base_port.map_or(0, |base| base + offset);

    let mut facilities = Vec::new();
    let mut registry = Vec::new();
    for (i, id) in options.facilities.iter().enumerate() {
        let (local, federation) = (port(10 * (i as u16 + 1) + 1), port(10 * (i as u16 + 1) + 2));
        registry.push((id.clone(), format!("https://127.0.0.1:{federation}")));
        let hosts = hosts_of(&options.hosts, &HostOwner::Facility(id.clone()));
        facilities.push(ca.write_facility(
            out,
            id,
            &hosts,
            (local, federation),
            port(LINK_OFFSET),
        )?);
    }
    let gateway_dir = out.join("gateway");
    let gateway_tls = ca.write_identity(
        &gateway_dir,
        &ca.issue(
            &Principal::gateway(net),
            Usage::ServerAndClient,
            &hosts_of(&options.hosts, &HostOwner::Gateway),
        )?,
    )?;
    let gateway_config = out.join("gateway.toml");
    write(
        &gateway_config,
        &example_config::gateway(
            net,
            (port(0), port(LINK_OFFSET)),
            &gateway_tls,
            out,
            &registry,
        )?,
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

impl Authority {
    /// Issues facility `id`'s node and local-client identities under `out/<id>` and writes its
    /// `node.toml` listening on loopback `ports` (local, federation). The node's certificate
    /// serves the federation listener and is presented when the node dials out to the
    /// gateway's link listener (on loopback `link`, as the config's comment shows), so it is
    /// issued for both uses.
    pub fn write_facility(
        &self,
        out: &Path,
        id: &str,
        hosts: &[String],
        ports: (u16, u16),
        link: u16,
    ) -> Result<FacilityLayout> {
        let dir = out.join(id);
        let principal = Principal::facility(self.network(), id);
        let node_tls = self.write_identity(
            &dir.join("node"),
            &self.issue(&principal, Usage::ServerAndClient, hosts)?,
        )?;
        let client_identity = dir.join("client");
        self.write_identity(
            &client_identity,
            &self.issue(&principal, Usage::Client, &[])?,
        )?;
        let node_config = dir.join("node.toml");
        let text = example_config::node(self.network(), id, ports, link, &node_tls, &dir)?;
        write(&node_config, &text)?;
        Ok(FacilityLayout {
            id: id.to_string(),
            node_config,
            client_identity,
        })
    }
}
