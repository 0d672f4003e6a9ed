//! Counting and timing every RPC a listener serves, as a tower layer on the tonic server.
//!
//! The layer sees each call as HTTP: it reads the method from the path (and leaves it in the
//! request's extensions as [`CalledMethod`], for the access rule's refusals), wraps the request
//! body so the messages streamed in are counted, and reads the gRPC status from the response
//! headers (errors are sent trailers-only, so their status is there).

use super::message_count::CountingBody;
use super::registry::Metrics;
use crate::auth::CalledMethod;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::codegen::http;

/// Counts and times every RPC of a listener (give it to `Server::layer`).
#[derive(Clone)]
pub struct RpcMetricsLayer {
    metrics: Arc<Metrics>,
}

impl RpcMetricsLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A listener's services, counted and timed.
#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, R> tower::Service<http::Request<tonic::body::Body>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<R>>,
    S::Error: Into<tower::BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let method = request.uri().path().to_string();
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(CalledMethod(method.clone()));
        let (counted, counted_method) = (metrics.clone(), method.clone());
        let body = CountingBody::new(body, move |messages| {
            counted.count_messages_received(&counted_method, messages);
        });
        let request = http::Request::from_parts(parts, tonic::body::Body::new(body));
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await.map_err(Into::into);
            // Errors are sent trailers-only, so their status is in the headers; a response
            // that starts without one is counted OK (its status follows in the trailers).
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok()?.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from_i32),
                // A call shed by the listener's load shedding is answered RESOURCE_EXHAUSTED.
                Err(e) if e.is::<tower::load_shed::error::Overloaded>() => {
                    tonic::Code::ResourceExhausted
                }
                Err(_) => tonic::Code::Unavailable,
            };
            metrics.observe_rpc(&method, code, started.elapsed());
            result
        })
    }
}
