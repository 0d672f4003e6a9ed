//! Admission: at most `max_concurrent_benchmarks` benchmarks at once; the next is refused at
//! once with `RESOURCE_EXHAUSTED` instead of queueing without bound.
//!
//! Only `BenchmarkService` calls are counted and refused: health checks and reflection always
//! go through, so an overloaded gateway still answers its load balancer's probes (and is not
//! restarted for being busy).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::Semaphore;
use tonic::codegen::http;
use tower::{Layer, Service};

/// Calls under this path prefix are admitted against the limit.
const LIMITED: &str = "/psonet.v1.BenchmarkService/";

/// Limits concurrent benchmarks across all connections.
#[derive(Clone)]
pub struct AdmissionLayer {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl AdmissionLayer {
    /// At most `limit` benchmarks in flight.
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            layer: self.clone(),
        }
    }
}

/// A listener's services behind admission.
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    layer: AdmissionLayer,
}

impl<S, B, R> Service<http::Request<B>> for Admission<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !request.uri().path().starts_with(LIMITED) {
            return Box::pin(self.inner.call(request));
        }
        let Ok(permit) = self.layer.permits.clone().try_acquire_owned() else {
            let limit = self.layer.limit;
            let refused = tonic::Status::resource_exhausted(format!(
                "the gateway is serving its maximum of {limit} benchmarks; retry shortly"
            ));
            return Box::pin(async move { Ok(refused.into_http()) });
        };
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            drop(permit);
            response
        })
    }
}
