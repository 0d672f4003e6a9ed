//! Outbound links: a long-lived mutual-TLS connection that a facility node dials *out* to the
//! gateway and then serves its federation API over, so a node behind a hospital firewall needs
//! no inbound port (the PopMedNet/AKTIN "pull" model, done with one connection instead of
//! polling).
//!
//! On a link the roles are crossed: the node is the TLS client and the HTTP/2 server, the
//! gateway the TLS server and the HTTP/2 client. tonic serves any stream that implements
//! [`Connected`] (see `tonic::transport::server::Connected`), and is a client over any stream a
//! connector hands it, so neither side needs a second query path. What both sides share is here:
//!
//! - [`WhenClosed`], a stream that reports when the connection it carries has ended and why, so a
//!   node knows when to redial and a gateway when to forget a link;
//! - [`DialledPeer`], the connection info of a connection this process *dialled* and serves: the
//!   certificates the TLS server presented. tonic's own `TlsConnectInfo` exists only for accepted
//!   connections, so [`crate::auth::AccessRule`] reads a dialled peer from here;
//! - [`Keepalive`], the HTTP/2 PING settings both sides use to find a dead link within seconds.

use rustls::pki_types::CertificateDer;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tonic::transport::server::Connected;

/// Why a link ended, as the stream saw it: the first I/O error, or none for a clean close.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkEnd {
    /// The first read or write error on the link, in words (a TLS alert from the peer, a reset).
    pub error: Option<String>,
    /// The I/O error kind of that error, to classify it.
    pub kind: Option<io::ErrorKind>,
}

/// Resolves once the link stream it was made with is dropped, with how it ended.
pub type Closed = oneshot::Receiver<LinkEnd>;

/// A stream that says when it is dropped — which is when hyper has finished with the connection
/// (closed by either side, failed, or timed out by keepalive) — and keeps its first I/O error.
pub struct WhenClosed<T> {
    io: T,
    end: LinkEnd,
    tx: Option<oneshot::Sender<LinkEnd>>,
}

impl<T> WhenClosed<T> {
    /// Wraps `io`; the receiver resolves when the wrapper is dropped.
    pub fn new(io: T) -> (Self, Closed) {
        let (tx, rx) = oneshot::channel();
        let wrapped = Self {
            io,
            end: LinkEnd::default(),
            tx: Some(tx),
        };
        (wrapped, rx)
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    fn note<R>(&mut self, result: &io::Result<R>) {
        if let Err(e) = result
            && self.end.error.is_none()
        {
            self.end.error = Some(e.to_string());
            self.end.kind = Some(e.kind());
        }
    }
}

impl<T> Drop for WhenClosed<T> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(std::mem::take(&mut self.end));
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WhenClosed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(result) = &poll {
            self.note(result);
        }
        poll
    }
}

