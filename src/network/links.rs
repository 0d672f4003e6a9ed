//! Nodes that dial out, on loopback: where the gateway's link listener is, the hosts file that
//! names it, and the network's own link acceptor.
//!
//! Every node that dials out links to `gateway.psonet.test` on one port. The name resolves
//! through a hosts file in the network's directory (the node's `gateway_link.hosts_file`), which
//! lists one loopback address per gateway replica — 127.0.0.1 for a single gateway, 127.0.0.2
//! and 127.0.0.3 for two replicas behind the one name — so a node keeps one link per replica
//! exactly as it would behind a Kubernetes headless Service. Rewriting the file moves the
//! replicas; nodes see it at their next resolution (every second here).
//!
//! A test or a measurement that calls a node's federation API *as the gateway* cannot dial a
//! node that has no listener. The network then runs a link acceptor of its own, in this
//! process, on one more address of the name: the nodes link to it as to one more gateway
//! replica, and [`LinkPlan::console`] hands out the channel over a node's link to it.

use crate::pki::NetworkLayout;
use anyhow::{Context, Result};
use psonet_gateway::link::listener::LinkAcceptor;
use psonet_gateway::link::table::LinkTable;
use psonet_node::config::GatewayLinkConfig;
use psonet_serve::link::{DEFAULT_KEEPALIVE_INTERVAL_MS, DEFAULT_KEEPALIVE_TIMEOUT_MS, Keepalive};
use psonet_serve::listener::{Shutdown, bind};
use psonet_serve::metrics::Metrics;
use psonet_serve::security_log::SecurityLog;
use psonet_serve::tls::{ReloadableIdentity, TlsFiles};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::OnceCell;
use tonic::transport::Channel;

/// The name nodes dial; the gateway's certificate carries `localhost`, which the nodes check.
pub const GATEWAY_HOST: &str = "gateway.psonet.test";

/// The loopback address of the network's own link acceptor.
const CONSOLE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);

/// The longest a node may take to link to the network's own acceptor.
const LINK_WAIT: Duration = Duration::from_secs(15);

/// The link port, the hosts file and who listens behind the name.
pub struct LinkPlan {
    port: u16,
    hosts_file: PathBuf,
    gateways: Mutex<Vec<IpAddr>>,
    console: OnceCell<Console>,
}

/// The network's own link acceptor, presenting the gateway's identity.
struct Console {
    table: Arc<LinkTable>,
    shutdown: Shutdown,
}

impl Drop for Console {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

impl LinkPlan {
    /// A free port for the link listeners and an empty hosts file in `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        let probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("finding a free port for the link listener")?;
        let port = probe.local_addr()?.port();
        drop(probe);
        let plan = Self {
            port,
            hosts_file: dir.join("hosts"),
            gateways: Mutex::new(Vec::new()),
            console: OnceCell::new(),
        };
        plan.write_hosts()?;
        Ok(plan)
    }

    /// The `[gateway_link]` of a node in this network: quick to redial and to re-resolve, so
    /// tests of breaks and replica rolls take seconds.
    pub fn node_link(&self) -> GatewayLinkConfig {
        GatewayLinkConfig {
            server_name: Some("localhost".into()),
            reconnect_backoff_ms: 100,
            reconnect_backoff_max_ms: 1_000,
            connect_timeout_ms: 2_000,
            resolve_interval_s: 1,
            hosts_file: Some(self.hosts_file.clone()),
            ..GatewayLinkConfig::new(&format!("https://{GATEWAY_HOST}:{}", self.port))
        }
    }

    /// Where the link listener of the gateway on `ip` listens.
    pub fn link_listen(&self, ip: IpAddr) -> SocketAddr {
        SocketAddr::new(ip, self.port)
    }

    /// Puts the gateways on `ips` behind the name (replacing those there before).
    pub fn set_gateways(&self, ips: Vec<IpAddr>) -> Result<()> {
        *self.gateways.lock().unwrap_or_else(PoisonError::into_inner) = ips;
        self.write_hosts()
    }

    /// No gateway behind the name (the one running accepts no links): the nodes that dial out
    /// are parked on the network's own acceptor, linked and idle, rather than redialling a
    /// gateway that will not answer.
    pub async fn park(&self, layout: &NetworkLayout) -> Result<()> {
        self.start_console(layout).await?;
        self.set_gateways(Vec::new())
    }

    fn write_hosts(&self) -> Result<()> {
        let console = self.console.initialized().then_some(IpAddr::V4(CONSOLE_IP));
        let gateways = self.gateways.lock().unwrap_or_else(PoisonError::into_inner);
        let ips: BTreeSet<IpAddr> = gateways.iter().copied().chain(console).collect();
        let text: String = ips
            .iter()
            .map(|ip| format!("{ip} {GATEWAY_HOST}\n"))
            .collect();
        let temporary = self.hosts_file.with_extension("new");
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, &self.hosts_file))
            .with_context(|| format!("writing {}", self.hosts_file.display()))
    }

    /// The channel over `facility`'s link to the network's own acceptor, starting the acceptor
    /// (and putting it behind the name) on first use.
    pub async fn console(&self, layout: &NetworkLayout, facility: &str) -> Result<Channel> {
        self.start_console(layout)
            .await?
            .table
            .wait_for(facility, LINK_WAIT)
            .await
            .with_context(|| format!("waiting {LINK_WAIT:?} for facility {facility} to link"))
    }

    /// The network's own acceptor, started (and put behind the name) on first use.
    async fn start_console(&self, layout: &NetworkLayout) -> Result<&Console> {
        let console = self
            .console
            .get_or_try_init(|| self.new_console(layout))
            .await?;
        self.write_hosts()?;
        Ok(console)
    }

    async fn new_console(&self, layout: &NetworkLayout) -> Result<Console> {
        let dir = layout.out.join("gateway");
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        let identity = ReloadableIdentity::load(&files, "gateway identity")?;
        let facilities: Vec<String> = layout.facilities.iter().map(|f| f.id.clone()).collect();
        let table = LinkTable::new(facilities.clone(), facilities.clone());
        let acceptor = LinkAcceptor {
            identity,
            network: network_of(layout)?,
            facilities,
            keepalive: Keepalive::from_ms(
                DEFAULT_KEEPALIVE_INTERVAL_MS,
                DEFAULT_KEEPALIVE_TIMEOUT_MS,
            ),
            table: table.clone(),
            log: SecurityLog::new("links", &Metrics::new()),
        };
        let shutdown = Shutdown::new();
        let listener = bind(
            SocketAddr::new(IpAddr::V4(CONSOLE_IP), self.port),
            "the network's link acceptor",
        )
        .await?;
        acceptor.serve(listener, &shutdown)?;
        Ok(Console { table, shutdown })
    }
}

/// The network a layout was issued for, read back from its gateway's config.
fn network_of(layout: &NetworkLayout) -> Result<String> {
    let text = std::fs::read_to_string(&layout.gateway_config)
        .with_context(|| format!("reading {}", layout.gateway_config.display()))?;
    let config: psonet_gateway::GatewayConfig = toml::from_str(&text)
        .with_context(|| format!("reading {}", layout.gateway_config.display()))?;
    Ok(config.network)
}
