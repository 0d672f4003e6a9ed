//! The scrape endpoint: `GET /metrics` over plain HTTP/1.1, served by hyper.
//!
//! hyper is already in every server's build (tonic serves gRPC with it), so the endpoint costs
//! no crate, and HTTP parsing, header limits and timeouts are hyper's rather than ours. Each
//! response closes its connection, as scrapes are seconds apart; a client that sends no
//! request head within [`HEADER_TIMEOUT`] is dropped.

use super::registry::Metrics;
use crate::listener::Shutdown;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::prometheus_text;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The longest a client may take to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` on `addr` (plain HTTP: bind it to a private interface) until
/// `shutdown`; returns the bound address.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: &Shutdown,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {addr} (metrics): {e}"))
    })?;
    let bound = listener.local_addr()?;
    let stopped = shutdown.signalled();
    tokio::spawn(async move {
        tokio::pin!(stopped);
        loop {
            let (tcp, _) = tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok(c) => c,
                    Err(_) => continue,
                },
            };
            let metrics = metrics.clone();
            let service = service_fn(move |request| {
                let response = answer(&request, &metrics);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(tcp), service);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "metrics connection failed");
                }
            });
        }
    });
    Ok(bound)
}

/// The exposition for `GET /metrics`, 404 for anything else.
fn answer(request: &Request<Incoming>, metrics: &Metrics) -> Response<String> {
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return status(StatusCode::NOT_FOUND);
    }
    match metrics.render() {
        Ok(text) => {
            let mut response = Response::new(text);
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
            );
            response
        }
        Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// An empty response with `code`.
fn status(code: StatusCode) -> Response<String> {
    let mut response = Response::new(String::new());
    *response.status_mut() = code;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut text = String::new();
        // The server closes the connection after its answer, so this returns.
        conn.read_to_string(&mut text).await.unwrap();
        text
    }

    #[tokio::test]
    async fn serves_the_exposition_at_metrics_only_and_stops_on_shutdown() {
        let metrics = Metrics::new();
        metrics.observe_rpc("/a.B/C", tonic::Code::Ok, Duration::from_millis(1));
        let shutdown = Shutdown::new();
        let addr = serve_metrics("127.0.0.1:0".parse().unwrap(), metrics, &shutdown)
            .await
            .unwrap();
        let text = get(addr, "/metrics").await;
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{text}"
        );
        assert!(
            text.contains("\r\n\r\n# HELP psonet_rpc_requests_total "),
            "{text}"
        );
        assert!(
            text.contains("psonet_rpc_requests_total{rpc=\"/a.B/C\",code=\"Ok\"} 1\n"),
            "{text}"
        );
        let text = get(addr, "/other").await;
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        shutdown.trigger();
        let closed = async {
            while tokio::net::TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("the listener closes on shutdown");
    }
}
