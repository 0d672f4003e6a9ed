//! Guidance in the store: pulled items written (keeping the facility's status), the
//! facility's acknowledgements, and reads — each write one transaction under the write gate.

use super::GUIDANCE_TREE;
use super::record::GuidanceRecord;
use crate::store::{RecordChange, Store, StoreError};
use prost::Message;
use psonet_core::pb;

fn decode(id: &str, bytes: &[u8]) -> Result<GuidanceRecord, StoreError> {
    GuidanceRecord::decode(bytes)
        .map_err(|e| StoreError::Corrupt(format!("stored guidance {id}: {e}")))
}

/// Writes pulled `items`, each keeping the facility's status; returns how many were new or
/// changed. Not yet durable.
pub fn store_pulled(store: &Store, items: &[pb::GuidanceItem]) -> Result<usize, StoreError> {
    let mut changed = 0;
    for item in items {
        let id = item.guidance_id.clone();
        changed += store.change_record(GUIDANCE_TREE, id.as_bytes(), |old| {
            let old = old.map(|b| decode(&id, b)).transpose()?;
            let new = GuidanceRecord::pulled(item, old.as_ref());
            let same = old.as_ref() == Some(&new);
            Ok(RecordChange {
                write: (!same).then(|| new.encode_to_vec()),
                outcome: usize::from(!same),
            })
        })?;
    }
    Ok(changed)
}

/// Acknowledges the current version of `id`, recording adoption as `adopt`; `None` when the
/// node holds no such item. Not yet durable.
pub fn acknowledge(
    store: &Store,
    id: &str,
    adopt: bool,
) -> Result<Option<GuidanceRecord>, StoreError> {
    store.change_record(GUIDANCE_TREE, id.as_bytes(), |old| {
        let Some(bytes) = old else {
            return Ok(RecordChange {
                write: None,
                outcome: None,
            });
        };
        let mut record = decode(id, bytes)?;
        record.acknowledged_version = record.version;
        record.adopted = adopt;
        Ok(RecordChange {
            write: Some(record.encode_to_vec()),
            outcome: Some(record),
        })
    })
}

/// Every item the node holds, in id order.
pub fn list(store: &Store) -> Result<Vec<(String, GuidanceRecord)>, StoreError> {
    store
        .records(GUIDANCE_TREE)?
        .into_iter()
        .map(|(key, bytes)| {
            let id = String::from_utf8_lossy(&key).into_owned();
            decode(&id, &bytes).map(|r| (id, r))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(version: u32) -> pb::GuidanceItem {
        pb::GuidanceItem {
            guidance_id: "fall-bundle".into(),
            version,
            kind: pb::GuidanceKind::BestPractice as i32,
            title: "Fall bundle".into(),
            practice_code: "fall-bundle".into(),
            published: "2026-03-01".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_version_keeps_the_status_and_asks_for_a_new_acknowledgement() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store_pulled(&store, &[item(1)]).unwrap(), 1);
        assert_eq!(store_pulled(&store, &[item(1)]).unwrap(), 0, "unchanged");
        assert!(acknowledge(&store, "nope", true).unwrap().is_none());
        let acked = acknowledge(&store, "fall-bundle", true).unwrap().unwrap();
        assert_eq!((acked.acknowledged_version, acked.adopted), (1, true));
        store_pulled(&store, &[item(2)]).unwrap();
        let (_, held) = list(&store).unwrap().remove(0);
        assert_eq!((held.version, held.acknowledged_version), (2, 1));
        assert!(held.adopted);
    }
}
