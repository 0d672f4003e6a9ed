//! The network's adoption of each guidance item: how many facilities acknowledged its current
//! version and how many adopt it, asked of every node (`GuidanceStatusService`) and released
//! only under the network's release rule — enough facilities answering, and no facility holding
//! more than the allowed share of a count (so "1 facility adopted" is withheld, as any cell
//! one facility dominates is).

use crate::client::registry::Registry;
use crate::node_rpc::{NodeReply, ask_all, request};
use psonet_core::network_release::NetworkReleaseRule;
use psonet_core::pb::{self, guidance_status_service_client::GuidanceStatusServiceClient};
use std::time::Duration;

/// Every node's guidance status.
pub async fn ask_status(
    registry: &Registry,
    querier: &str,
    deadline: Duration,
) -> Vec<NodeReply<pb::GuidanceStatusResponse>> {
    ask_all(registry, deadline, |channel, deadline| {
        let message = pb::GuidanceStatusRequest {
            querier: querier.to_string(),
        };
        async move {
            GuidanceStatusServiceClient::new(channel)
                .guidance_status(request(message, deadline))
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await
}

/// One facility's 0/1 contributions to an item's counts: (acknowledged, adopted).
fn contribution(status: &pb::GuidanceStatusResponse, item: &pb::GuidanceItem) -> (u64, u64) {
    status
        .entries
        .iter()
        .find(|e| e.guidance_id == item.guidance_id && e.version == item.version)
        .map_or((0, 0), |e| {
            (u64::from(e.acknowledged), u64::from(e.adopted))
        })
}

/// The adoption row of `item` from the statuses of the facilities that answered.
pub fn adoption_row(
    item: &pb::GuidanceItem,
    answered: &[pb::GuidanceStatusResponse],
    rule: &NetworkReleaseRule,
) -> pb::GuidanceAdoptionRow {
    let (acknowledged, adopted): (Vec<u64>, Vec<u64>) =
        answered.iter().map(|s| contribution(s, item)).unzip();
    let mut row = pb::GuidanceAdoptionRow {
        guidance_id: item.guidance_id.clone(),
        version: item.version,
        facilities_answering: answered.len() as u32,
        ..Default::default()
    };
    match rule
        .check(&acknowledged)
        .and_then(|()| rule.check(&adopted))
    {
        Ok(()) => {
            row.acknowledged = acknowledged.iter().sum::<u64>() as u32;
            row.adopted = adopted.iter().sum::<u64>() as u32;
        }
        Err(why) => {
            row.withheld = true;
            row.withheld_reason = why.to_string();
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(acknowledged: bool, adopted: bool) -> pb::GuidanceStatusResponse {
        pb::GuidanceStatusResponse {
            entries: vec![pb::GuidanceStatusEntry {
                guidance_id: "g".into(),
                version: 2,
                acknowledged,
                adopted,
            }],
        }
    }

    #[test]
    fn counts_are_released_only_under_the_release_rule() {
        let item = pb::GuidanceItem {
            guidance_id: "g".into(),
            version: 2,
            ..Default::default()
        };
        let rule = NetworkReleaseRule::new(4, 0.75).unwrap();
        let mut answered = vec![
            status(true, true),
            status(true, true),
            status(true, false),
            status(false, false),
        ];
        let row = adoption_row(&item, &answered, &rule);
        assert_eq!((row.acknowledged, row.adopted, row.withheld), (3, 2, false));
        // One adopter holds the whole count: withheld.
        answered[1].entries[0].adopted = false;
        let row = adoption_row(&item, &answered, &rule);
        assert!(
            row.withheld && row.withheld_reason.contains("one facility"),
            "{row:?}"
        );
        // Too few answering.
        let row = adoption_row(&item, &answered[..3], &rule);
        assert!(row.withheld, "{row:?}");
        // An acknowledgement of an older version does not count.
        let old = pb::GuidanceItem { version: 3, ..item };
        assert_eq!(adoption_row(&old, &answered, &rule).acknowledged, 0);
    }
}
