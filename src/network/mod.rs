//! A psonet network on loopback, started the way a user starts one.
//!
//! Certificates and configs come from [`pki::init`], exactly as
//! `psonet pki init` writes them; each node starts on its `node.toml`, the gateway on
//! `gateway.toml` with the nodes' real addresses in its registry. Servers run either inside this
//! process or as real `psonet node` / `psonet gateway` processes ([`Servers`]), on real mTLS
//! listeners and real sled stores in a temporary directory that goes when the network does.
//! Each node is reached as [`Reach`] says: the gateway dials its federation listener, or the
//! node dials out to the gateway's link listener and has no federation listener at all (see
//! [`links`]), or both; one gateway or several replicas behind one name.
//! `psonet demo`, `psonet bench`, `bench-load`, `bench-fanout` and the end-to-end tests all
//! start their networks here:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use psonet::network::{Network, Servers};
//! let mut net = Network::builder("demo").facilities(3).servers(Servers::InProcess).start().await?;
//! net.start_gateway(|config| config.disclosure.min_facilities = 3).await?;
//! let mut client = net.benchmark_client()?;
//! # Ok(()) }
//! ```

mod gateway;
pub mod links;
mod node;
mod server_process;

pub use gateway::Gateway;
pub use node::Node;
pub use server_process::{Launcher, ServerProcess};

use crate::client;
use crate::pki::{self, InitOptions, NetworkLayout};
use crate::synth::{self, SynthOptions};
use anyhow::{Context, Result, bail};
use links::LinkPlan;
use psonet_core::pb::{
    self, aggregate_service_client::AggregateServiceClient,
    benchmark_service_client::BenchmarkServiceClient,
};
use psonet_gateway::GatewayConfig;
use psonet_node::NodeConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;
use tonic::transport::Channel;

/// Where a network's servers run.
#[derive(Debug, Clone)]
pub enum Servers {
    /// On this process's async runtime: nothing to find on disk, quick to start.
    InProcess,
    /// As `psonet` processes of their own, each with its own memory, stopped and crashed with
    /// signals as a deployed server is.
    Processes(Launcher),
}

/// The longest [`Network::start_gateway`] waits for nodes that dial out to link.
const LINK_WAIT: Duration = Duration::from_secs(10);

/// A change to every node's config before it starts.
type NodeEdit = Box<dyn Fn(&mut NodeConfig) + Send + Sync>;

/// How the gateway reaches a node's federation API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The gateway dials the node's federation listener (the node opens an inbound port).
    Listens,
    /// The node dials out to the gateway's link listener and serves over that link; it binds
    /// no federation listener at all (a node behind a hospital firewall).
    DialsOut,
    /// Both: a listener, and a link the gateway prefers while it is up.
    Both,
}

impl Reach {
    /// Whether the node binds a federation listener.
    pub fn listens(self) -> bool {
        self != Reach::DialsOut
    }

    /// Whether the node dials out to the gateway.
    pub fn dials_out(self) -> bool {
        self != Reach::Listens
    }
}

/// Node `i`'s reach.
type ReachOf = Box<dyn Fn(usize) -> Reach + Send + Sync>;

/// What network to start: see [`Network::builder`].
pub struct NetworkBuilder {
    name: String,
    facilities: Vec<String>,
    node_edit: Option<NodeEdit>,
    reach: ReachOf,
    nodes: Servers,
    gateway: Servers,
}

impl NetworkBuilder {
    /// `count` facilities, named `facility-1` to `facility-<count>`.
    pub fn facilities(mut self, count: usize) -> Self {
        self.facilities = (1..=count).map(|i| format!("facility-{i}")).collect();
        self
    }

