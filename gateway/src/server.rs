//! Starting and stopping the gateway.

use crate::admission::AdmissionLayer;
use crate::benchmark::Benchmarks;
use crate::client::registry::Registry;
use crate::client::registry::RegistryError;
use crate::config::LoadedGatewayConfig;
use crate::guidance::Guidance;
use crate::guidance::library::{self, GuidanceError, GuidanceLibrary};
use crate::practice_effect::PracticeEffects;
use psonet_core::pb::benchmark_service_server::BenchmarkServiceServer;
use psonet_core::pb::guidance_service_server::GuidanceServiceServer;
use psonet_core::pb::practice_effect_service_server::PracticeEffectServiceServer;
use psonet_serve::auth::{AccessRule, Audience};
use psonet_serve::listener::{
    CERT_POLL_INTERVAL, Shutdown, bind, reload_certificates, tls_incoming, with_operations,
};
use psonet_serve::metrics::{Metrics, RpcMetricsLayer, serve_metrics};
use psonet_serve::security_log::SecurityLog;
use psonet_serve::tls::{ReloadableIdentity, TlsError};
use std::net::SocketAddr;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Why the gateway could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The listener could not be bound.
    #[error(transparent)]
    Bind(#[from] std::io::Error),
    /// The TLS setup, an endpoint or the server failed.
    #[error("TLS setup or the server failed")]
    Transport(#[from] tonic::transport::Error),
    /// The certificate, key or CA is not usable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The facility registry could not be built.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The health or reflection service could not be built.
    #[error("health and reflection setup failed: {0}")]
    Reflection(#[from] psonet_serve::listener::OperationsError),
    /// The guidance directory could not be read at start.
    #[error(transparent)]
    Guidance(#[from] GuidanceError),
    /// The server task panicked.
    #[error("a server task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// Full name of the gateway's service.
const BENCHMARK_SERVICE: &str = "psonet.v1.BenchmarkService";
/// Full name of the gateway's practice-effect service.
const PRACTICE_EFFECT_SERVICE: &str = "psonet.v1.PracticeEffectService";
/// Full name of the gateway's guidance service.
const GUIDANCE_SERVICE: &str = "psonet.v1.GuidanceService";
/// Every service the gateway's listener serves.
const SERVICES: [&str; 3] = [BENCHMARK_SERVICE, PRACTICE_EFFECT_SERVICE, GUIDANCE_SERVICE];

/// A started gateway.
pub struct RunningGateway {
    /// Address of the `BenchmarkService` listener.
    pub addr: SocketAddr,
    /// Address of the Prometheus metrics endpoint, when configured.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Shutdown,
    health: HealthReporter,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningGateway {
    /// Builds the registry and starts the listener.
    pub async fn start(loaded: LoadedGatewayConfig) -> Result<Self, GatewayError> {
        let config = &loaded.config;
        let identity = ReloadableIdentity::load(&config.tls, "tls")?;
        let metrics = Metrics::new();
        let registry = Registry::new(
            &config.network,
            &config.facilities,
            identity.client_config()?,
            &config.fanout,
            &metrics,
        )?;
        let listener = bind(config.listen, "gateway listener").await?;
        let shutdown = Shutdown::new();
        let log = SecurityLog::new("gateway", &metrics);
        let rule = AccessRule::new(&config.network, Audience::PartnersAndFacilities, &log);
        let guidance_library = match &config.guidance {
            Some(g) => GuidanceLibrary::new(library::load(&g.dir)?),
            None => GuidanceLibrary::default(),
        };
        let guidance = GuidanceServiceServer::with_interceptor(
            Guidance::new(
                guidance_library.clone(),
                registry.clone(),
                config.fanout.node_deadline(),
                loaded.network_release,
                loaded.peers.clone(),
            ),
            rule.clone(),
        );
        let practice_effects = PracticeEffectServiceServer::with_interceptor(
            PracticeEffects::new(
                registry.clone(),
                config.fanout.node_deadline(),
                loaded.small_cells,
                loaded.network_release,
                loaded.metrics.clone(),
            ),
            rule.clone(),
        );
        let benchmarks = BenchmarkServiceServer::with_interceptor(
            Benchmarks::new(registry, config.fanout.node_deadline(), loaded.small_cells)
                .with_catalogue(
                    loaded.network_release,
                    loaded.metrics.clone(),
                    loaded.peers.clone(),
                ),
            rule.clone(),
        );
        // Past `max_concurrent_benchmarks` benchmarks in flight, a benchmark is refused at
        // once with RESOURCE_EXHAUSTED instead of queueing without bound.
        let router = Server::builder()
            .trace_fn(|request| psonet_serve::telemetry::rpc_span("gateway", request))
            .layer(RpcMetricsLayer::new(metrics.clone()))
            .layer(AdmissionLayer::new(config.fanout.max_concurrent_benchmarks))
            .add_service(benchmarks)
            .add_service(practice_effects)
            .add_service(guidance);
        let (router, health) = with_operations(router, &rule, &SERVICES).await?;
        let incoming = tls_incoming(listener.incoming, identity.server_config()?, log);
        let server = router.serve_with_incoming_shutdown(incoming, shutdown.signalled());
        reload_certificates(vec![identity], CERT_POLL_INTERVAL, &shutdown)?;
        if let Some(g) = &config.guidance {
            guidance_library.watch(g.dir.clone(), g.reload_interval(), &shutdown)?;
        }
        let metrics_addr = match config.metrics_listen {
            Some(addr) => Some(serve_metrics(addr, metrics, &shutdown).await?),
            None => None,
        };
        tracing::info!(addr = %listener.addr, facilities = config.facilities.len(), "gateway started");
        Ok(Self {
            addr: listener.addr,
            metrics_addr,
            shutdown,
            health,
            server: tokio::spawn(server),
        })
    }

    /// Stops accepting calls and lets in-flight calls finish.
    pub async fn shutdown(self) -> Result<(), GatewayError> {
        for service in SERVICES {
            self.health
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
        self.shutdown.trigger();
        self.server.await??;
        tracing::info!("gateway stopped");
        Ok(())
    }
}
