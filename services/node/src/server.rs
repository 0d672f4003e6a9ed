//! Starting and stopping a node: the store, then the local listener and the federation API,
//! each behind its access rule. The federation API is one router, served on the federation
//! listener, on every link the node dials out to the gateway, or both: whatever the router
//! holds is what the gateway can ask, whichever side dialled.
//!
//! A node whose store fails cannot serve again without a restart (see [`StoreFailure`]): it
//! turns `NOT_SERVING` at once on every listener, and [`RunningNode::store_failed`] tells the
//! process to drain and exit non-zero, so that its supervisor restarts it.

use crate::aggregate::{Aggregates, DisclosureRules};
use crate::audit::{AUDIT_TREE, AuditTrail};
use crate::backup_service::Backups;
use crate::config::{GatewayLinkConfig, LoadedNodeConfig};
use crate::gateway_link::dial::ServeLink;
use crate::gateway_link::state::{LinkGauges, LinkList, LinkStates};
use crate::gateway_link::{GatewayLinks, LinkSetupError};
use crate::guidance::pull::{PullError, pull_in_background};
use crate::guidance::{FacilityGuidance, GuidanceStatuses};
use crate::intervention::{Interventions, PracticeOutcomes};
use crate::ledger::{ANSWERS_TREE, BUDGET_TREE, Ledger};
use crate::reporting::Reporting;
use crate::secure_aggregation::epoch_key::rotate_in_background;
use crate::secure_aggregation::{SecureAggregates, SecureAggregationError, SecureAggregationParts};
use crate::store::{Store, StoreError, StoreFailure};
use futures::StreamExt;
use psonet_core::pb::aggregate_service_server::AggregateServiceServer;
use psonet_core::pb::backup_service_server::BackupServiceServer;
use psonet_core::pb::facility_guidance_service_server::FacilityGuidanceServiceServer;
use psonet_core::pb::guidance_status_service_server::GuidanceStatusServiceServer;
use psonet_core::pb::intervention_service_server::InterventionServiceServer;
use psonet_core::pb::link_service_server::LinkServiceServer;
use psonet_core::pb::practice_outcome_service_server::PracticeOutcomeServiceServer;
use psonet_core::pb::reporting_service_server::ReportingServiceServer;
use psonet_core::pb::secure_aggregation_service_server::SecureAggregationServiceServer;
use psonet_serve::auth::{AccessRule, Audience};
use psonet_serve::link::{DEFAULT_KEEPALIVE_INTERVAL_MS, DEFAULT_KEEPALIVE_TIMEOUT_MS, Keepalive};
use psonet_serve::listener::{
    CERT_POLL_INTERVAL, Shutdown, bind, reload_certificates, server, tls_incoming, with_operations,
};
use psonet_serve::metrics::{Metrics, serve_metrics};
use psonet_serve::security_log::SecurityLog;
use psonet_serve::telemetry::rpc_span;
use psonet_serve::tls::{ReloadableIdentity, TlsError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Why a node could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store could not be opened or flushed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listener could not be bound.
    #[error(transparent)]
    Bind(#[from] std::io::Error),
    /// The TLS setup or a server failed.
    #[error("TLS setup or the server failed")]
    Transport(#[from] tonic::transport::Error),
    /// A certificate, key or CA file is not usable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The health or reflection service could not be built.
    #[error("health and reflection setup failed: {0}")]
    Reflection(#[from] psonet_serve::listener::OperationsError),
    /// A server task panicked.
    #[error("a server task failed")]
    Task(#[from] tokio::task::JoinError),
    /// Guidance cannot be pulled with this configuration.
    #[error(transparent)]
    Guidance(#[from] PullError),
    /// Secure aggregation cannot run with this identity or store.
    #[error(transparent)]
    SecureAggregation(#[from] SecureAggregationError),
    /// The outbound link to the gateway could not be set up.
    #[error(transparent)]
    Link(#[from] LinkSetupError),
}

/// A started node: both listeners bound and serving.
pub struct RunningNode {
    /// Address of the local listener (`ReportingService`).
    pub local_addr: SocketAddr,
    /// Address of the federation listener (`AggregateService`), when the node listens.
    pub federation_addr: Option<SocketAddr>,
    /// Address of the Prometheus metrics endpoint, when configured.
    pub metrics_addr: Option<SocketAddr>,
    store: Arc<Store>,
    shutdown: Shutdown,
    health: Vec<(HealthReporter, &'static str)>,
    servers: Vec<JoinHandle<Result<(), tonic::transport::Error>>>,
    links: Option<GatewayLinks>,
}

/// How long a node whose store failed answers health checks `NOT_SERVING` before it stops:
/// long enough for a probe or a load balancer to see it, short enough that the supervisor
/// restarts it within seconds.
pub const FAILURE_GRACE: Duration = Duration::from_secs(2);

/// The health service name of a whole server (what `psonet health` asks by default).
const WHOLE_SERVER: &str = "";

/// Full name of the local listener's service.
const REPORTING_SERVICE: &str = "psonet.v1.ReportingService";
/// Full name of the local listener's backup service.
const BACKUP_SERVICE: &str = "psonet.v1.BackupService";
/// Full name of the local listener's intervention service.
const INTERVENTION_SERVICE: &str = "psonet.v1.InterventionService";
/// Full name of the local listener's guidance service.
const FACILITY_GUIDANCE_SERVICE: &str = "psonet.v1.FacilityGuidanceService";
/// Full name of the federation listener's guidance-status service.
const GUIDANCE_STATUS_SERVICE: &str = "psonet.v1.GuidanceStatusService";
/// Full name of the federation listener's practice-outcome service.
const PRACTICE_OUTCOME_SERVICE: &str = "psonet.v1.PracticeOutcomeService";
/// Full name of the federation listener's service.
const AGGREGATE_SERVICE: &str = "psonet.v1.AggregateService";
/// Full name of the federation listener's secure-aggregation service.
const SECURE_AGGREGATION_SERVICE: &str = "psonet.v1.SecureAggregationService";
/// Full name of the local listener's list of the node's own links.
const LINK_SERVICE: &str = "psonet.v1.LinkService";

/// The node's disclosure rules from its config.
fn disclosure_rules(loaded: &LoadedNodeConfig) -> DisclosureRules {
    DisclosureRules {
        small_cells: loaded.small_cells,
        finest_grain: loaded.config.disclosure.finest_grain,
    }
}

/// The privacy ledger, when differential privacy is on.
fn ledger(store: &Store, loaded: &LoadedNodeConfig) -> Result<Option<Ledger>, StoreError> {
    Ok(match loaded.privacy {
        Some(budgets) => Some(Ledger::new(
            store.tree(BUDGET_TREE)?,
            store.tree(ANSWERS_TREE)?,
            budgets,
        )),
        None => None,
    })
}

/// The federation service with its disclosure rules, policy, ledger and audit trail.
fn aggregates(
    store: &Arc<Store>,
    loaded: &LoadedNodeConfig,
    audit: AuditTrail,
) -> Result<Aggregates, StoreError> {
    Ok(Aggregates::new(
        store.clone(),
        disclosure_rules(loaded),
        loaded.policy.clone(),
        ledger(store, loaded)?,
        audit,
    ))
}

/// The secure-aggregation service: the same rules, policy, ledger and audit trail, and the
/// federation identity to sign masking keys with.
fn secure_aggregates(
    store: &Arc<Store>,
    loaded: &LoadedNodeConfig,
    audit: AuditTrail,
) -> Result<SecureAggregates, NodeError> {
    let config = &loaded.config;
    Ok(SecureAggregates::new(SecureAggregationParts {
        facility: config.facility_id.clone(),
        network: config.network.clone(),
        federation_tls: config.federation.tls.clone(),
        min_cohort: config.secure_aggregation.min_cohort,
        store: store.clone(),
        rules: disclosure_rules(loaded),
        policy: loaded.policy.clone(),
        ledger: ledger(store, loaded)?,
        audit,
    })?)
}

impl RunningNode {
    /// Opens the store, starts the local listener, and serves the federation API on its
    /// listener and/or over links to the gateway, as the config says.
    pub async fn start(loaded: LoadedNodeConfig) -> Result<Self, NodeError> {
        let config = &loaded.config;
        if loaded.small_cells.min_cell_count()
            < psonet_core::disclosure::primary::DEFAULT_MIN_CELL_COUNT
        {
            tracing::warn!(
                min_cell_count = loaded.small_cells.min_cell_count(),
                "WARNING: disclosure.min_cell_count is below 11, the CMS/PCORnet minimum: small \
                 counts released by this node may identify patients, reporters or clinicians"
            );
        }
        psonet_serve::private_files::private_umask();
        let store = Arc::new(Store::open(
            &config.data_dir,
            config.store.cache_capacity_mb * 1024 * 1024,
        )?);
        let local = bind(config.local.listen, "local listener").await?;
        let shutdown = Shutdown::new();
        let metrics = Metrics::new();

        let local_log = SecurityLog::new("local", &metrics);
        let local_rule = AccessRule::new(
            &config.network,
            Audience::OwnFacility(config.facility_id.clone()),
            &local_log,
        );
        let reporting = ReportingServiceServer::with_interceptor(
            Reporting::new(store.clone()),
            local_rule.clone(),
        );
        let backups = BackupServiceServer::with_interceptor(
            Backups::new(store.clone(), config.facility_id.clone(), spool_dir(config)),
            local_rule.clone(),
        );
        let link_states = LinkStates::new(&config.facility_id);
        let link_list =
            LinkServiceServer::with_interceptor(LinkList(link_states.clone()), local_rule.clone());
        let interventions = InterventionServiceServer::with_interceptor(
            Interventions::new(store.clone()),
            local_rule.clone(),
        );
        let guidance = FacilityGuidanceServiceServer::with_interceptor(
            FacilityGuidance::new(store.clone()),
            local_rule.clone(),
        );
        let local_label = format!("{} local", config.facility_id);
        let local_identity = ReloadableIdentity::load(&config.local.tls, "local.tls")?;
        let local_router = server(metrics.clone())
            .trace_fn(move |request| rpc_span(&local_label, request))
            .add_service(reporting)
            .add_service(backups)
            .add_service(link_list)
            .add_service(interventions)
            .add_service(guidance);
        let (local_router, local_health) = with_operations(
            local_router,
            &local_rule,
            &[
                REPORTING_SERVICE,
                BACKUP_SERVICE,
                LINK_SERVICE,
                INTERVENTION_SERVICE,
                FACILITY_GUIDANCE_SERVICE,
            ],
        )
        .await?;
        let local_server = local_router.serve_with_incoming_shutdown(
            tls_incoming(local.incoming, local_identity.server_config()?, local_log),
            shutdown.signalled(),
        );
        let mut servers = vec![tokio::spawn(local_server)];

        // The federation API: one router, whichever way the gateway reaches it. HTTP/2
        // keepalive finds a dead gateway on a link within seconds (harmless on the listener).
        // Refusals of the federation API go on the audit trail with the queries.
        let audit = AuditTrail::new(store.tree(AUDIT_TREE)?);
        let federation_log = SecurityLog::audited("federation", &metrics, Arc::new(audit.clone()));
        let federation_rule = AccessRule::new(&config.network, Audience::Gateway, &federation_log);
        let aggregates = AggregateServiceServer::with_interceptor(
            aggregates(&store, &loaded, audit.clone())?,
            federation_rule.clone(),
        );
        let outcomes = PracticeOutcomeServiceServer::with_interceptor(
            PracticeOutcomes::new(
                store.clone(),
                disclosure_rules(&loaded),
                loaded.policy.clone(),
                loaded.privacy.is_some(),
                audit.clone(),
            ),
            federation_rule.clone(),
        );
        let statuses = GuidanceStatusServiceServer::with_interceptor(
            GuidanceStatuses::new(store.clone(), audit.clone()),
            federation_rule.clone(),
        );
        let secure = secure_aggregates(&store, &loaded, audit)?;
        rotate_in_background(secure.epoch_keys(), shutdown.signalled());
        let secure =
            SecureAggregationServiceServer::with_interceptor(secure, federation_rule.clone());
        let federation_label = format!("{} federation", config.facility_id);
        let federation_identity =
            ReloadableIdentity::load(&config.federation.tls, "federation.tls")?;
        let keepalive = config
            .gateway_link
            .as_ref()
            .map_or_else(default_keepalive, GatewayLinkConfig::keepalive);
        let federation_router = server(metrics.clone())
            .http2_keepalive_interval(Some(keepalive.interval))
            .http2_keepalive_timeout(Some(keepalive.timeout))
            .trace_fn(move |request| rpc_span(&federation_label, request))
            .add_service(aggregates)
            .add_service(secure)
            .add_service(outcomes)
            .add_service(statuses);
        let (federation_router, federation_health) = with_operations(
            federation_router,
            &federation_rule,
            &[
                AGGREGATE_SERVICE,
                SECURE_AGGREGATION_SERVICE,
                PRACTICE_OUTCOME_SERVICE,
                GUIDANCE_STATUS_SERVICE,
            ],
        )
        .await?;
        let federation_addr = match config.federation.listen {
            Some(addr) => {
                let federation = bind(addr, "federation listener").await?;
                let server = federation_router.clone().serve_with_incoming_shutdown(
                    tls_incoming(
                        federation.incoming,
                        federation_identity.server_config()?,
                        federation_log,
                    ),
                    shutdown.signalled(),
                );
                servers.push(tokio::spawn(server));
                Some(federation.addr)
            }
            None => None,
        };
        let links = match &config.gateway_link {
            Some(link) => {
                metrics.register_collector(LinkGauges(link_states.clone()));
                let router = federation_router;
                let serve: ServeLink = Arc::new(move |stream, signal| {
                    let router = router.clone();
                    Box::pin(async move {
                        // One connection, then nothing: the server ends when `signal` does.
                        let incoming =
                            futures::stream::once(async { Ok::<_, std::io::Error>(stream) })
                                .chain(futures::stream::pending());
                        router
                            .serve_with_incoming_shutdown(incoming, signal)
                            .await
                            .map_err(|e| e.to_string())
                    })
                });
                Some(GatewayLinks::start(
                    link,
                    &config.network,
                    &federation_identity,
                    serve,
                    link_states,
                    &shutdown,
                )?)
            }
            None => None,
        };
        reload_certificates(
            vec![local_identity, federation_identity],
            CERT_POLL_INTERVAL,
            &shutdown,
        )?;
        if let Some(guidance) = &config.guidance {
            pull_in_background(store.clone(), guidance, &shutdown)?;
        }
        let metrics_addr = match config.metrics_listen {
            Some(addr) => Some(serve_metrics(addr, metrics, &shutdown).await?),
            None => None,
        };

        tracing::info!(
            facility = %config.facility_id,
            local = %local.addr,
            federation = ?federation_addr,
            gateway_link = ?config.gateway_link.as_ref().map(|l| &l.endpoint),
            "node started"
        );
        let health = vec![
            (local_health.clone(), REPORTING_SERVICE),
            (local_health.clone(), BACKUP_SERVICE),
            (local_health.clone(), LINK_SERVICE),
            (local_health.clone(), INTERVENTION_SERVICE),
            (local_health.clone(), FACILITY_GUIDANCE_SERVICE),
            (local_health, WHOLE_SERVER),
            (federation_health.clone(), AGGREGATE_SERVICE),
            (federation_health.clone(), SECURE_AGGREGATION_SERVICE),
            (federation_health.clone(), PRACTICE_OUTCOME_SERVICE),
            (federation_health.clone(), GUIDANCE_STATUS_SERVICE),
            (federation_health, WHOLE_SERVER),
        ];
        tokio::spawn(not_serving_on(store.failure().clone(), health.clone()));
        Ok(Self {
            local_addr: local.addr,
            federation_addr,
            metrics_addr,
            store,
            shutdown,
            health,
            servers,
            links,
        })
    }

    /// Completes once the store has failed: the node already reports `NOT_SERVING`, and
    /// [`FAILURE_GRACE`] has given probes time to see it. The caller should then
    /// [`shutdown`](RunningNode::shutdown) (which drains the calls in flight) and exit
    /// non-zero with the returned message: the failure and what to check.
    pub fn store_failed(&self) -> impl Future<Output = String> + Send + 'static {
        let failure = self.store.failure().clone();
        async move {
            let cause = failure.failed().await;
            tokio::time::sleep(FAILURE_GRACE).await;
            failure.advice(&cause)
        }
    }

    /// Stops accepting calls, lets in-flight calls finish, and flushes the store.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        set_not_serving(&self.health).await;
        self.shutdown.trigger();
        for server in self.servers {
            server.await??;
        }
        if let Some(links) = self.links {
            links.stopped().await?;
        }
        self.store.make_durable().await?;
        tracing::info!("node stopped");
        Ok(())
    }
}

/// Marks every service in `health` `NOT_SERVING`.
async fn set_not_serving(health: &[(HealthReporter, &'static str)]) {
    for (reporter, service) in health {
        reporter
            .set_service_status(*service, ServingStatus::NotServing)
            .await;
    }
}

/// Marks every service `NOT_SERVING` as soon as the store fails.
async fn not_serving_on(failure: StoreFailure, health: Vec<(HealthReporter, &'static str)>) {
    failure.failed().await;
    set_not_serving(&health).await;
}

/// Keepalive on the federation API of a node without a link.
fn default_keepalive() -> Keepalive {
    Keepalive::from_ms(DEFAULT_KEEPALIVE_INTERVAL_MS, DEFAULT_KEEPALIVE_TIMEOUT_MS)
}

/// Where backups spool: beside the data directory, which the node may write to.
fn spool_dir(config: &crate::config::NodeConfig) -> std::path::PathBuf {
    config
        .data_dir
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}
