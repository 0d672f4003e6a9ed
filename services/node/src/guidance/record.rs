//! How the store keeps a guidance item and the facility's status of it: a protobuf message
//! defined here, never the API's, so the API may change without stranding the store.

use prost::Message;
use psonet_core::pb;

/// The encoded form of a pulled guidance item and the facility's status.
#[derive(Clone, PartialEq, Message)]
pub struct GuidanceRecord {
    /// Version as last pulled.
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// Kind, as its number.
    #[prost(int32, tag = "2")]
    pub kind: i32,
    /// Title.
    #[prost(string, tag = "3")]
    pub title: String,
    /// Markdown body.
    #[prost(string, tag = "4")]
    pub body: String,
    /// Metric ids.
    #[prost(string, repeated, tag = "5")]
    pub metrics: Vec<String>,
    /// Practice code.
    #[prost(string, tag = "6")]
    pub practice: String,
    /// Publication date.
    #[prost(string, tag = "7")]
    pub published: String,
    /// The version the facility acknowledged; 0 when none.
    #[prost(uint32, tag = "8")]
    pub acknowledged_version: u32,
    /// Whether the facility adopts it.
    #[prost(bool, tag = "9")]
    pub adopted: bool,
    /// Whether the PSO no longer publishes it.
    #[prost(bool, tag = "10")]
    pub withdrawn: bool,
}

impl GuidanceRecord {
    /// The record of a pulled `item`, keeping the facility's status from `old`.
    pub fn pulled(item: &pb::GuidanceItem, old: Option<&GuidanceRecord>) -> Self {
        Self {
            version: item.version,
            kind: item.kind,
            title: item.title.clone(),
            body: item.body_markdown.clone(),
            metrics: item.metric_ids.clone(),
            practice: item.practice_code.clone(),
            published: item.published.clone(),
            acknowledged_version: old.map_or(0, |o| o.acknowledged_version),
            adopted: old.is_some_and(|o| o.adopted),
            withdrawn: false,
        }
    }

    /// The item as the API shows it.
    pub fn item(&self, id: &str) -> pb::GuidanceItem {
        pb::GuidanceItem {
            guidance_id: id.to_string(),
            version: self.version,
            kind: self.kind,
            title: self.title.clone(),
            body_markdown: self.body.clone(),
            metric_ids: self.metrics.clone(),
            practice_code: self.practice.clone(),
            published: self.published.clone(),
            // The gateway served it because it is meant for this facility; whom else it is
            // for is not the node's to keep.
            target_peer_group: None,
        }
    }

    /// The item with the facility's status, as the API shows it.
    pub fn facility_view(&self, id: &str) -> pb::FacilityGuidance {
        pb::FacilityGuidance {
            item: Some(self.item(id)),
            acknowledged_version: self.acknowledged_version,
            adopted: self.adopted,
            withdrawn: self.withdrawn,
        }
    }
}
