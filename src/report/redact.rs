//! Keeping facility ids out of a report that must show only pseudonyms.
//!
//! The gateway names every facility in a response's coverage (a partner may know who is in the
//! network), but a report is forwarded, printed and attached to emails, so the network report
//! shows no facility id at all: coverage becomes counts, and every text the gateway wrote (a
//! coverage detail, a withheld reason, an error) passes through [`Redactor::clean`] before it is
//! printed, in case it names one.

/// Replaces known facility ids in free text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so `facility-10` goes before `facility-1` can split it.
    ids: Vec<String>,
}

/// What an id becomes.
const ANONYMOUS: &str = "a facility";

impl Redactor {
    /// A redactor of `ids` (duplicates and empty ids are ignored).
    pub fn new(ids: impl IntoIterator<Item = String>) -> Self {
        let mut ids: Vec<String> = ids.into_iter().filter(|id| !id.is_empty()).collect();
        ids.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        ids.dedup();
        Self { ids }
    }

    /// `text` with every known id replaced by "a facility".
    pub fn clean(&self, text: &str) -> String {
        let mut out = text.to_string();
        for id in &self.ids {
            if out.contains(id.as_str()) {
                out = out.replace(id.as_str(), ANONYMOUS);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_anonymous_longest_first() {
        let r = Redactor::new([
            "facility-1".to_string(),
            "facility-10".into(),
            String::new(),
        ]);
        assert_eq!(
            r.clean("facility-10 timed out; facility-1 refused"),
            "a facility timed out; a facility refused"
        );
        assert_eq!(Redactor::default().clean("facility-1"), "facility-1");
    }
}
