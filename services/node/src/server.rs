//! Starting and stopping a node: the store, then both listeners, each behind its access rule.

use crate::aggregate::{Aggregates, DisclosureRules};
use crate::audit::{AUDIT_TREE, AuditTrail};
use crate::backup_service::Backups;
use crate::config::LoadedNodeConfig;
use crate::guidance::pull::{PullError, pull_in_background};
use crate::guidance::{FacilityGuidance, GuidanceStatuses};
use crate::intervention::{Interventions, PracticeOutcomes};
use crate::ledger::{ANSWERS_TREE, BUDGET_TREE, Ledger};
use crate::reporting::Reporting;
use crate::secure_aggregation::epoch_key::rotate_in_background;
use crate::secure_aggregation::{SecureAggregates, SecureAggregationError, SecureAggregationParts};
use crate::store::{Store, StoreError};
use psonet_core::pb::aggregate_service_server::AggregateServiceServer;
use psonet_core::pb::backup_service_server::BackupServiceServer;
use psonet_core::pb::facility_guidance_service_server::FacilityGuidanceServiceServer;
use psonet_core::pb::guidance_status_service_server::GuidanceStatusServiceServer;
use psonet_core::pb::intervention_service_server::InterventionServiceServer;
use psonet_core::pb::practice_outcome_service_server::PracticeOutcomeServiceServer;
use psonet_core::pb::reporting_service_server::ReportingServiceServer;
use psonet_core::pb::secure_aggregation_service_server::SecureAggregationServiceServer;
use psonet_serve::auth::{AccessRule, Audience};
use psonet_serve::listener::{
    CERT_POLL_INTERVAL, Shutdown, bind, reload_certificates, tls_incoming, with_operations,
};
use psonet_serve::metrics::{Metrics, RpcMetricsLayer, serve_metrics};
use psonet_serve::security_log::SecurityLog;
use psonet_serve::telemetry::rpc_span;
use psonet_serve::tls::{ReloadableIdentity, TlsError};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tonic::transport::Server;
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
}

/// A started node: both listeners bound and serving.
pub struct RunningNode {
    /// Address of the local listener (`ReportingService`).
    pub local_addr: SocketAddr,
    /// Address of the federation listener (`AggregateService`).
    pub federation_addr: SocketAddr,
    /// Address of the Prometheus metrics endpoint, when configured.
    pub metrics_addr: Option<SocketAddr>,
    store: Arc<Store>,
    shutdown: Shutdown,
    health: Vec<(HealthReporter, &'static str)>,
    servers: Vec<JoinHandle<Result<(), tonic::transport::Error>>>,
}

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
    /// Opens the store and starts both listeners.
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
        std::fs::create_dir_all(&config.data_dir).map_err(StoreError::from_io)?;
        let store = Arc::new(Store::open(
            &config.data_dir,
            config.store.cache_capacity_mb * 1024 * 1024,
        )?);
        let local = bind(config.local.listen, "local listener").await?;
        let federation = bind(config.federation.listen, "federation listener").await?;
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
        let local_router = Server::builder()
            .layer(RpcMetricsLayer::new(metrics.clone()))
            .trace_fn(move |request| rpc_span(&local_label, request))
            .add_service(reporting)
            .add_service(backups)
            .add_service(interventions)
            .add_service(guidance);
        let (local_router, local_health) = with_operations(
            local_router,
            &local_rule,
            &[
                REPORTING_SERVICE,
                BACKUP_SERVICE,
                INTERVENTION_SERVICE,
                FACILITY_GUIDANCE_SERVICE,
            ],
        )
        .await?;
        let local_server = local_router.serve_with_incoming_shutdown(
            tls_incoming(local.incoming, local_identity.server_config()?, local_log),
            shutdown.signalled(),
        );

        // Refusals on the federation listener go on the audit trail with the queries.
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
        let federation_router = Server::builder()
            .layer(RpcMetricsLayer::new(metrics.clone()))
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
        let federation_server = federation_router.serve_with_incoming_shutdown(
            tls_incoming(
                federation.incoming,
                federation_identity.server_config()?,
                federation_log,
            ),
            shutdown.signalled(),
        );
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
            federation = %federation.addr,
            "node started"
        );
        Ok(Self {
            local_addr: local.addr,
            federation_addr: federation.addr,
            metrics_addr,
            store,
            shutdown,
            health: vec![
                (local_health.clone(), REPORTING_SERVICE),
                (local_health.clone(), BACKUP_SERVICE),
                (local_health.clone(), INTERVENTION_SERVICE),
                (local_health, FACILITY_GUIDANCE_SERVICE),
                (federation_health.clone(), AGGREGATE_SERVICE),
                (federation_health.clone(), SECURE_AGGREGATION_SERVICE),
                (federation_health.clone(), PRACTICE_OUTCOME_SERVICE),
                (federation_health, GUIDANCE_STATUS_SERVICE),
            ],
            servers: vec![tokio::spawn(local_server), tokio::spawn(federation_server)],
        })
    }

    /// Stops accepting calls, lets in-flight calls finish, and flushes the store.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        for (reporter, service) in &self.health {
            reporter
                .set_service_status(*service, ServingStatus::NotServing)
                .await;
        }
        self.shutdown.trigger();
        for server in self.servers {
            server.await??;
        }
        self.store.make_durable().await?;
        tracing::info!("node stopped");
        Ok(())
    }
}

/// Where backups spool: beside the data directory, which the node may write to.
fn spool_dir(config: &crate::config::NodeConfig) -> std::path::PathBuf {
    config
        .data_dir
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}
