//! Connecting to a node: TCP, then TLS with the gateway's current client certificate.
//!
//! tonic's own TLS fixes the client certificate when the channel is built; this connector
//! takes it from a rustls configuration whose certificate resolver is reloaded in place, so a
//! rotated gateway certificate is presented from the next connection on, without a restart.

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
/// that the node's certificate names `server_name`.
#[derive(Clone)]
pub struct NodeConnector {
    tls: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl NodeConnector {
    /// A connector with `config` for a node whose certificate must name `server_name`.
    pub fn new(config: Arc<ClientConfig>, server_name: &str) -> Result<Self, String> {
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|e| format!("{server_name:?} is not a host name or IP address: {e}"))?;
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(config),
            server_name,
        })
    }
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
        Box::pin(async move {
            let host = uri.host().unwrap_or("localhost").trim_matches(['[', ']']);
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host, port)).await?;
            tcp.set_nodelay(true)?;
            Ok(hyper_util::rt::TokioIo::new(tls.connect(name, tcp).await?))
        })
    }
}
