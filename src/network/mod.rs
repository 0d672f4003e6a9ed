//! A psonet network on loopback, started the way a user starts one.
//!
//! Certificates and configs come from [`pki::init`], exactly as
//! `psonet pki init` writes them; each node starts on its `node.toml`, the gateway on
//! `gateway.toml` with the nodes' real addresses in its registry. Servers run either inside this
//! process or as real `psonet node` / `psonet gateway` processes ([`Servers`]), on real mTLS
//! listeners and real sled stores in a temporary directory that goes when the network does.
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
mod node;
mod server_process;

pub use gateway::Gateway;
pub use node::Node;
pub use server_process::{Launcher, ServerProcess};

use crate::client;
use crate::pki::{self, InitOptions, NetworkLayout};
use crate::synth::{self, SynthOptions};
use anyhow::{Context, Result};
use psonet_core::pb::{
    self, aggregate_service_client::AggregateServiceClient,
    benchmark_service_client::BenchmarkServiceClient,
};
use psonet_gateway::GatewayConfig;
use psonet_node::NodeConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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

/// A change to every node's config before it starts.
type NodeEdit = Box<dyn Fn(&mut NodeConfig) + Send + Sync>;

/// What network to start: see [`Network::builder`].
pub struct NetworkBuilder {
    name: String,
    facilities: Vec<String>,
    node_edit: Option<NodeEdit>,
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

    /// Changes every node's `node.toml` before the node first starts.
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
        let mut nodes = Vec::new();
        for facility in &layout.facilities {
            if let Some(edit) = &self.node_edit {
                rewrite_config(&facility.node_config, edit)?;
            }
            nodes.push(Node::start_new(facility, &self.nodes, dir.path()).await?);
        }
        Ok(Network {
            dir,
            layout,
            nodes,
            gateway: None,
            gateway_servers: self.gateway,
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
    gateway: Option<Gateway>,
    gateway_servers: Servers,
}

impl Network {
    /// A network named `name` (the SPIFFE trust domain of its certificates).
    pub fn builder(name: &str) -> NetworkBuilder {
        NetworkBuilder {
            name: name.into(),
            facilities: Vec::new(),
            node_edit: None,
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
    /// facilities). A gateway already running is dropped first (a process is killed). The
    /// config is written beside `gateway.toml` as `gateway-run.toml`, and the gateway started
    /// on that file.
    pub async fn start_gateway(&mut self, adjust: impl FnOnce(&mut GatewayConfig)) -> Result<()> {
        self.gateway = None;
        let path = self.layout.out.join("gateway-run.toml");
        std::fs::copy(&self.layout.gateway_config, &path)
            .with_context(|| format!("writing {}", path.display()))?;
        let nodes = &self.nodes;
        rewrite_config(&path, |config: &mut GatewayConfig| {
            for (entry, node) in config.facilities.iter_mut().zip(nodes) {
                entry.endpoint = format!("https://127.0.0.1:{}", node.federation().port());
            }
            adjust(config);
        })?;
        let log = match &self.gateway_servers {
            Servers::Processes(launcher) if launcher.logs_to_files() => {
                Some(self.dir().join("gateway.log"))
            }
            _ => None,
        };
        self.gateway = Some(Gateway::start(&self.gateway_servers, &path, log.as_deref()).await?);
        Ok(())
    }

    /// The gateway, once started.
    pub fn gateway(&self) -> Option<&Gateway> {
        self.gateway.as_ref()
    }

    /// The gateway's process, when it runs as one.
    pub fn gateway_process(&self) -> Option<&ServerProcess> {
        self.gateway.as_ref().and_then(Gateway::process)
    }

    /// The gateway's `BenchmarkService` listener.
    pub fn gateway_addr(&self) -> Result<SocketAddr> {
        Ok(self.gateway.as_ref().context("no gateway running")?.addr())
    }

    /// Stops the gateway gracefully; an error unless it exited cleanly.
    pub async fn stop_gateway(&mut self) -> Result<()> {
        match self.gateway.take() {
            Some(gateway) => gateway.stop().await,
            None => Ok(()),
        }
    }

    /// The gateway's identity directory (it is also how a test calls a node as the gateway).
    pub fn gateway_identity(&self) -> PathBuf {
        self.layout.out.join("gateway")
    }

    /// A `BenchmarkService` client to the gateway as the network's partner.
    pub fn benchmark_client(&self) -> Result<BenchmarkServiceClient<Channel>> {
        let addr = self.gateway_addr()?.to_string();
        let channel = client::channel(&addr, &self.layout.partner_identity)?;
        Ok(BenchmarkServiceClient::new(channel))
    }

    /// An `AggregateService` client to node `i` as the gateway.
    pub fn aggregate_client(&self, i: usize) -> Result<AggregateServiceClient<Channel>> {
        let node = self.nodes.get(i).context("no such node")?;
        let channel = client::channel(&node.federation().to_string(), &self.gateway_identity())?;
        Ok(AggregateServiceClient::new(channel))
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
