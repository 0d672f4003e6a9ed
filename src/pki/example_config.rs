//! Ready-to-run configuration files, written from the same typed structs the servers load, so
//! an example can never drift from what the loader accepts.

use anyhow::Result;
use psonet_gateway::config::LinksConfig;
use psonet_gateway::config::{FacilityEntry, FanoutConfig, GatewayConfig, GatewayDisclosureConfig};
use psonet_gateway::peer_group::PeerAttributesConfig;
use psonet_node::config::{
    DisclosureConfig, FederationConfig, ListenerConfig, NodeConfig, StoreConfig,
};
use psonet_serve::tls::TlsFiles;
use std::net::SocketAddr;
use std::path::Path;

/// A node config; paths are written relative to `dir`, where the file goes.
pub fn node(
    network: &str,
    id: &str,
    (local, federation): (u16, u16),
    link: u16,
    tls: &TlsFiles,
    dir: &Path,
) -> Result<String> {
    let link_host = format!("localhost:{link}");
    let tls = relative(tls, dir);
    let config = NodeConfig {
        facility_id: id.to_string(),
        network: network.to_string(),
        data_dir: "data".into(),
        local: ListenerConfig {
            listen: loopback(local),
            tls: tls.clone(),
        },
        federation: FederationConfig {
            listen: Some(loopback(federation)),
            tls,
        },
        gateway_link: None,
        disclosure: DisclosureConfig::default(),
        privacy: Default::default(),
        policy: Default::default(),
        store: StoreConfig::default(),
        secure_aggregation: Default::default(),
        metrics_listen: None,
        guidance: None,
    };
    Ok(format!(
        "# psonet facility node {id}. Start with: psonet node --config {}\n\
         # The local listener serves this facility's own systems; the federation listener only\n\
         # the PSO gateway. Paths are relative to this file.\n\
         # Behind a firewall that allows no inbound port, let the node dial out to the gateway\n\
         # instead: remove `listen` under [federation] and add\n\
         #   [gateway_link]\n\
         #   endpoint = \"https://{link_host}\"\n\
         # (and drop this facility's `endpoint` from the gateway's registry).\n\
         # To pull the PSO's guidance (see `psonet guidance`), add at the end of this file:\n\
         #   [guidance]\n\
         #   gateway = \"127.0.0.1:7100\"\n\
         #   tls = {{ ca = \"client/ca.pem\", cert = \"client/cert.pem\", key = \"client/key.pem\" }}\n{}",
        dir.join("node.toml").display(),
        toml::to_string(&config)?
    ))
}

/// A gateway config; paths are written relative to `dir`, where the file goes.
pub fn gateway(
    network: &str,
    (port, link): (u16, u16),
    tls: &TlsFiles,
    dir: &Path,
    facilities: &[(String, String)],
) -> Result<String> {
    let config = GatewayConfig {
        network: network.to_string(),
        listen: loopback(port),
        tls: relative(tls, dir),
        link_listen: Some(loopback(link)),
        links: LinksConfig::default(),
        fanout: FanoutConfig::default(),
        disclosure: GatewayDisclosureConfig::default(),
        metrics: Vec::new(),
        facilities: facilities
            .iter()
            .map(|(id, endpoint)| FacilityEntry {
                id: id.clone(),
                endpoint: Some(endpoint.clone()),
                server_name: None,
                peer: PeerAttributesConfig::default(),
            })
            .collect(),
        metrics_listen: None,
        guidance: None,
    };
    Ok(format!(
        "# psonet PSO gateway. Start with: psonet gateway --config {}\n\
         # Paths are relative to this file. Nodes that dial out (no inbound port) link to\n\
         # `link_listen` and are listed without an `endpoint`.\n\
         # Benchmarks: `psonet benchmark --list-metrics` shows the built-in metrics. Add one with\n\
         #   [[metrics]]\n\
         #   id = \"vte\"\n\
         #   name = \"Venous thromboembolism\"\n\
         #   denominator = \"admissions\"\n\
         #   multiplier = 1000\n\
         #   unit = \"per 1,000 admissions\"\n\
         #   numerator = {{ categories = [\"vte\"] }}\n\
         # and give each facility its peer-group attributes, e.g.\n\
         #   peer = {{ beds = 320, teaching = \"major\", facility_type = \"general_acute\", region = \"midwest\", urbanicity = \"urban\" }}\n\
         # Guidance (alerts, best practices): a directory of Markdown files with front matter,\n\
         # reloaded on change or SIGHUP; add at the end of this file\n\
         #   [guidance]\n\
         #   dir = \"guidance\"\n{}",
        dir.join("gateway.toml").display(),
        toml::to_string(&config)?
    ))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn relative(tls: &TlsFiles, dir: &Path) -> TlsFiles {
    let rel = |p: &Path| {
        p.strip_prefix(dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| p.to_path_buf())
    };
    TlsFiles {
        ca: rel(&tls.ca),
        cert: rel(&tls.cert),
        key: rel(&tls.key),
    }
}
