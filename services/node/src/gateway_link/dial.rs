//! One link to one gateway address, for as long as the address resolves: dial, check that the
//! TLS server is the network's gateway, serve the federation API over the connection until it
//! ends, then redial after a backoff.
//!
//! The connection is the node's TLS *client* side and its HTTP/2 *server* side. tonic serves it
//! like an accepted connection (see [`psonet_serve::link`]); the gateway's requests go through
//! the same router, access rule, disclosure control and audit trail as on the federation
//! listener.

use super::backoff::Backoff;
use super::state::LinkStates;
use futures::future::BoxFuture;
use psonet_serve::diagnose::diagnose_tls_io;
use psonet_serve::identity::Principal;
use psonet_serve::link::{
    Closed, DialledLink, DialledPeer, LinkEnd, Prefixed, WhenClosed, not_after,
};
use psonet_serve::listener::Shutdown;
use psonet_serve::peer_identity::verify_peer;
use rustls::pki_types::ServerName;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The stream a link is served on.
pub type LinkStream = DialledLink<Prefixed<TlsStream<TcpStream>>>;

/// Room for the gateway's first frames (its HTTP/2 preface and settings).
const FIRST_READ: usize = 16 * 1024;

/// Serves the federation router on one link until the signal future completes, then lets
/// in-flight calls finish (the node builds it from its one federation router).
pub type ServeLink = Arc<
    dyn Fn(LinkStream, BoxFuture<'static, ()>) -> BoxFuture<'static, Result<(), String>>
        + Send
        + Sync,
>;

/// A link that stayed up this long was a success: the next break redials from the first,
/// shortest wait instead of the grown one.
const HELD: Duration = Duration::from_secs(5);

/// A link just made, not yet served.
struct Dialled {
    link: LinkStream,
    closed: Closed,
    /// When the gateway's certificate expires.
    expires: Option<SystemTime>,
}

/// How one address is dialled; cloned into each address's task.
#[derive(Clone)]
pub struct Dialler {
    /// TLS client configuration presenting the node's (reloadable) certificate.
    pub tls: TlsConnector,
    /// The name the gateway's certificate must carry.
    pub server_name: ServerName<'static>,
    /// The network whose gateway the TLS server must be.
    pub network: String,
    /// Longest TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// First and longest backoff.
    pub backoff: (Duration, Duration),
    /// Serves the federation router on a link.
    pub serve: ServeLink,
    /// Where the link's state is kept.
    pub states: Arc<LinkStates>,
}

impl Dialler {
    /// Keeps a link to `address` until `stop` is given, then forgets the address.
    pub async fn run(self, address: SocketAddr, stop: Shutdown) {
        self.keep_linked(address, &stop).await;
        self.states.forget(address);
    }

    async fn keep_linked(&self, address: SocketAddr, stop: &Shutdown) {
        let mut backoff = Backoff::new(self.backoff.0, self.backoff.1);
        let mut last_failure: Option<String> = None;
        let peer = format!("the gateway at {address}");
        self.states.dialling(address);
        loop {
            let outcome = tokio::select! {
                _ = stop.signalled() => return,
                dialled = self.dial(address) => dialled,
            };
            match outcome {
                Ok(Dialled {
                    link,
                    closed,
                    expires,
                }) => {
                    last_failure = None;
                    self.states.up(address, expires);
                    tracing::info!(gateway = %address, "linked to the gateway");
                    let started = Instant::now();
                    let end = self.serve_until_closed(link, closed, stop).await;
                    let held = started.elapsed();
                    if held >= HELD {
                        backoff.reset();
                    }
                    let Some(end) = end else {
                        return;
                    };
                    let why = explain(&end, &peer);
                    self.states.down(address, &why);
                    // A link ends whenever a gateway restarts or rolls: that is news, not a
                    // fault. Failing to make the next one is the fault (logged above).
                    tracing::info!(gateway = %address, held_s = held.as_secs(), "link closed: {why}");
                }
                Err(why) => {
                    self.states.down(address, &why);
                    // Said once; the same failure again (the gateway down for an hour) is only
                    // traced, and `psonet links` shows it.
                    if last_failure.as_ref() != Some(&why) {
                        tracing::warn!(gateway = %address, "cannot link: {why} (retrying with backoff)");
                    } else {
                        tracing::debug!(gateway = %address, "cannot link: {why}");
                    }
                    last_failure = Some(why);
                }
            }
            let wait = backoff.next_wait();
            tokio::select! {
                _ = stop.signalled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// TCP, TLS, the check that the server is the network's gateway, and the gateway's first
    /// frame: only then was the node's certificate accepted (see [`Prefixed`]).
    async fn dial(&self, address: SocketAddr) -> Result<Dialled, String> {
        let peer = format!("the gateway at {address}");
        let connect = async {
            let tcp = TcpStream::connect(address).await?;
            tcp.set_nodelay(true)?;
            self.tls.connect(self.server_name.clone(), tcp).await
        };
        let mut tls = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return Err(explain_io(&e, &peer)),
            Err(_) => {
                return Err(format!(
                    "{peer} did not complete the TLS handshake within {} ms",
                    self.connect_timeout.as_millis()
                ));
            }
        };
        let certificates = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|chain| {
                chain
                    .iter()
                    .map(|c| c.clone().into_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        // The same check every connection makes of its peer: the TLS server must be the
        // network's gateway, not merely some holder of a certificate from its CA.
        let gateway = Principal::gateway(&self.network);
        verify_peer(Some(&certificates), &gateway)
            .map_err(|e| format!("{peer} {e}: not linked"))?;
        let leaf = certificates
            .first()
            .ok_or_else(|| format!("{peer} presented no certificate"))?;
        let expires = not_after(leaf);
        let mut first = vec![0u8; FIRST_READ];
        let read = tokio::time::timeout(self.connect_timeout, tls.read(&mut first)).await;
        match read {
            Ok(Ok(0)) => return Err(format!("{peer} closed the link before its first frame")),
            Ok(Ok(n)) => first.truncate(n),
            Ok(Err(e)) => return Err(explain_io(&e, &peer)),
            Err(_) => {
                return Err(format!(
                    "{peer} sent nothing within {} ms of the handshake",
                    self.connect_timeout.as_millis()
                ));
            }
        }
        let (io, closed) = WhenClosed::new(Prefixed::new(first, tls));
        let link = DialledLink::new(
            io,
            DialledPeer {
                certificates: Arc::new(certificates),
                address: Some(address),
            },
        );
        Ok(Dialled {
            link,
            closed,
            expires,
        })
    }

    /// Serves `link` until it closes (`Some(how)`) or the node stops (`None`, after in-flight
    /// calls have finished).
    async fn serve_until_closed(
        &self,
        link: LinkStream,
        closed: Closed,
        stop: &Shutdown,
    ) -> Option<LinkEnd> {
        let (end_tx, end_rx) = oneshot::channel();
        let stopped = stop.signalled();
        let signal = Box::pin(async move {
            let end = tokio::select! {
                _ = stopped => None,
                end = closed => Some(end.unwrap_or_default()),
            };
            let _ = end_tx.send(end);
        });
        if let Err(e) = (self.serve)(link, signal).await {
            tracing::warn!(error = %e, "serving a link failed");
        }
        end_rx.await.ok().flatten()
    }
}

/// Why a dial failed, in words (a refused certificate is named as such).
fn explain_io(error: &io::Error, peer: &str) -> String {
    match diagnose_tls_io(error, peer) {
        Some(failure) => failure.explanation().to_string(),
        None => format!("{peer}: {error}"),
    }
}

/// How a link ended, in words: a clean close by the gateway, or what the stream saw.
fn explain(end: &LinkEnd, peer: &str) -> String {
    match (&end.error, end.kind) {
        (Some(text), Some(kind)) => explain_io(&io::Error::new(kind, text.clone()), peer),
        (Some(text), None) => format!("{peer}: {text}"),
        (None, _) => format!("{peer} closed the link"),
    }
}
