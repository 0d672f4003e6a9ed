//! Starting and stopping the gateway: the `BenchmarkService` listener and, when configured, the
//! link listener that facility nodes behind a firewall dial out to.

use crate::admission::AdmissionLayer;
use crate::benchmark::Benchmarks;
use crate::client::registry::Registry;
use crate::client::registry::RegistryError;
use crate::config::LoadedGatewayConfig;
use crate::guidance::Guidance;
use crate::guidance::library::{self, GuidanceError, GuidanceLibrary};
use crate::link::list::LinkList;
use crate::link::listener::LinkAcceptor;
use crate::link::table::{LinkGauges, LinkTable};
use crate::practice_effect::PracticeEffects;
use crate::secure::SecureAggregation;
use psonet_core::pb::benchmark_service_server::BenchmarkServiceServer;
use psonet_core::pb::guidance_service_server::GuidanceServiceServer;
use psonet_core::pb::link_service_server::LinkServiceServer;
use psonet_core::pb::practice_effect_service_server::PracticeEffectServiceServer;
use psonet_core::secagg::masking_key::MaskingKeyError;
use psonet_serve::auth::{AccessRule, Audience};
use psonet_serve::listener::{
    CERT_POLL_INTERVAL, Shutdown, bind, reload_certificates, server, tls_incoming, with_operations,
};
use psonet_serve::metrics::{Metrics, serve_metrics};
use psonet_serve::security_log::SecurityLog;
use psonet_serve::tls::{ReloadableIdentity, TlsError};
use std::net::SocketAddr;
use tokio::task::JoinHandle;
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
    /// The network CA cannot check the nodes' masking keys.
    #[error("the network CA (tls.ca) cannot check masking keys: {0}")]
    MaskingKeys(#[from] MaskingKeyError),
    /// The guidance directory could not be read at start.
    #[error(transparent)]
    Guidance(#[from] GuidanceError),
    /// The server task panicked.
    #[error("a server task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// Full name of the gateway's service.
const BENCHMARK_SERVICE: &str = "psonet.v1.BenchmarkService";
/// Full name of the list of linked facilities.
const LINK_SERVICE: &str = "psonet.v1.LinkService";
/// Full name of the gateway's practice-effect service.
const PRACTICE_EFFECT_SERVICE: &str = "psonet.v1.PracticeEffectService";
/// Full name of the gateway's guidance service.
const GUIDANCE_SERVICE: &str = "psonet.v1.GuidanceService";
/// Every service the gateway's listener serves.
const SERVICES: [&str; 4] = [
    BENCHMARK_SERVICE,
    PRACTICE_EFFECT_SERVICE,
    GUIDANCE_SERVICE,
    LINK_SERVICE,
];

/// A started gateway.
pub struct RunningGateway {
    /// Address of the `BenchmarkService` listener.
    pub addr: SocketAddr,
    /// Address of the link listener, when configured.
    pub link_addr: Option<SocketAddr>,
    /// Address of the Prometheus metrics endpoint, when configured.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Shutdown,
    health: HealthReporter,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    links: Option<JoinHandle<()>>,
}

impl RunningGateway {
    /// Builds the registry and starts the listeners.
    pub async fn start(loaded: LoadedGatewayConfig) -> Result<Self, GatewayError> {
        let config = &loaded.config;
        let identity = ReloadableIdentity::load(&config.tls, "tls")?;
        let metrics = Metrics::new();
        let ids = || config.facilities.iter().map(|f| f.id.clone());
        let links = config.link_listen.map(|_| {
            let outbound_only = config.facilities.iter().filter(|f| f.endpoint.is_none());
            LinkTable::new(ids(), outbound_only.map(|f| f.id.clone()))
        });
        let registry = Registry::new(
            &config.network,
            &config.facilities,
            identity.client_config()?,
            links.clone(),
            &config.fanout,
            &metrics,
        )?;
        let listener = bind(config.listen, "gateway listener").await?;
        let shutdown = Shutdown::new();
        let log = SecurityLog::new("gateway", &metrics);
        let (link_addr, link_task) = match (config.link_listen, &links) {
            (Some(addr), Some(table)) => {
                let bound = bind(addr, "link listener").await?;
                let link_addr = bound.addr;
                metrics.register_collector(LinkGauges(table.clone()));
                let acceptor = LinkAcceptor {
                    identity: identity.clone(),
                    network: config.network.clone(),
                    facilities: ids().collect(),
                    keepalive: config.links.keepalive(),
                    table: table.clone(),
                    log: SecurityLog::new("links", &metrics),
                };
                (Some(link_addr), Some(acceptor.serve(bound, &shutdown)?))
            }
            _ => (None, None),
        };
        let rule = AccessRule::new(&config.network, Audience::PartnersAndFacilities, &log);
        let secure = SecureAggregation::new(&config.network, loaded.tls.ca_pem())?;
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
            Benchmarks::new(registry, &loaded, secure),
            rule.clone(),
        );
        // Past `max_concurrent_benchmarks` benchmarks in flight, a benchmark is refused at
        // once with RESOURCE_EXHAUSTED instead of queueing without bound.
        let router = server(metrics.clone())
            .trace_fn(|request| psonet_serve::telemetry::rpc_span("gateway", request))
            .layer(AdmissionLayer::new(config.fanout.max_concurrent_benchmarks))
            .add_service(benchmarks)
            .add_service(practice_effects)
            .add_service(guidance);
        // Which facilities are linked is for PSO staff, not for facilities.
        let staff = AccessRule::new(&config.network, Audience::Partners, &log);
        let table = links.unwrap_or_else(|| LinkTable::new(ids(), []));
        let router =
            router.add_service(LinkServiceServer::with_interceptor(LinkList(table), staff));
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
        tracing::info!(addr = %listener.addr, links = ?link_addr, facilities = config.facilities.len(), "gateway started");
        Ok(Self {
            addr: listener.addr,
            link_addr,
            metrics_addr,
            shutdown,
            health,
            server: tokio::spawn(server),
            links: link_task,
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
        if let Some(links) = self.links {
            links.await?;
        }
        tracing::info!("gateway stopped");
        Ok(())
    }
}
