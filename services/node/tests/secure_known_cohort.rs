//! Round 1 over a cohort named by its hash (`MaskedRoundOnKnownCohort`): refused until the
//! node has checked that cohort's keys in a round 1 that carried them, then answered as
//! `MaskedRound` is — once per query id, audited, an identical retry replayed.

use psonet_core::month::Month;
use psonet_core::pb::{self, secure_aggregation_service_server::SecureAggregationService};
use psonet_core::secagg::mask::cohort_hash;
use psonet_core::secagg::protocol::min_threshold;
use psonet_node::audit::records;
use tonic_types::StatusExt;

mod common;

use common::{SecureNode, gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checked_cohort_is_named_by_its_hash_and_an_unknown_one_is_refused() {
    // `_dir` keeps the store's directory until the test ends.
    let SecureNode {
        dir: _dir,
        store: _,
        audit,
        node,
        cohort,
    } = SecureNode::start().await;
    let keys: Vec<(String, [u8; 32])> = cohort
        .iter()
        .map(|k| {
            (
                k.facility.clone(),
                k.public_key.as_slice().try_into().unwrap(),
            )
        })
        .collect();
    let hash = cohort_hash(keys.iter().map(|(f, k)| (f.as_str(), k))).0;
    let month = Month::current().minus(1).to_string();
    let query = pb::AggregateRequest {
        month_from: month.clone(),
        month_to: month,
        group_by: vec![pb::Dimension::Harm as i32],
        ..Default::default()
    };
    let by_hash = |id: u8| pb::MaskedRoundOnKnownCohortRequest {
        query_id: vec![id; 16],
        query: Some(query.clone()),
        cohort_hash: hash.to_vec(),
        threshold: min_threshold(3) as u32,
    };

    // Never checked: refused, audited, and the query id stays free for the keys.
    let refused = node
        .masked_round_on_known_cohort(gateway(by_hash(1)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        refused.get_details_error_info().unwrap().reason,
        "UNKNOWN_COHORT"
    );
    let full = pb::MaskedRoundRequest {
        query_id: vec![1; 16],
        query: Some(query.clone()),
        cohort: cohort.clone(),
        threshold: min_threshold(3) as u32,
    };
    let first = node.masked_round(gateway(full)).await.unwrap().into_inner();
    assert_eq!(first.shares.len(), 3 * 32);

    // Checked: the hash stands for the keys.
    let second = node
        .masked_round_on_known_cohort(gateway(by_hash(2)))
        .await
        .unwrap()
        .into_inner()
        .answer
        .unwrap();
    assert_eq!(second.shares.len(), 3 * 32);
    assert_eq!(second.lanes, first.lanes);
    assert_ne!(second.masked, first.masked);
    // An identical retry gets the same bytes; the keys under the same query id are refused.
    let again = node
        .masked_round_on_known_cohort(gateway(by_hash(2)))
        .await
        .unwrap()
        .into_inner()
        .answer
        .unwrap();
    assert_eq!(again, second);
    let reused = node
        .masked_round(gateway(pb::MaskedRoundRequest {
            query_id: vec![2; 16],
            query: Some(query.clone()),
            cohort: cohort.clone(),
            threshold: min_threshold(3) as u32,
        }))
        .await
        .unwrap_err();
    assert_eq!(
        reused.get_details_error_info().unwrap().reason,
        "QUERY_ID_REUSED"
    );
    // A hash that is not 32 bytes is malformed.
    let mut short = by_hash(3);
    short.cohort_hash.truncate(8);
    let malformed = node
        .masked_round_on_known_cohort(gateway(short))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), tonic::Code::InvalidArgument);

    let rounds: Vec<_> = records(&audit)
        .unwrap()
        .into_iter()
        .filter_map(|r| r.secure_round.map(|s| (r.outcome, s.cohort_size)))
        .collect();
    assert_eq!(rounds.len(), 6, "{rounds:?}");
    assert_eq!(rounds[0].0, "refused");
    assert_eq!(rounds[2], ("answered".to_string(), 3));
}