    /// Facilities with these ids.
    pub fn facility_ids(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.facilities = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Where the nodes and the gateway run (in this process unless said otherwise).
    pub fn servers(mut self, servers: Servers) -> Self {
        self.nodes = servers.clone();
        self.gateway = servers;
        self
    }

    /// Where the gateway runs, when it differs from the nodes (e.g. the nodes in this process
    /// and the gateway in its own, so its memory and CPU time are its own).
    pub fn gateway_servers(mut self, servers: Servers) -> Self {
        self.gateway = servers;
        self
    }

    /// How the gateway reaches every node (it dials their listeners unless said otherwise).
    pub fn reach(mut self, reach: Reach) -> Self {
        self.reach = Box::new(move |_| reach);
        self
    }

    /// How the gateway reaches node `i` (e.g. a mixed network: some listen, some dial out).
    pub fn reach_each(mut self, reach: impl Fn(usize) -> Reach + Send + Sync + 'static) -> Self {
        self.reach = Box::new(reach);
        self
    }

    /// Changes every node's `node.toml` before the node first starts (after its reach has
    /// been written into it, so an edit may tune the link too).
    pub fn node_config(mut self, edit: impl Fn(&mut NodeConfig) + Send + Sync + 'static) -> Self {
        self.node_edit = Some(Box::new(edit));
        self
    }

    /// Issues the certificates and starts every node, one after the other; the gateway comes
    /// with [`Network::start_gateway`].
    pub async fn start(self) -> Result<Network> {
        let dir = tempfile::tempdir().context("creating the network's directory")?;
        let layout = pki::init(&InitOptions {
            network: self.name,
            out: dir.path().join("pki"),
            facilities: self.facilities,
            hosts: Vec::new(),
            base_port: None,
            years: 1,
        })?;
        let reaches: Vec<Reach> = (0..layout.facilities.len()).map(&self.reach).collect();
        let links = match reaches.iter().any(|r| r.dials_out()) {
            true => Some(LinkPlan::new(dir.path())?),
            false => None,
        };
        let mut nodes = Vec::new();
        for (facility, &reach) in layout.facilities.iter().zip(&reaches) {
            rewrite_config(&facility.node_config, |config: &mut NodeConfig| {
                if !reach.listens() {
                    config.federation.listen = None;
                }
                if let Some(links) = links.as_ref().filter(|_| reach.dials_out()) {
                    config.gateway_link = Some(links.node_link());
                }
                if let Some(edit) = &self.node_edit {
                    edit(config);
                }
            })?;
            nodes.push(Node::start_new(facility, reach, &self.nodes, dir.path()).await?);
        }
        Ok(Network {
            dir,
            layout,
            nodes,
            gateways: Vec::new(),
            gateway_servers: self.gateway,
            links,
        })
    }
}

/// A network's files, its nodes and, once started, its gateway.
pub struct Network {
    dir: TempDir,
    /// Everything `pki init` wrote: configs and identity directories.
    pub layout: NetworkLayout,
    /// The facility nodes, in the order of their facilities.
    pub nodes: Vec<Node>,
    gateways: Vec<Gateway>,
    gateway_servers: Servers,
    links: Option<LinkPlan>,
}

impl Network {
    /// A network named `name` (the SPIFFE trust domain of its certificates).
    pub fn builder(name: &str) -> NetworkBuilder {
        NetworkBuilder {
            name: name.into(),
            facilities: Vec::new(),
            node_edit: None,
            reach: Box::new(|_| Reach::Listens),
            nodes: Servers::InProcess,
            gateway: Servers::InProcess,
        }
    }

    /// The network's temporary directory (certificates, configs, data, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the gateway with the nodes' real addresses in its registry, after `adjust` has had
    /// its say on the configuration (deadlines, release rule, peer attributes, fewer
    /// facilities). Nodes that dial out are listed without an endpoint, and the gateway's link
    /// listener is put behind the name they dial. Gateways already running are dropped first
    /// (a process is killed). The config is written beside `gateway.toml` as
    /// `gateway-run.toml`, and the gateway started on that file.
    pub async fn start_gateway(&mut self, adjust: impl FnOnce(&mut GatewayConfig)) -> Result<()> {
        self.gateways.clear();
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let gateway = self.launch_gateway("gateway", ip, &[ip], adjust).await?;
        self.gateways.push(gateway);
        Ok(())
    }

