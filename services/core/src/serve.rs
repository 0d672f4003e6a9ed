//! Listening and stopping: what every psonet server does the same way.
//!
//! Listeners are bound before a server reports itself started, so a caller learns the real
//! address (port 0 picks a free one) and a port clash is an error at start, not later.

use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;

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
