//! Per-request pseudonyms: a facility is named only to itself.
//!
//! Funnel points and exclusions must be told apart within one answer, but a partner must not be
//! able to follow one facility across answers (and so learn which dot is which by elimination).
//! Each request shuffles the facilities afresh and numbers them `peer-01`, `peer-02`, …; the
//! caller's own facility keeps its id.

use rand::seq::SliceRandom;
use std::collections::HashMap;

/// Names for the facilities of one response.
#[derive(Debug, Clone)]
pub struct Pseudonyms {
    names: HashMap<String, String>,
}

impl Pseudonyms {
    /// Fresh pseudonyms for `ids`; `caller` (a facility asking about itself) keeps its id.
    pub fn new<'a>(ids: impl IntoIterator<Item = &'a str>, caller: Option<&str>) -> Self {
        let mut ids: Vec<&str> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.shuffle(&mut rand::rng());
        let width = ids.len().to_string().len().max(2);
        let names = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let name = if Some(*id) == caller {
                    id.to_string()
                } else {
                    format!("peer-{:0width$}", i + 1)
                };
                (id.to_string(), name)
            })
            .collect();
        Self { names }
    }

    /// The name of `id` in this response.
    pub fn name(&self, id: &str) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| "peer-unknown".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_caller_keeps_its_id() {
        let ids = ["a", "b", "c"];
        let names = Pseudonyms::new(ids, Some("b"));
        assert_eq!(names.name("b"), "b");
        let mut others = [names.name("a"), names.name("c")];
        others.sort();
        assert!(others.iter().all(|n| n.starts_with("peer-0")));
        assert_ne!(others[0], others[1]);
    }
}
