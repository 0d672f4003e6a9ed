//! Listening and stopping: what every psonet server does the same way.
//!
//! Listeners are bound before a server reports itself started, so a caller learns the real
//! address (port 0 picks a free one) and a port clash is an error at start, not later.

use crate::auth::AccessRule;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::{Router, TcpIncoming};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

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
/// router, behind the same access rule as the listener's own services. Reflection lists only
/// `services`, so it describes exactly what this listener serves. Every service starts
/// `SERVING`: a router is only built once the store is open and the certificates are loaded.
pub async fn with_operations<L>(
    router: Router<L>,
    rule: &AccessRule,
    services: &[&str],
) -> Result<(Router<L>, HealthReporter), tonic_reflection::server::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for service in services {
        reporter
            .set_service_status(*service, ServingStatus::Serving)
            .await;
    }
    let reflection = || {
        let builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(psonet_proto::FILE_DESCRIPTOR_SET)
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
