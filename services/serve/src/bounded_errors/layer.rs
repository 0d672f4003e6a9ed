//! [`bound`] applied to every response of a listener, as a tower layer on the tonic server.
//!
//! The layer sees each call as HTTP. An error answered at once (unary calls, and every
//! refusal) is sent trailers-only: its status is in the response headers, rewritten here. An
//! error that ends a stream is in the trailers, rewritten as they pass. Either way the status
//! is read back from the headers tonic wrote, so it does not matter who built it — a handler,
//! an interceptor, the router or tonic's own decoder.

use super::bound::bound;
use super::oversize::conventional_code;
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use http_body_util::BodyExt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::codegen::http::{self, HeaderMap};
use tonic::{Code, Status};

/// Bounds every error a listener sends (give it to `Server::layer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BoundedErrorsLayer;

impl<S> tower::Layer<S> for BoundedErrorsLayer {
    type Service = BoundedErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BoundedErrors { inner }
    }
}

/// A listener's services, every error they send bounded.
#[derive(Debug, Clone)]
pub struct BoundedErrors<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for BoundedErrors<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<tower::BoxError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            let (mut parts, body) = response.into_parts();
            bound_headers(&mut parts.headers);
            let body = body.map_frame(|frame| match frame.into_trailers() {
                Ok(mut trailers) => {
                    bound_headers(&mut trailers);
                    http_body::Frame::trailers(trailers)
                }
                Err(frame) => frame,
            });
            Ok(http::Response::from_parts(
                parts,
                tonic::body::Body::new(body),
            ))
        })
    }
}

/// Rewrites the status in `headers` (response headers or trailers) within the bound, when it
/// is an error that exceeds it, and with the conventional code.
fn bound_headers(headers: &mut HeaderMap) {
    let Some(code) = headers.get(Status::GRPC_STATUS) else {
        return;
    };
    let sent = Code::from_bytes(code.as_bytes());
    if sent == Code::Ok {
        return;
    }
    let message = headers
        .get(Status::GRPC_MESSAGE)
        .map(|m| {
            percent_encoding::percent_decode(m.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let details = headers
        .get(Status::GRPC_STATUS_DETAILS)
        .and_then(|d| BASE64.decode(d.as_bytes()).ok())
        .unwrap_or_default();
    let code = conventional_code(sent, &message);
    let before = (message.len(), details.len());
    let bounded = bound(Status::with_details(code, message, details.into()));
    if code == sent && (bounded.message().len(), bounded.details().len()) == before {
        return;
    }
    headers.remove(Status::GRPC_MESSAGE);
    headers.remove(Status::GRPC_STATUS_DETAILS);
    // Percent-encoding and base64 always make valid header values; should that ever fail,
    // the code alone is sent rather than the oversized status.
    let _ = bounded.add_header(headers);
}

/// Base64 as gRPC writes `-bin` headers: standard alphabet, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounded_errors::{MAX_ERROR_BYTES, wire_size};
    use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

    fn oversized() -> Status {
        let list: Vec<_> = (0..10_001)
            .map(|i| FieldViolation::new(format!("records[{i}].month"), "required"))
            .collect();
        Status::with_error_details(
            Code::InvalidArgument,
            "x".repeat(100_000),
            ErrorDetails::with_bad_request(list),
        )
    }

    #[test]
    fn headers_and_trailers_are_rewritten_within_the_bound() {
        let mut headers = HeaderMap::new();
        oversized().add_header(&mut headers).unwrap();
        bound_headers(&mut headers);
        let size: usize = headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        assert!(size < MAX_ERROR_BYTES, "{size}");
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(wire_size(&status) < MAX_ERROR_BYTES);
        let bad = status.get_details_bad_request().unwrap();
        assert!(
            bad.field_violations
                .last()
                .unwrap()
                .description
                .contains("more violations")
        );
    }

    #[test]
    fn success_is_untouched() {
        let mut headers = HeaderMap::new();
        headers.insert(Status::GRPC_STATUS, "0".parse().unwrap());
        headers.insert(Status::GRPC_MESSAGE, "x".repeat(20_000).parse().unwrap());
        bound_headers(&mut headers);
        assert_eq!(headers[Status::GRPC_MESSAGE].len(), 20_000);
    }
}
