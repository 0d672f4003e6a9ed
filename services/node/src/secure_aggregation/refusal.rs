//! How a secure-aggregation round says no: one `ErrorInfo` reason per cause (domain "psonet"),
//! so the gateway can act on it — refetch keys on `STALE_MASKING_KEY`, report the rest in
//! coverage — and a message a person can read.

use super::participants::ParticipantsError;
use super::round_log::RoundLogError;
use psonet_core::secagg::differencing::DifferencingError;
use psonet_core::secagg::lanes::LaneError;
use psonet_core::secagg::masking_key::MaskingKeyError;
use psonet_core::secagg::protocol::ProtocolError;
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The cohort carries another key of this node: the gateway should fetch keys again.
pub const STALE_MASKING_KEY: &str = "STALE_MASKING_KEY";
/// A cohort key failed verification.
pub const UNTRUSTED_MASKING_KEY: &str = "UNTRUSTED_MASKING_KEY";
/// This node is not in the cohort.
pub const NOT_IN_COHORT: &str = "NOT_IN_COHORT";
/// Fewer members than the node's minimum.
pub const COHORT_TOO_SMALL: &str = "COHORT_TOO_SMALL";
/// Sums over this set and earlier ones would isolate a facility.
pub const COHORT_DIFFERENCING: &str = "COHORT_DIFFERENCING";
/// The query id was used by another request.
pub const QUERY_ID_REUSED: &str = "QUERY_ID_REUSED";
/// Round 1 named its cohort by a hash this node does not hold: the gateway should send the keys.
pub const UNKNOWN_COHORT: &str = "UNKNOWN_COHORT";
/// Round 2 without round 1.
pub const ROUND_ONE_MISSING: &str = "ROUND_ONE_MISSING";
/// Round 2 already answered for other survivors.
pub const ROUND_TWO_ANSWERED: &str = "ROUND_TWO_ANSWERED";
/// The survivors, the dropped or the relayed shares do not fit round 1.
pub const BAD_SURVIVORS: &str = "BAD_SURVIVORS";
/// A value too large for the sum to stay exact.
pub const LANE_OVERFLOW: &str = "LANE_OVERFLOW";

/// A refusal with `reason` and `metadata` in its `ErrorInfo`.
pub fn refuse(code: Code, reason: &str, message: String, metadata: &[(&str, String)]) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let details = ErrorDetails::with_error_info(reason, "psonet", metadata);
    Status::with_error_details(code, message, details)
}

/// A protocol step's refusal.
pub fn protocol(e: ProtocolError) -> Status {
    use ProtocolError as P;
    let pre = Code::FailedPrecondition;
    match &e {
        P::CohortTooSmall { size, min } => refuse(
            pre,
            COHORT_TOO_SMALL,
            e.to_string(),
            &[("size", size.to_string()), ("min", min.to_string())],
        ),
        P::NotInCohort(_) => refuse(pre, NOT_IN_COHORT, e.to_string(), &[]),
        P::StaleMaskingKey(f) => refuse(
            pre,
            STALE_MASKING_KEY,
            e.to_string(),
            &[("facility", f.clone())],
        ),
        P::Threshold { .. } => crate::aggregate::one_violation("threshold", &e.to_string()),
        P::WeakKey(f) => refuse(
            pre,
            UNTRUSTED_MASKING_KEY,
            e.to_string(),
            &[("facility", f.clone())],
        ),
        P::Seal(_) | P::Shamir(_) => {
            tracing::error!(error = %e, "secure aggregation failed");
            Status::internal("the node could not seal its shares; nothing was released")
        }
        _ => refuse(pre, BAD_SURVIVORS, e.to_string(), &[]),
    }
}

/// A cohort key that does not verify.
pub fn untrusted(facility: &str, e: MaskingKeyError) -> Status {
    refuse(
        Code::FailedPrecondition,
        UNTRUSTED_MASKING_KEY,
        format!("the masking key of {facility:?} is refused: {e}"),
        &[("facility", facility.to_string())],
    )
}

/// The differencing rule's refusal, or a failing history.
pub fn participants(e: ParticipantsError) -> Status {
    match &e {
        ParticipantsError::Differencing {
            month,
            error: DifferencingError::Isolates(facility),
        } => refuse(
            Code::FailedPrecondition,
            COHORT_DIFFERENCING,
            format!(
                "refused: together with a sum this node already took part in for {month}, this \
                 cohort would reveal the figures of {facility:?} (cohorts one member apart are \
                 never both answered)"
            ),
            &[("facility", facility.clone()), ("month", month.to_string())],
        ),
        ParticipantsError::Differencing { .. } => refuse(
            Code::FailedPrecondition,
            COHORT_DIFFERENCING,
            e.to_string(),
            &[],
        ),
        ParticipantsError::Sled(_) | ParticipantsError::Corrupt(_) => {
            tracing::error!(error = %e, "participant-set history failure");
            Status::unavailable("the node's participant-set history is failing; retry later")
        }
    }
}

/// A failing round log.
pub fn round_log(e: RoundLogError) -> Status {
    tracing::error!(error = %e, "secure-aggregation round log failure");
    Status::unavailable("the node's record of answered rounds is failing; retry later")
}

/// A lane value too large for this cohort's sum.
pub fn lanes(e: LaneError) -> Status {
    match e {
        LaneError::TooLarge { .. } => refuse(Code::OutOfRange, LANE_OVERFLOW, e.to_string(), &[]),
        other => {
            tracing::error!(error = %other, "lane encoding failed");
            Status::internal("the node could not encode its lanes")
        }
    }
}

/// The node cannot make or sign its masking key.
pub fn masking_key(e: MaskingKeyError) -> Status {
    tracing::error!(error = %e, "masking key unavailable");
    Status::unavailable(format!("the node has no masking key: {e}"))
}
