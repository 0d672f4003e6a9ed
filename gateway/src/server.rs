//! Starting and stopping the gateway.

use crate::benchmark::Benchmarks;
use crate::config::LoadedGatewayConfig;
use crate::registry::Registry;
use psonet_core::auth::{AccessRule, Audience};
use psonet_core::pb::benchmark_service_server::BenchmarkServiceServer;
use psonet_core::serve::{Shutdown, bind, with_operations};
use std::net::SocketAddr;
use tokio::task::JoinHandle;
use tonic::transport::Server;

/// Why the gateway could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The listener could not be bound.
    #[error(transparent)]
    Bind(#[from] std::io::Error),
    /// The TLS setup, an endpoint or the server failed.
    #[error("TLS setup or the server failed")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built.
    #[error("reflection setup failed")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server task panicked.
    #[error("a server task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// A started gateway.
pub struct RunningGateway {
    /// Address of the `BenchmarkService` listener.
    pub addr: SocketAddr,
    shutdown: Shutdown,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningGateway {
    /// Builds the registry and starts the listener.
    pub async fn start(loaded: LoadedGatewayConfig) -> Result<Self, GatewayError> {
        let config = &loaded.config;
        let registry = Registry::new(&config.facilities, &loaded.tls, &config.fanout)?;
        let listener = bind(config.listen, "gateway listener").await?;
        let shutdown = Shutdown::new();
        let rule = AccessRule::new(&config.network, Audience::PartnersAndFacilities);
        let benchmarks = BenchmarkServiceServer::with_interceptor(
            Benchmarks::new(
                registry,
                config.fanout.node_deadline(),
                loaded.small_cells,
                loaded.network_release,
            ),
            rule.clone(),
        );
        let router = Server::builder()
            .tls_config(loaded.tls.server_config())?
            .add_service(benchmarks);
        let (router, _health) =
            with_operations(router, &rule, &["psonet.v1.BenchmarkService"]).await?;
        let server = router.serve_with_incoming_shutdown(listener.incoming, shutdown.signalled());
        tracing::info!(addr = %listener.addr, facilities = config.facilities.len(), "gateway started");
        Ok(Self {
            addr: listener.addr,
            shutdown,
            server: tokio::spawn(server),
        })
    }

    /// Stops accepting calls and lets in-flight calls finish.
    pub async fn shutdown(self) -> Result<(), GatewayError> {
        self.shutdown.trigger();
        self.server.await??;
        tracing::info!("gateway stopped");
        Ok(())
    }
}
