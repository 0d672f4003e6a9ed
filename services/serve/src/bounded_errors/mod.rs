//! One bound for every error a server sends.
//!
//! A gRPC error travels in HTTP/2 headers (or trailers): its message in `grpc-message` and its
//! rich details (`google.rpc.BadRequest` and the like) in `grpc-status-details-bin`. Standard
//! clients refuse header blocks over 16 KB (grpc-go and grpc-core; Python's grpcio then
//! reports `RESOURCE_EXHAUSTED "received metadata size exceeds hard limit"` instead of the
//! real error), so an error that echoes a 3 MB field or lists 10,000 violations does not just
//! waste bandwidth: the caller never learns what was wrong.
//!
//! [`bound`] shrinks a status to a fixed budget — lists capped with an "and N more" entry,
//! texts truncated with a note of what was cut, the whole well under 8 KB — and
//! [`BoundedErrorsLayer`] applies it to every response a listener sends, whichever handler,
//! interceptor or tonic itself built the status, so no handler can forget it. The layer also
//! gives a request over the size limit the code gRPC specifies for it ([`conventional_code`]).

mod bound;
mod layer;
mod oversize;

#[cfg(test)]
pub(crate) use bound::wire_size;
pub use bound::{
    MAX_DETAILS_BYTES, MAX_ERROR_BYTES, MAX_LISTED, MAX_MESSAGE_BYTES, MAX_TEXT_BYTES, bound,
};
pub use layer::{BoundedErrors, BoundedErrorsLayer};
pub use oversize::conventional_code;
