//! Secure-aggregation rounds of concurrent queries: every one is audited before it answers,
//! and their audit records share flushes (the store's group commit), so a node answering many
//! executions at once does not pay one fsync per round.

use psonet_core::month::Month;
use psonet_core::pb::{self, secure_aggregation_service_server::SecureAggregationService};
use psonet_core::secagg::protocol::min_threshold;
use psonet_node::audit::records;

mod common;

use common::{SecureNode, gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rounds_are_each_audited_and_share_flushes() {
    // `_dir` keeps the store's directory until the test ends.
    let SecureNode {
        dir: _dir,
        store,
        audit,
        node,
        cohort,
    } = SecureNode::start().await;
    let month = Month::current().minus(1).to_string();
    let rounds = 32u8;
    let flushes_before = store.flushes();
    let calls: Vec<_> = (0..rounds)
        .map(|i| {
            let node = node.clone();
            let request = pb::MaskedRoundRequest {
                query_id: vec![i; 16],
                query: Some(pb::AggregateRequest {
                    month_from: month.clone(),
                    month_to: month.clone(),
                    group_by: vec![pb::Dimension::Harm as i32],
                    ..Default::default()
                }),
                cohort: cohort.clone(),
                threshold: min_threshold(3) as u32,
            };
            tokio::spawn(async move { node.masked_round(gateway(request)).await })
        })
        .collect();
    for call in calls {
        let answer = call.await.unwrap().expect("round 1").into_inner();
        assert_eq!(answer.shares.len(), 3 * 32);
    }
    let flushes = store.flushes() - flushes_before;
    let audited = records(&audit).unwrap();
    let secure: Vec<_> = audited
        .iter()
        .filter_map(|r| r.secure_round.as_ref())
        .collect();
    assert_eq!(secure.len(), usize::from(rounds));
    assert!(secure.iter().all(|s| s.round == 1 && s.cohort_size == 3));
    assert!(secure.iter().all(|s| s.revealed.contains("masked vector")));
    println!(
        "{rounds} concurrent rounds, each audited and durable before it answered: {flushes} flushes"
    );
    assert!(
        flushes < u64::from(rounds),
        "{rounds} concurrent rounds needed {flushes} flushes"
    );
}
