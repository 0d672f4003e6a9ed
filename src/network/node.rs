//! One facility node of a [`Network`](super::Network): its files, where it listens, and how it
//! is started, stopped, crashed and restarted on the same config and data directory.

use super::{Reach, Servers, rewrite_config};
use crate::client;
use crate::network::ServerProcess;
use crate::pki::FacilityLayout;
use anyhow::{Context, Result, bail};
use psonet_core::pb::reporting_service_client::ReportingServiceClient;
use psonet_node::{NodeConfig, RunningNode};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tonic::transport::Channel;

/// A facility node and where its files are.
pub struct Node {
    /// The facility id.
    pub id: String,
    /// Its `node.toml`.
    pub config: PathBuf,
    /// Identity directory of the facility's local clients.
    pub client_identity: PathBuf,
    reach: Reach,
    servers: Servers,
    log: Option<PathBuf>,
    running: Option<Running>,
    local: SocketAddr,
    federation: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
}

/// A node that runs, in this process or as its own.
enum Running {
    InProcess(RunningNode),
    Process(ServerProcess),
}

impl Node {
    /// Starts the node of `facility` on `servers`; a process logs to `<dir>/<id>.log` when its
    /// launcher asks for log files.
    pub(super) async fn start_new(
        facility: &FacilityLayout,
        reach: Reach,
        servers: &Servers,
        dir: &Path,
    ) -> Result<Self> {
        let log = match servers {
            Servers::Processes(launcher) if launcher.logs_to_files() => {
                Some(dir.join(format!("{}.log", facility.id)))
            }
            _ => None,
        };
        let (running, (local, federation, metrics)) =
            launch(servers, &facility.node_config, log.as_deref()).await?;
        Ok(Self {
            id: facility.id.clone(),
            config: facility.node_config.clone(),
            client_identity: facility.client_identity.clone(),
            reach,
            servers: servers.clone(),
            log,
            running: Some(running),
            local,
            federation,
            metrics,
        })
    }

    /// The local listener (`ReportingService`): where it is, or was when the node last ran.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The federation listener (`AggregateService`), as for [`Node::local`]; `None` for a
    /// node that only dials out.
    pub fn federation(&self) -> Option<SocketAddr> {
        self.federation
    }

    /// How the gateway reaches this node.
    pub fn reach(&self) -> Reach {
        self.reach
    }

    /// The Prometheus endpoint, when the config serves one.
    pub fn metrics(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// The node's process, when it runs as one.
    pub fn process(&self) -> Option<&ServerProcess> {
        match &self.running {
            Some(Running::Process(process)) => Some(process),
            _ => None,
        }
    }

    /// Takes the node's process out of the network (to stop it by hand and watch how it exits).
    pub fn take_process(&mut self) -> Option<ServerProcess> {
        match self.running.take() {
            Some(Running::Process(process)) => Some(process),
            other => {
                self.running = other;
                None
            }
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`) to the node's process.
    pub fn signal(&self, name: &str) -> Result<()> {
        self.process()
            .with_context(|| format!("node {} has no process to signal", self.id))?
            .signal(name)
    }

    /// What the node's process has logged so far ("" when it logs elsewhere).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// Starts the node again on its config and data directory (after [`Node::stop`] or
    /// [`Node::kill`]).
    pub async fn start(&mut self) -> Result<()> {
        if self.running.is_some() {
            bail!("node {} is already running", self.id);
        }
        let (running, (local, federation, metrics)) =
            launch(&self.servers, &self.config, self.log.as_deref()).await?;
        self.running = Some(running);
        (self.local, self.federation, self.metrics) = (local, federation, metrics);
        Ok(())
    }

    /// Stops the node gracefully (SIGTERM for a process) and waits until it has: an error unless
    /// it exited cleanly.
    pub async fn stop(&mut self) -> Result<()> {
        match self.running.take() {
            Some(Running::InProcess(node)) => node.shutdown().await?,
            Some(Running::Process(mut process)) => process
                .stop()
                .with_context(|| format!("node {} did not exit cleanly", self.id))?,
            None => {}
        }
        Ok(())
    }

    /// SIGKILLs the node's process: a crash, not a shutdown. A node in this process has no
    /// process to kill: it is forgotten, and its listeners serve until the runtime ends.
    pub fn kill(&mut self) {
        if let Some(Running::Process(mut process)) = self.running.take() {
            process.kill();
        }
    }

    /// Changes the node's `node.toml`; the change takes effect at its next start.
    pub fn edit_config(&self, edit: impl FnOnce(&mut NodeConfig)) -> Result<()> {
        rewrite_config(&self.config, edit)
    }

    /// Writes the ports the node listens on now into its config, so a restart keeps them (as a
    /// real node with fixed ports would).
    pub fn pin_ports(&self) -> Result<()> {
        let (local, federation) = (self.local, self.federation);
        rewrite_config(&self.config, |config: &mut NodeConfig| {
            config.local.listen = local;
            if federation.is_some() {
                config.federation.listen = federation;
            }
        })
    }

    /// A `ReportingService` client with the facility's own client identity.
    pub fn reporting(&self) -> Result<ReportingServiceClient<Channel>> {
        let channel = client::channel(&self.local.to_string(), &self.client_identity)?;
        Ok(ReportingServiceClient::new(channel))
    }
}

/// The addresses a started node reports: local, federation (if it listens), metrics.
type NodeAddrs = (SocketAddr, Option<SocketAddr>, Option<SocketAddr>);

/// Starts a node on `config`, in this process or as a process of `servers`' launcher.
async fn launch(
    servers: &Servers,
    config: &Path,
    log: Option<&Path>,
) -> Result<(Running, NodeAddrs)> {
    Ok(match servers {
        Servers::InProcess => {
            let node = RunningNode::start(NodeConfig::load(config)?).await?;
            let addrs = (node.local_addr, node.federation_addr, node.metrics_addr);
            (Running::InProcess(node), addrs)
        }
        Servers::Processes(launcher) => {
            let process = ServerProcess::node(launcher, config, log)?;
            let addrs = (
                process.addr("local")?,
                process.addr("federation").ok(),
                process.addr("metrics").ok(),
            );
            (Running::Process(process), addrs)
        }
    })
}