    /// Starts `count` gateway replicas behind the one name nodes dial out to, each on its own
    /// loopback address (127.0.0.2, 127.0.0.3, …) with its own `BenchmarkService` listener,
    /// every one configured as [`Network::start_gateway`] does. Nodes keep one link to each.
    /// Gateways already running are dropped first.
    pub async fn start_replicas(
        &mut self,
        count: u8,
        adjust: impl Fn(&mut GatewayConfig),
    ) -> Result<()> {
        self.gateways.clear();
        let ips: Vec<IpAddr> = (0..count)
            .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + k)))
            .collect();
        for (k, &ip) in ips.iter().enumerate() {
            let name = format!("gateway-{}", k + 1);
            let gateway = self.launch_gateway(&name, ip, &ips, &adjust).await?;
            self.gateways.push(gateway);
        }
        Ok(())
    }

    /// Rolls replica `k` as a Kubernetes rollout would: a new replica starts on a new address
    /// behind the name (the next free 127.0.0.x), then the old one stops gracefully and its
    /// address leaves the name. Nodes link to the new one at their next resolution and drop the
    /// link to the old.
    pub async fn roll_replica(
        &mut self,
        k: usize,
        adjust: impl FnOnce(&mut GatewayConfig),
    ) -> Result<()> {
        let ip_of = |g: &Gateway| g.links().map(|a| a.ip());
        let old = self
            .gateways
            .get(k)
            .and_then(ip_of)
            .context("no such replica")?;
        let last = self
            .gateways
            .iter()
            .filter_map(ip_of)
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) => Some(v4.octets()[3]),
                IpAddr::V6(_) => None,
            })
            .max()
            .unwrap_or(1);
        let new = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last + 1));
        let mut ips: Vec<IpAddr> = self.gateways.iter().filter_map(ip_of).collect();
        ips.push(new);
        let name = format!("gateway-{}", last);
        let gateway = self.launch_gateway(&name, new, &ips, adjust).await?;
        let rolled = std::mem::replace(&mut self.gateways[k], gateway);
        ips.retain(|ip| *ip != old);
        if let Some(links) = &self.links {
            links.set_gateways(ips)?;
        }
        rolled.stop().await
    }

    /// Writes `<name>-run.toml` and starts a gateway on it, its link listener on `ip`, then puts
    /// `behind_name` behind the name nodes dial — or, when `adjust` took the link listener
    /// away, parks those nodes on the network's own acceptor.
    async fn launch_gateway(
        &self,
        name: &str,
        ip: IpAddr,
        behind_name: &[IpAddr],
        adjust: impl FnOnce(&mut GatewayConfig),
    ) -> Result<Gateway> {
        let path = self.layout.out.join(format!("{name}-run.toml"));
        std::fs::copy(&self.layout.gateway_config, &path)
            .with_context(|| format!("writing {}", path.display()))?;
        let (nodes, links) = (&self.nodes, &self.links);
        rewrite_config(&path, |config: &mut GatewayConfig| {
            for (entry, node) in config.facilities.iter_mut().zip(nodes) {
                entry.endpoint = node
                    .federation()
                    .map(|addr| format!("https://127.0.0.1:{}", addr.port()));
            }
            config.link_listen = links.as_ref().map(|links| links.link_listen(ip));
            adjust(config);
        })?;
        let log = match &self.gateway_servers {
            Servers::Processes(launcher) if launcher.logs_to_files() => {
                Some(self.dir().join(format!("{name}.log")))
            }
            _ => None,
        };
        let gateway = Gateway::start(&self.gateway_servers, &path, log.as_deref()).await?;
        if let Some(links) = &self.links {
            match gateway.links() {
                Some(_) => links.set_gateways(behind_name.to_vec())?,
                None => links.park(&self.layout).await?,
            }
        }
        if gateway.links().is_some() {
            self.wait_for_links(&gateway).await;
        }
        Ok(gateway)
    }

    /// Waits (at most [`LINK_WAIT`]) until every facility that reaches `gateway` only by a link
    /// is linked to it, as its `ListLinks` says: a benchmark asked right after the start then
    /// finds every node, as it would on a gateway that has run for a while. A node that cannot
    /// link (a test may make it so) only costs the wait; the benchmark will say why.
    async fn wait_for_links(&self, gateway: &Gateway) {
        let addr = gateway.addr().to_string();
        let until = std::time::Instant::now() + LINK_WAIT;
        let ask = Duration::from_secs(2);
        while std::time::Instant::now() < until {
            match crate::links::list(&addr, &self.layout.partner_identity, ask).await {
                Ok(links) if links.links.iter().all(|link| link.up) => return,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The gateway, once started (the first replica when there are several).
    pub fn gateway(&self) -> Option<&Gateway> {
        self.gateways.first()
    }

    /// Every gateway replica running.
    pub fn gateways(&self) -> &[Gateway] {
        &self.gateways
    }

    /// The gateway's process, when it runs as one.
    pub fn gateway_process(&self) -> Option<&ServerProcess> {
        self.gateway().and_then(Gateway::process)
    }

    /// The gateway's `BenchmarkService` listener.
    pub fn gateway_addr(&self) -> Result<SocketAddr> {
        Ok(self.gateway().context("no gateway running")?.addr())
    }

    /// Stops every gateway gracefully; an error unless each exited cleanly.
    pub async fn stop_gateway(&mut self) -> Result<()> {
        for gateway in self.gateways.drain(..) {
            gateway.stop().await?;
        }
        Ok(())
    }

    /// SIGKILLs every gateway process (a crash); start one again with
    /// [`Network::start_gateway`], on the same ports.
    pub async fn kill_gateway(&mut self) -> Result<()> {
        for gateway in self.gateways.drain(..) {
            gateway.kill().await?;
        }
        Ok(())
    }

    /// The gateway's identity directory (it is also how a test calls a node as the gateway).
    pub fn gateway_identity(&self) -> PathBuf {
        self.layout.out.join("gateway")
    }

    /// A `BenchmarkService` client to the gateway as the network's partner.
    pub fn benchmark_client(&self) -> Result<BenchmarkServiceClient<Channel>> {
        self.benchmark_client_of(0)
    }

    /// A `BenchmarkService` client to gateway replica `k` as the network's partner.
    pub fn benchmark_client_of(&self, k: usize) -> Result<BenchmarkServiceClient<Channel>> {
        let gateway = self.gateways.get(k).context("no such gateway")?;
        let channel = client::channel(&gateway.addr().to_string(), &self.layout.partner_identity)?;
        Ok(BenchmarkServiceClient::new(channel))
    }

    /// A channel to node `i`'s federation API as the gateway: to its federation listener, or,
    /// for a node that only dials out, over its link to the network's own link acceptor (see
    /// [`links`]), waiting for that link to be made.
    pub async fn federation_channel(&self, i: usize) -> Result<Channel> {
        let node = self.nodes.get(i).context("no such node")?;
        match (node.federation(), &self.links) {
            (Some(addr), _) => client::channel(&addr.to_string(), &self.layout.out.join("gateway")),
            (None, Some(links)) => links.console(&self.layout, &node.id).await,
            (None, None) => bail!("node {} neither listens nor dials out", node.id),
        }
    }

    /// An `AggregateService` client to node `i` as the gateway (see
    /// [`Network::federation_channel`]).
    pub async fn aggregate_client(&self, i: usize) -> Result<AggregateServiceClient<Channel>> {
        Ok(AggregateServiceClient::new(
            self.federation_channel(i).await?,
        ))
    }

    /// Loads synthetic events and exposure into every node at once through its local listener,
    /// as its facility's systems would; `options` says what for node `i`. Returns each node's
    /// summary of the events.
    pub async fn load_synthetic(
        &self,
        options: impl Fn(usize, &Node) -> SynthOptions,
    ) -> Result<Vec<pb::SubmitEventsResponse>> {
        let loads = self.nodes.iter().enumerate().map(|(i, node)| {
            let options = options(i, node);
            let addr = node.local().to_string();
            let identity = node.client_identity.clone();
            async move {
                let events = synth::events(&options);
                let summary = client::submit::events(&addr, &identity, events).await?;
                client::submit::exposure(&addr, &identity, synth::exposure(&options)).await?;
                anyhow::Ok(summary)
            }
        });
        futures::future::try_join_all(loads).await
    }

    /// Stops the gateway, then every node, gracefully.
    pub async fn shutdown(mut self) -> Result<()> {
        self.stop_gateway().await?;
        for node in &mut self.nodes {
            node.stop().await?;
        }
        Ok(())
    }
}

/// Reads the TOML config at `path` as a `T`, lets `edit` change it, and writes it back (paths in
/// it stay relative to the file).
fn rewrite_config<T: Serialize + DeserializeOwned>(
    path: &Path,
    edit: impl FnOnce(&mut T),
) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut config: T =
        toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    edit(&mut config);
    let text = toml::to_string(&config).with_context(|| format!("writing {}", path.display()))?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
