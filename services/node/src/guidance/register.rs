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

/// Writes pulled `items` (the guidance in force), each keeping the facility's status, and marks
/// every held item that is no longer in force as withdrawn; returns how many items changed.
/// Not yet durable.
pub fn store_pulled(store: &Store, items: &[pb::GuidanceItem]) -> Result<usize, StoreError> {
    let mut changed = 0;
    for item in items {
        let id = item.guidance_id.clone();
        changed += store.change_record(GUIDANCE_TREE, id.as_bytes(), |old| {
            let old = old.map(|b| decode(&id, b)).transpose()?;
            let new = GuidanceRecord::pulled(item, old.as_ref());
            Ok(write_if_changed(old.as_ref(), new))
        })?;
    }
    for (id, held) in list(store)? {
        if held.withdrawn || items.iter().any(|i| i.guidance_id == id) {
            continue;
        }
        changed += store.change_record(GUIDANCE_TREE, id.as_bytes(), |old| {
            let Some(old) = old.map(|b| decode(&id, b)).transpose()? else {
                return Ok(RecordChange {
                    write: None,
                    outcome: 0,
                });
            };
            let new = GuidanceRecord {
                withdrawn: true,
                ..old.clone()
            };
            Ok(write_if_changed(Some(&old), new))
        })?;
    }
    Ok(changed)
}

/// Writes `new` unless it is what is held; the outcome is 1 when written.
fn write_if_changed(old: Option<&GuidanceRecord>, new: GuidanceRecord) -> RecordChange<usize> {
    let same = old == Some(&new);
    RecordChange {
        write: (!same).then(|| new.encode_to_vec()),
        outcome: usize::from(!same),
    }
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
        // Withdrawn by the PSO: kept with its status, and back when published again.
        assert_eq!(store_pulled(&store, &[]).unwrap(), 1);
        let (_, held) = list(&store).unwrap().remove(0);
        assert!(held.withdrawn && held.adopted);
        store_pulled(&store, &[item(2)]).unwrap();
        assert!(!list(&store).unwrap()[0].1.withdrawn);
    }
}
