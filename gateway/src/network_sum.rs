//! A sum of facilities' node-released counts, taken in the clear, and the one place the plain
//! path's release rule meets it.
//!
//! Figures summed here from checked per-facility answers ([`crate::answer`]) — the funnel's
//! facilities, a scorecard's peers, and every network figure on a gateway running
//! `disclosure.network_sums = "node_suppressed"` — are released only when the plain path's rule
//! (`psonet_core::network_release`) allows: enough contributors, none dominating. Because the sum
//! is taken here, it knows each contributor's part, which the rule reads to refuse a cell one
//! facility dominates. Exact network figures come instead from the secure sum
//! ([`crate::secure`]), which has no parts, only the number of contributors per cell, and its
//! own rule (`psonet_core::disclosure::network_cell`).

use crate::answer::Tally;
use psonet_core::network_release::{NetworkReleaseRule, Withheld};

/// Events and exposure summed over the facilities that contribute to one figure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSum {
    /// Released events of the contributors.
    pub events: u64,
    /// Their exposure in the figure's denominator.
    pub exposure: u64,
    /// Cells withheld in the contributors' answers; their events are in no sum.
    pub withheld_cells: u32,
    /// Each contributor's released events, in the order they were added (a contributor with
    /// none, or only withheld cells, adds 0).
    parts: Vec<u64>,
}

impl NetworkSum {
    /// Adds one contributing facility: its tally of events and its exposure.
    pub fn add(&mut self, events: Tally, exposure: u64) {
        self.events += events.released;
        self.withheld_cells += events.withheld;
        self.exposure += exposure;
        self.parts.push(events.released);
    }

    /// Facilities that contribute.
    pub fn contributing(&self) -> u32 {
        u32::try_from(self.parts.len()).unwrap_or(u32::MAX)
    }

    /// Contributing facilities with at least one released event.
    pub fn with_events(&self) -> u32 {
        u32::try_from(self.parts.iter().filter(|p| **p > 0).count()).unwrap_or(u32::MAX)
    }

    /// Whether `rule` lets a figure of this sum leave the gateway; `Err` says why not.
    pub fn release(&self, rule: &NetworkReleaseRule) -> Result<(), Withheld> {
        rule.check(&self.parts)
    }
}

impl FromIterator<(Tally, u64)> for NetworkSum {
    fn from_iter<I: IntoIterator<Item = (Tally, u64)>>(parts: I) -> Self {
        let mut sum = NetworkSum::default();
        for (events, exposure) in parts {
            sum.add(events, exposure);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withheld_cells_add_a_contributor_but_no_events() {
        let sum: NetworkSum = [
            (Tally::known(20), 1000),
            (
                Tally {
                    released: 0,
                    withheld: 2,
                },
                500,
            ),
            (Tally::default(), 700),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            (sum.events, sum.exposure, sum.withheld_cells),
            (20, 2200, 2)
        );
        assert_eq!((sum.contributing(), sum.with_events()), (3, 1));
        let rule = NetworkReleaseRule::new(3, 1.0).unwrap();
        assert!(sum.release(&rule).is_ok());
        let dominated = NetworkReleaseRule::new(3, 0.75).unwrap();
        assert!(matches!(
            sum.release(&dominated),
            Err(Withheld::Dominated { .. })
        ));
    }
}