/// `AsyncWrite` for a wrapper whose writes go to its `io` unchanged (only reads, or what it
/// tells tonic about the connection, differ).
macro_rules! forward_writes {
    ($wrapper:ident) => {
        impl<T: AsyncWrite + Unpin> AsyncWrite for $wrapper<T> {
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.io).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.io.is_write_vectored()
            }

            fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.io).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Pin::new(&mut self.io).poll_shutdown(cx)
            }
        }
    };
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WhenClosed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(result) = &poll {
            self.note(result);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(result) = &poll {
            self.note(result);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        if let Poll::Ready(result) = &poll {
            self.note(result);
        }
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A stream whose first bytes were already read: they are read again first, then the stream.
///
/// A node reads the gateway's first frame itself before it counts a link as made: under
/// TLS 1.3 the client's handshake completes before the server has checked the client's
/// certificate, so a refusal (an `access_denied` alert) arrives as the first read. Those bytes
/// are then handed to the HTTP/2 server unchanged.
pub struct Prefixed<T> {
    prefix: Vec<u8>,
    read: usize,
    io: T,
}

impl<T> Prefixed<T> {
    /// `io`, whose first bytes `prefix` were read from it already.
    pub fn new(prefix: Vec<u8>, io: T) -> Self {
        Self {
            prefix,
            read: 0,
            io,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.read < self.prefix.len() {
            let rest = &self.prefix[self.read..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            self.read += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

forward_writes!(Prefixed);

/// The other end of a connection this process dialled and now serves gRPC on: what tonic puts
/// in each request's extensions for a link, where a listener would put `TlsConnectInfo`.
#[derive(Debug, Clone)]
pub struct DialledPeer {
    /// The certificate chain the TLS server presented (leaf first), already verified against
    /// our CA during the handshake.
    pub certificates: Arc<Vec<CertificateDer<'static>>>,
    /// The address dialled.
    pub address: Option<SocketAddr>,
}

/// A dialled TLS client stream served as if accepted: tonic reads [`DialledPeer`] from it.
pub struct DialledLink<T> {
    io: WhenClosed<T>,
    peer: DialledPeer,
}

impl<T> DialledLink<T> {
    /// `io`, dialled to `peer`.
    pub fn new(io: WhenClosed<T>, peer: DialledPeer) -> Self {
        Self { io, peer }
    }
}

impl<T> Connected for DialledLink<T> {
    type ConnectInfo = DialledPeer;

    fn connect_info(&self) -> DialledPeer {
        self.peer.clone()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DialledLink<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

forward_writes!(DialledLink);

/// HTTP/2 keepalive on a link: a PING after `interval` of silence, and the connection is closed
/// when its answer takes longer than `timeout`. A link through a dead NAT, a frozen peer or a
/// pulled cable is found within `interval + timeout`, where TCP alone would wait for minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence before a PING.
    pub interval: Duration,
    /// Longest wait for the PING's answer.
    pub timeout: Duration,
}

/// Default silence before a PING, in ms.
pub const DEFAULT_KEEPALIVE_INTERVAL_MS: u64 = 2_000;
/// Default wait for a PING's answer, in ms.
pub const DEFAULT_KEEPALIVE_TIMEOUT_MS: u64 = 3_000;

impl Keepalive {
    /// Keepalive from the two config values, in ms.
    pub fn from_ms(interval_ms: u64, timeout_ms: u64) -> Self {
        Self {
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
        }
    }
}

/// When a DER certificate stops being valid (shown beside each link, so an expiry that would
/// break the link is seen coming); `None` if it cannot be parsed.
pub fn not_after(certificate: &[u8]) -> Option<SystemTime> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(certificate).ok()?;
    let seconds = cert.validity().not_after.timestamp();
    let seconds = u64::try_from(seconds).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// A time as the protobuf `Timestamp` link listings carry.
pub fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_dropped_stream_reports_its_first_error() {
        let (a, b) = tokio::io::duplex(64);
        let (mut wrapped, closed) = WhenClosed::new(a);
        drop(b);
        // The peer is gone: a write fails with a broken pipe, which the end report keeps.
        let write = wrapped.write_all(b"hello").await;
        assert!(write.is_err());
        let mut buf = [0u8; 4];
        let _ = wrapped.read(&mut buf).await;
        drop(wrapped);
        let end = closed.await.unwrap();
        assert_eq!(end.kind, Some(io::ErrorKind::BrokenPipe), "{end:?}");
    }

    #[tokio::test]
    async fn bytes_read_ahead_are_read_again_first() {
        let (a, mut b) = tokio::io::duplex(64);
        b.write_all(b"world").await.unwrap();
        let mut prefixed = Prefixed::new(b"hello ".to_vec(), a);
        let mut buf = [0u8; 11];
        prefixed.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello world");
    }

    #[tokio::test]
    async fn a_clean_close_reports_no_error() {
        let (a, _b) = tokio::io::duplex(64);
        let (wrapped, closed) = WhenClosed::new(a);
        drop(wrapped);
        assert_eq!(closed.await.unwrap(), LinkEnd::default());
    }
}
