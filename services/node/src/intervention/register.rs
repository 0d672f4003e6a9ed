//! The facility's register of interventions in the store: record (idempotent on the facility's
//! id), amend, end and list, each one transaction under the store's write gate.

use super::INTERVENTIONS_TREE;
use super::definition::Intervention;
use super::record::InterventionRecord;
use crate::store::{RecordChange, Store, StoreError};
use prost::Message;
use psonet_core::month::Month;

/// What recording did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Stored as revision 1.
    Stored(Intervention),
    /// Already stored with this content; nothing written.
    Duplicate(Intervention),
    /// The id holds other content.
    Conflict(Intervention),
}

/// What an amendment or an end did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// No intervention has that id.
    NotFound,
    /// Written as a new revision.
    Changed(Intervention),
    /// Already so; nothing written.
    Unchanged(Intervention),
    /// The end month is before the intervention's start month (this one).
    EndsBeforeStart(Month),
}

fn corrupt(id: &str) -> impl Fn(crate::record::RecordError) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("stored intervention {id}: {e}"))
}

fn decode(id: &str, bytes: &[u8]) -> Result<(Intervention, Vec<String>), StoreError> {
    let record = InterventionRecord::decode_bytes(bytes).map_err(corrupt(id))?;
    let reasons = record.amendment_reasons.clone();
    Ok((record.read(id).map_err(corrupt(id))?, reasons))
}

fn encode(i: &Intervention, reasons: Vec<String>) -> Vec<u8> {
    InterventionRecord::new(i, reasons).encode_to_vec()
}

/// Records `new` under its id. Not yet durable.
pub fn record(store: &Store, new: &Intervention) -> Result<Recorded, StoreError> {
    store.change_record(INTERVENTIONS_TREE, new.id.as_bytes(), |old| {
        let Some(bytes) = old else {
            let stored = Intervention {
                revision: 1,
                ..new.clone()
            };
            return Ok(RecordChange {
                write: Some(encode(&stored, Vec::new())),
                outcome: Recorded::Stored(stored),
            });
        };
        let (existing, _) = decode(&new.id, bytes)?;
        let outcome = if existing.same_content(new) {
            Recorded::Duplicate(existing)
        } else {
            Recorded::Conflict(existing)
        };
        Ok(RecordChange {
            write: None,
            outcome,
        })
    })
}

/// Changes the intervention `id` by `edit` (which may refuse an end before the start month it
/// returns), as a new revision with `reason`. Not yet durable.
fn change(
    store: &Store,
    id: &str,
    reason: &str,
    edit: impl Fn(&Intervention) -> Result<Intervention, Month>,
) -> Result<Changed, StoreError> {
    store.change_record(INTERVENTIONS_TREE, id.as_bytes(), |old| {
        let unchanged = |outcome| RecordChange {
            write: None,
            outcome,
        };
        let Some(bytes) = old else {
            return Ok(unchanged(Changed::NotFound));
        };
        let (existing, mut reasons) = decode(id, bytes)?;
        let edited = match edit(&existing) {
            Ok(edited) => edited,
            Err(start) => return Ok(unchanged(Changed::EndsBeforeStart(start))),
        };
        if edited.same_content(&existing) {
            return Ok(unchanged(Changed::Unchanged(existing)));
        }
        let stored = Intervention {
            revision: existing.revision + 1,
            ..edited
        };
        reasons.push(reason.to_string());
        Ok(RecordChange {
            write: Some(encode(&stored, reasons)),
            outcome: Changed::Changed(stored),
        })
    })
}

/// Replaces the intervention with `amended`'s id by `amended`. Not yet durable.
pub fn amend(store: &Store, amended: &Intervention, reason: &str) -> Result<Changed, StoreError> {
    change(store, &amended.id, reason, |_| Ok(amended.clone()))
}

/// Ends the intervention `id` in `end`. Not yet durable.
pub fn end(store: &Store, id: &str, end: Month) -> Result<Changed, StoreError> {
    change(store, id, &format!("ended in {end}"), |existing| {
        if end < existing.start {
            return Err(existing.start);
        }
        Ok(Intervention {
            end: Some(end),
            ..existing.clone()
        })
    })
}

/// Every intervention, in id order.
pub fn list(store: &Store) -> Result<Vec<Intervention>, StoreError> {
    store
        .records(INTERVENTIONS_TREE)?
        .into_iter()
        .map(|(key, bytes)| {
            let id = String::from_utf8_lossy(&key).into_owned();
            decode(&id, &bytes).map(|(i, _)| i)
        })
        .collect()
}

