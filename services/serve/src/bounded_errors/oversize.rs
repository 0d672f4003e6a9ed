//! A request message over the server's size limit gets `RESOURCE_EXHAUSTED`, the code gRPC
//! specifies for it (grpc-go, grpc-java and grpc-core all answer so), not the `OUT_OF_RANGE`
//! tonic's decoder gives it. A partner's client library handles a size refusal the same way
//! whichever gRPC server it talks to.
//!
//! tonic says which refusal it is only in its message ("Error, decoded message length too
//! large: found N bytes, the limit is: M bytes"), so that is what is matched; the end-to-end
//! test of the bound sends a 5 MB message and pins the code, so a tonic that words it
//! differently fails there rather than in a partner's hands.

use tonic::Code;

/// The start of tonic's message for a request over the decoding limit.
const TONIC_OVERSIZE: &str = "Error, decoded message length too large";

/// The code a client should see for an error tonic sent as `code` with `message`.
pub fn conventional_code(code: Code, message: &str) -> Code {
    if code == Code::OutOfRange && message.starts_with(TONIC_OVERSIZE) {
        Code::ResourceExhausted
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tonics_oversize_refusal_changes_code() {
        let tonic = "Error, decoded message length too large: found 5242880 bytes, the limit is: 4194304 bytes";
        assert_eq!(
            conventional_code(Code::OutOfRange, tonic),
            Code::ResourceExhausted
        );
        assert_eq!(
            conventional_code(Code::OutOfRange, "month out of range"),
            Code::OutOfRange
        );
        assert_eq!(
            conventional_code(Code::InvalidArgument, tonic),
            Code::InvalidArgument
        );
    }
}
