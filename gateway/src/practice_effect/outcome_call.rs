//! Asking every node whether it adopted a practice, and for its before/after counts if so
//! (`PracticeOutcomeService`), through [`crate::node_rpc`].

use crate::client::registry::Registry;
use crate::node_rpc::{NodeReply, ask_all as ask_nodes, request};
use psonet_core::pb::{self, practice_outcome_service_client::PracticeOutcomeServiceClient};
use std::time::Duration;

/// One node's answer, or why there is none.
pub type OutcomeAnswer = NodeReply<pb::PracticeOutcomeResponse>;

/// Sends `outcome` to every facility of `registry` at once; none is waited for past `deadline`.
pub async fn ask_all(
    registry: &Registry,
    outcome: &pb::PracticeOutcomeRequest,
    deadline: Duration,
) -> Vec<OutcomeAnswer> {
    ask_nodes(registry, deadline, |channel, deadline| {
        let message = outcome.clone();
        async move {
            PracticeOutcomeServiceClient::new(channel)
                .practice_outcome(request(message, deadline))
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await
}
