//! Listening and stopping: what every psonet server does the same way.
//!
//! Listeners are bound before a server reports itself started, so a caller learns the real
//! address (port 0 picks a free one) and a port clash is an error at start, not later.

use crate::auth::AccessRule;
use crate::bounded_errors::BoundedErrorsLayer;
use crate::metrics::{Metrics, RpcMetricsLayer};
use crate::presented_certificate::noting_presented;
use crate::reflection_subset::{DescriptorSubsetError, descriptor_subset};
use crate::security_log::{Reason, Refusal, SecurityLog, Stage};
use crate::tls::ReloadableIdentity;
use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::{Router, TcpIncoming};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::layer::util::{Identity, Stack};

/// A bound TCP listener, ready to hand to a tonic server.
pub struct BoundListener {
    /// The address actually bound.
    pub addr: SocketAddr,
    /// The accepted connections, with `TCP_NODELAY` set.
    pub incoming: TcpIncoming,
}

/// Binds `addr`; `what` names the listener in the error.
pub async fn bind(addr: SocketAddr, what: &str) -> std::io::Result<BoundListener> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({what}): {e}"))
    })?;
    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Ok(BoundListener { addr, incoming })
}

/// The layers every psonet listener has, outermost first: RPC metrics, then the bound on
/// every error sent (see [`server`]).
pub type ServerLayers = Stack<BoundedErrorsLayer, Stack<RpcMetricsLayer, Identity>>;

/// A tonic server with the layers every psonet listener has: each RPC counted and timed into
/// `metrics`, and every error it sends bounded ([`crate::bounded_errors`]). Node and gateway
/// build their listeners from here, so none can be served without them; a server adds its own
/// layers (the gateway's admission) after these.
pub fn server(metrics: Arc<Metrics>) -> Server<ServerLayers> {
    Server::builder()
        .layer(RpcMetricsLayer::new(metrics))
        .layer(BoundedErrorsLayer)
}

/// A one-shot stop signal that any number of servers can wait on.
#[derive(Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    /// A signal not yet given.
    pub fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    /// Gives the signal: servers stop accepting and finish in-flight calls.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Completes once the signal is given.
    pub fn signalled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// Adds standard gRPC health and reflection (v1 and v1alpha, for grpcurl 1.8) to a listener's
/// router, behind the same access rule as the listener's own services. Reflection lists
/// `services` and resolves only them and the types they reach (see [`descriptor_subset`]), so
/// it describes exactly what this listener serves. Every service starts `SERVING`: a router is
/// only built once the store is open and the certificates are loaded.
pub async fn with_operations<L>(
    router: Router<L>,
    rule: &AccessRule,
    services: &[&str],
) -> Result<(Router<L>, HealthReporter), OperationsError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for service in services {
        reporter
            .set_service_status(*service, ServingStatus::Serving)
            .await;
    }
    let own = descriptor_subset(psonet_proto::FILE_DESCRIPTOR_SET, services)?;
    let reflection = || {
        let builder = tonic_reflection::server::Builder::configure()
            .register_file_descriptor_set(own.clone())
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        services
            .iter()
            .chain(&[
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ])
            .fold(builder, |b, s| b.with_service_name(*s))
    };
    let router = router
        .add_service(InterceptedService::new(health, rule.clone()))
        .add_service(InterceptedService::new(
            reflection().build_v1()?,
            rule.clone(),
        ))
        .add_service(InterceptedService::new(
            reflection().build_v1alpha()?,
            rule.clone(),
        ));
    Ok((router, reporter))
}

/// Why a listener's health and reflection services could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OperationsError {
    /// The listener's descriptor subset could not be built.
    #[error(transparent)]
    Descriptors(#[from] DescriptorSubsetError),
    /// The reflection service refused the descriptors.
    #[error("reflection setup failed")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// The longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepted connections after their TLS handshake, for `serve_with_incoming_shutdown`.
///
/// We terminate TLS ourselves, rather than through tonic's `tls_config`, so that the rustls
/// configuration can resolve its certificate per handshake from a [`ReloadableIdentity`].
/// Handshakes run concurrently (a slow client holds up no one); failed ones are dropped after
/// rustls has sent its alert, which is how a refused client learns why, and go on record in
/// `log` with what the client presented and from where.
pub fn tls_incoming(
    mut incoming: TcpIncoming,
    config: Arc<rustls::ServerConfig>,
    log: Arc<SecurityLog>,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let tcp = tokio::select! {
                _ = tx.closed() => break,
                next = incoming.next() => match next {
                    Some(Ok(tcp)) => tcp,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                    None => break,
                },
            };
            let (acceptor, tx, log) = (acceptor.clone(), tx.clone(), log.clone());
            tokio::spawn(async move {
                let peer = tcp.peer_addr().ok();
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                let (outcome, presented) = noting_presented(handshake).await;
                match outcome {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => handshake_failed(&log, &e, peer, presented),
                    Err(_) => log.refuse(Refusal {
                        stage: Stage::Handshake,
                        reason: Reason::Timeout,
                        who: presented,
                        peer,
                        what: "TLS handshake".into(),
                        detail: format!(
                            "the handshake did not finish within {} s",
                            HANDSHAKE_TIMEOUT.as_secs()
                        ),
                    }),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Puts a failed handshake on record: a TLS error is a refusal; a client that hung up without
/// one (a port probe, a load balancer's TCP check) refused nothing and is only traced.
fn handshake_failed(
    log: &SecurityLog,
    error: &std::io::Error,
    peer: Option<SocketAddr>,
    presented: Option<String>,
) {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        tracing::debug!(error = %error, ?peer, "connection closed during the TLS handshake");
        return;
    };
    let reason = Reason::of_tls(tls);
    let detail = match reason {
        Reason::NotAdmitted => {
            "the certificate is from the CA, but its principal is not one this listener admits \
             (a link listener admits the facilities of the gateway's registry)"
                .to_string()
        }
        _ => tls.to_string(),
    };
    log.refuse(Refusal {
        stage: Stage::Handshake,
        reason,
        who: presented,
        peer,
        what: "TLS handshake".into(),
        detail,
    });
}

/// How often certificate files are checked for changes.
pub const CERT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Reloads `identities` on SIGHUP, and whenever their certificate or key file changes
/// (checked every `poll`), until `shutdown`. A failed reload keeps the old identity.
pub fn reload_certificates(
    identities: Vec<Arc<ReloadableIdentity>>,
    poll: Duration,
    shutdown: &Shutdown,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let stopped = shutdown.signalled();
    tokio::spawn(async move {
        tokio::pin!(stopped);
        let mut seen: Vec<_> = identities.iter().map(|i| modified(i)).collect();
        let mut ticks = tokio::time::interval(poll);
        loop {
            let forced = tokio::select! {
                _ = &mut stopped => break,
                _ = hangup.recv() => true,
                _ = ticks.tick() => false,
            };
            for (identity, last) in identities.iter().zip(seen.iter_mut()) {
                let now = modified(identity);
                if forced || now != *last {
                    *last = now;
                    match identity.reload() {
                        Ok(()) => {
                            tracing::info!(cert = %identity.files().cert.display(), "certificate reloaded")
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "certificate reload failed; keeping the previous one")
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

/// When the certificate and key files last changed.
fn modified(identity: &ReloadableIdentity) -> [Option<SystemTime>; 2] {
    let files = identity.files();
    [&files.cert, &files.key].map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}
