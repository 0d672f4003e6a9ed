//! Connecting to a node: TCP, then TLS with the gateway's current client certificate, then the
//! check that the node is the facility the registry says answers there.
//!
//! tonic's own TLS fixes the client certificate when the channel is built; this connector
//! takes it from a rustls configuration whose certificate resolver is reloaded in place, so a
//! rotated gateway certificate is presented from the next connection on, without a restart.
//!
//! TLS checks the node's certificate against the host name dialled; a host name proves little
//! (every node on one machine is `127.0.0.1`), so every connection is also checked with
//! [`verify_peer`]: the certificate must name `spiffe://<network>/facility/<id>` of the
//! registry entry. A node answering for another facility is refused before any query goes over
//! the connection, and the failure, a [`PeerIdentityError`] inside the I/O error, reaches the
//! coverage report through [`psonet_serve::diagnose`].

use psonet_serve::identity::Principal;
use psonet_serve::peer_identity::{PeerIdentityError, verify_peer};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tonic::codegen::http::Uri;
use tower::Service;

/// Connects to the `host:port` of the URI it is given and does the TLS handshake, checking
/// that the node's certificate names `server_name` and is the certificate of `facility`.
#[derive(Clone)]
pub struct NodeConnector {
    tls: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    facility: Arc<Principal>,
}

impl NodeConnector {
    /// A connector with `config` for the node of `facility`, whose certificate must name
    /// `server_name`.
    pub fn new(
        config: Arc<ClientConfig>,
        server_name: &str,
        facility: Principal,
    ) -> Result<Self, String> {
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|e| format!("{server_name:?} is not a host name or IP address: {e}"))?;
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(config),
            server_name,
            facility: Arc::new(facility),
        })
    }
}

/// The connection's peer must be `expected`; otherwise the I/O error that closes it.
fn check_peer(
    tls: &tokio_rustls::client::TlsStream<TcpStream>,
    expected: &Principal,
) -> std::io::Result<()> {
    verify_peer(tls.get_ref().1.peer_certificates(), expected)
        .map(drop)
        .map_err(|e: PeerIdentityError| {
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, e)
        })
}

type Io = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl Service<Uri> for NodeConnector {
    type Response = Io;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Io>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (tls, name) = (self.tls.clone(), self.server_name.clone());
        let facility = self.facility.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or("localhost").trim_matches(['[', ']']);
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host, port)).await?;
            tcp.set_nodelay(true)?;
            let tls = tls.connect(name, tcp).await?;
            check_peer(&tls, &facility)?;
            Ok(hyper_util::rt::TokioIo::new(tls))
        })
    }
}