/// The intervention `id`.
pub fn get(store: &Store, id: &str) -> Result<Option<Intervention>, StoreError> {
    store
        .record(INTERVENTIONS_TREE, id.as_bytes())?
        .map(|bytes| decode(id, &bytes).map(|(i, _)| i))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use psonet_core::event::UnitType;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        (dir, store)
    }

    fn bundle() -> Intervention {
        Intervention {
            id: "bundle-1".into(),
            practice_code: "fall-bundle".into(),
            title: "Fall bundle".into(),
            start: "2025-01".parse().unwrap(),
            end: None,
            unit_types: vec![UnitType::MedSurg],
            metrics: vec!["falls".into()],
            narrative: "secret".into(),
            revision: 0,
        }
    }

    #[test]
    fn recording_twice_is_idempotent_and_other_content_conflicts() {
        let (_dir, store) = store();
        let Recorded::Stored(first) = record(&store, &bundle()).unwrap() else {
            panic!("not stored")
        };
        assert_eq!(first.revision, 1);
        assert_eq!(
            record(&store, &bundle()).unwrap(),
            Recorded::Duplicate(first.clone())
        );
        let other = Intervention {
            title: "Other".into(),
            ..bundle()
        };
        assert_eq!(
            record(&store, &other).unwrap(),
            Recorded::Conflict(first.clone())
        );
        assert_eq!(list(&store).unwrap(), vec![first]);
    }

    #[test]
    fn amend_and_end_make_revisions_and_refuse_what_cannot_be() {
        let (_dir, store) = store();
        record(&store, &bundle()).unwrap();
        let amended = Intervention {
            title: "Fall bundle v2".into(),
            ..bundle()
        };
        let Changed::Changed(v2) = amend(&store, &amended, "renamed").unwrap() else {
            panic!("not amended")
        };
        assert_eq!((v2.revision, v2.title.as_str()), (2, "Fall bundle v2"));
        assert!(matches!(
            amend(&store, &amended, "again").unwrap(),
            Changed::Unchanged(_)
        ));
        let before_start = "2024-12".parse().unwrap();
        assert!(matches!(
            end(&store, "bundle-1", before_start).unwrap(),
            Changed::EndsBeforeStart(_)
        ));
        let Changed::Changed(ended) = end(&store, "bundle-1", "2025-12".parse().unwrap()).unwrap()
        else {
            panic!("not ended")
        };
        assert_eq!(ended.revision, 3);
        assert_eq!(get(&store, "bundle-1").unwrap(), Some(ended));
        assert_eq!(
            end(&store, "nope", "2025-12".parse().unwrap()).unwrap(),
            Changed::NotFound
        );
    }
}

#[cfg(test)]
mod backup_tests {
    use super::*;
    use crate::backup::{restore, write_backup};
    use psonet_core::event::UnitType;

    /// Interventions live in their own tree, written under the write gate: a backup carries
    /// them and a restore brings them back as they were.
    #[test]
    fn interventions_are_backed_up_and_restored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a"), 1 << 20).unwrap();
        let bundle = Intervention {
            id: "bundle-1".into(),
            practice_code: "fall-bundle".into(),
            title: "Fall bundle".into(),
            start: "2025-01".parse().unwrap(),
            end: Some("2025-12".parse().unwrap()),
            unit_types: vec![UnitType::MedSurg],
            metrics: vec!["falls".into()],
            narrative: "kept on premises".into(),
            revision: 0,
        };
        let Recorded::Stored(stored) = record(&store, &bundle).unwrap() else {
            panic!("not stored")
        };
        let file = dir.path().join("a.backup");
        let summary = write_backup(&store, "f", std::fs::File::create(&file).unwrap()).unwrap();
        assert!(
            summary
                .trees
                .contains(&(crate::intervention::INTERVENTIONS_TREE.to_string(), 1)),
            "{:?}",
            summary.trees
        );
        let target = dir.path().join("b");
        restore(&file, &target, "f", 1 << 20).unwrap();
        let restored = (0..100)
            .find_map(|_| {
                let opened = Store::open(&target, 1 << 20).ok();
                if opened.is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                opened
            })
            .expect("the restored store opens");
        assert_eq!(list(&restored).unwrap(), vec![stored]);
    }
}
