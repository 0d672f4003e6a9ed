//! The link listener: nodes behind a firewall dial in here, and each accepted connection becomes
//! a client channel to that node's federation API.
//!
//! The gateway is the TLS server and the HTTP/2 *client* of a link. tonic builds a `Channel`
//! over any stream a connector hands it (`Endpoint::connect_with_connector`); here the connector
//! hands over the accepted stream, once. The channel is connected at once — the HTTP/2
//! handshake starts before any query — and carries HTTP/2 keepalive, so a node that froze or
//! vanished is dropped within seconds and shows as not linked.

use crate::link::table::LinkTable;
use crate::link::verifier::RegisteredFacilities;
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use psonet_serve::identity::{Principal, Role};
use psonet_serve::link::{Keepalive, WhenClosed, not_after};
use psonet_serve::listener::{BoundListener, Shutdown, tls_incoming};
use psonet_serve::security_log::SecurityLog;
use psonet_serve::tls::{ReloadableIdentity, TlsError};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

/// What the link listener needs besides its socket.
pub struct LinkAcceptor {
    /// The gateway's identity: its certificate is presented to nodes, its CA checks theirs.
    pub identity: Arc<ReloadableIdentity>,
    /// The network.
    pub network: String,
    /// Facilities that may link: the registry.
    pub facilities: Vec<String>,
    /// HTTP/2 keepalive of each link.
    pub keepalive: Keepalive,
    /// Where live links are kept.
    pub table: Arc<LinkTable>,
    /// Where refused links go on record (logged, counted as `psonet_refusals_total`).
    pub log: Arc<SecurityLog>,
}

impl LinkAcceptor {
    /// Accepts links on `listener` until `shutdown`, then drops every link. Handshakes run as
    /// on every listener ([`tls_incoming`]: concurrently, with a time limit, each refusal on
    /// record), with the registry check inside.
    pub fn serve(
        self,
        listener: BoundListener,
        shutdown: &Shutdown,
    ) -> Result<tokio::task::JoinHandle<()>, TlsError> {
        let verifier = |ca| {
            RegisteredFacilities::new(ca, &self.network, self.facilities.clone())
                as Arc<dyn rustls::server::danger::ClientCertVerifier>
        };
        let config = self.identity.server_config_with(verifier)?;
        let mut incoming = tls_incoming(listener.incoming, config, self.log.clone());
        let this = Arc::new(self);
        let stopped = shutdown.signalled();
        Ok(tokio::spawn(async move {
            tokio::pin!(stopped);
            loop {
                let stream = tokio::select! {
                    _ = &mut stopped => break,
                    next = incoming.next() => match next {
                        Some(Ok(stream)) => stream,
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "link accept failed");
                            continue;
                        }
                        None => break,
                    },
                };
                tokio::spawn(this.clone().link(stream));
            }
            this.table.clear();
        }))
    }

    /// One node linked (the verifier admitted a registered facility only): a channel over the
    /// connection, kept in the table until the connection ends.
    async fn link(self: Arc<Self>, stream: TlsStream<TcpStream>) {
        let peer = stream
            .get_ref()
            .0
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let Some((facility, expires)) = self.facility_of(&stream) else {
            return;
        };
        let (io, closed) = WhenClosed::new(stream);
        let channel = match self.channel_over(io).await {
            Ok(channel) => channel,
            Err(e) => {
                tracing::warn!(%peer, %facility, error = %e, "link failed before its first call");
                return;
            }
        };
        let id = self.table.add(&facility, channel, peer, expires);
        tracing::info!(%peer, %facility, "facility linked");
        let end = closed.await.unwrap_or_default();
        let why = end
            .error
            .unwrap_or_else(|| "closed by the node, or no answer to keepalive".into());
        self.table.remove(&facility, id, &why);
        tracing::info!(%peer, %facility, "link closed: {why}");
    }

    /// The registered facility a verified node certificate names, and when it expires.
    fn facility_of(
        &self,
        stream: &TlsStream<TcpStream>,
    ) -> Option<(String, Option<std::time::SystemTime>)> {
        let leaf = stream.get_ref().1.peer_certificates()?.first()?;
        match Principal::from_certificate_der(leaf).ok()?.role {
            Role::Facility(id) => Some((id, not_after(leaf))),
            _ => None,
        }
    }

    /// An HTTP/2 client channel over the accepted stream, with keepalive.
    async fn channel_over(
        &self,
        io: WhenClosed<TlsStream<TcpStream>>,
    ) -> Result<Channel, tonic::transport::Error> {
        let once = Arc::new(Mutex::new(Some(TokioIo::new(io))));
        let connector = tower::service_fn(move |_: Uri| {
            let io = once.lock().unwrap_or_else(PoisonError::into_inner).take();
            async move {
                io.ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotConnected, "the link has closed")
                })
            }
        });
        Endpoint::from_static("http://link.psonet")
            .http2_keep_alive_interval(self.keepalive.interval)
            .keep_alive_timeout(self.keepalive.timeout)
            .keep_alive_while_idle(true)
            .connect_with_connector(connector)
            .await
    }
}
