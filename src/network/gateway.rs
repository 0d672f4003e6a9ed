//! The gateway of a [`Network`](super::Network), in this process or as its own.

use super::Servers;
use crate::network::ServerProcess;
use anyhow::Result;
use psonet_gateway::{GatewayConfig, RunningGateway};
use std::net::SocketAddr;
use std::path::Path;

/// A running gateway and where it listens.
pub struct Gateway {
    addr: SocketAddr,
    links: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
    running: Running,
}

enum Running {
    InProcess(RunningGateway),
    Process(ServerProcess),
}

impl Gateway {
    /// Starts a gateway on `config`; a process logs to `log` when given.
    pub(super) async fn start(
        servers: &Servers,
        config: &Path,
        log: Option<&Path>,
    ) -> Result<Self> {
        Ok(match servers {
            Servers::InProcess => {
                let gateway = RunningGateway::start(GatewayConfig::load(config)?).await?;
                Self {
                    addr: gateway.addr,
                    links: gateway.link_addr,
                    metrics: gateway.metrics_addr,
                    running: Running::InProcess(gateway),
                }
            }
            Servers::Processes(launcher) => {
                let process = ServerProcess::gateway(launcher, config, log)?;
                Self {
                    addr: process.addr("listen")?,
                    links: process.addr("links").ok(),
                    metrics: process.addr("metrics").ok(),
                    running: Running::Process(process),
                }
            }
        })
    }

    /// The `BenchmarkService` listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The link listener, when the config has one.
    pub fn links(&self) -> Option<SocketAddr> {
        self.links
    }

    /// The Prometheus endpoint, when the config serves one.
    pub fn metrics(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// The gateway's process, when it runs as one.
    pub fn process(&self) -> Option<&ServerProcess> {
        match &self.running {
            Running::Process(process) => Some(process),
            Running::InProcess(_) => None,
        }
    }

    /// SIGKILLs the gateway's process: a crash, not a shutdown. A gateway in this process has
    /// no process to kill: it is stopped gracefully instead.
    pub async fn kill(self) -> Result<()> {
        match self.running {
            Running::Process(mut process) => process.kill(),
            Running::InProcess(gateway) => gateway.shutdown().await?,
        }
        Ok(())
    }

    /// Stops the gateway gracefully (SIGTERM for a process) and waits until it has: an error
    /// unless it exited cleanly.
    pub async fn stop(self) -> Result<()> {
        match self.running {
            Running::InProcess(gateway) => gateway.shutdown().await?,
            Running::Process(mut process) => process.stop()?,
        }
        Ok(())
    }
}
