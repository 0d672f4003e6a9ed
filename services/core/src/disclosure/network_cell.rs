//! The release rule for a cell of a network sum opened by secure aggregation.
//!
//! Secure aggregation opens only the cohort's sum of each cell and, from the 0/1 indicator
//! lanes, how many facilities contributed a non-zero value to it — never which facilities, nor
//! how much each. Disclosure control for network figures runs here, on that sum, where cells are
//! large enough that rare harms survive:
//!
//! - an event count is released when it is 0, or when it is at least k **and** at least
//!   `min_facilities` facilities contributed to it. The first half is the small-cell rule a node
//!   applies to its own cells, now applied once to the network's count; the second keeps a
//!   "network" figure from being one or two facilities' figure, which their peers could read by
//!   subtracting their own;
//! - an exposure (patient days, admissions, …) is released when at least `min_facilities`
//!   facilities recorded some, or none did. It counts days, not events, so k does not apply;
//! - under differential privacy the sum carries noise (each node adds its share before masking),
//!   so it can be negative: it is clamped to 0 before the rule runs, as post-processing;
//! - complementary suppression ([`NetworkCellRule::table`]): where a released total sums cells
//!   of the same table, the withheld cells under it get complements, as at a node
//!   ([`super::complementary`]).
//!
//! The dominance rule of the plain path (no facility above `max_share` of a cell) is not run
//! here: it needs each facility's part, which is exactly what secure aggregation keeps from the
//! gateway. The README ("What leaves a facility") says what the facility count does and does not
//! protect instead.

use super::complementary::{self, Margin};
use super::primary::{CellRelease, SmallCellRule};
use crate::network_release::{MIN_FACILITIES_FLOOR, NetworkRuleError};
use crate::secagg::lanes::LaneSum;

/// Why a network cell was withheld, in words a reader of the table understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithheldCell {
    /// 1 to k-1 events.
    FewerThanK {
        /// The threshold k.
        k: u32,
    },
    /// Fewer facilities contributed a non-zero value than the rule requires.
    TooFewFacilities {
        /// `min_facilities`.
        required: u32,
    },
    /// Releasable on its own, withheld so that a withheld cell cannot be recovered from a
    /// released total by subtraction.
    Complement,
}

impl std::fmt::Display for WithheldCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WithheldCell::FewerThanK { k } => write!(f, "fewer than {k} events"),
            WithheldCell::TooFewFacilities { required } => {
                write!(f, "fewer than {required} facilities contributed")
            }
            WithheldCell::Complement => write!(
                f,
                "withheld so that another withheld figure cannot be recovered from a released total"
            ),
        }
    }
}

/// What may be said of one network cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkCell {
    /// The network's value (0, or one that passed the rule).
    Released {
        /// The value, clamped at 0.
        value: u64,
        /// Facilities that contributed a non-zero value.
        contributors: u32,
    },
    /// Nothing of it leaves the gateway but the reason.
    Withheld(WithheldCell),
}

impl NetworkCell {
    /// The released value, or why not.
    pub fn value(&self) -> Result<u64, WithheldCell> {
        match self {
            NetworkCell::Released { value, .. } => Ok(*value),
            NetworkCell::Withheld(why) => Err(*why),
        }
    }
}

/// k and the facility minimum for cells of a network sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkCellRule {
    small_cells: SmallCellRule,
    min_facilities: u32,
}

impl NetworkCellRule {
    /// The rule with the network's k and facility minimum; a minimum below the floor is refused,
    /// as for the plain path's rule.
    pub fn new(small_cells: SmallCellRule, min_facilities: u32) -> Result<Self, NetworkRuleError> {
        if min_facilities < MIN_FACILITIES_FLOOR {
            return Err(NetworkRuleError::TooFewFacilities(min_facilities));
        }
        Ok(Self {
            small_cells,
            min_facilities,
        })
    }

    /// k.
    pub fn small_cells(&self) -> &SmallCellRule {
        &self.small_cells
    }

    /// Facilities a released non-zero cell needs.
    pub fn min_facilities(&self) -> u32 {
        self.min_facilities
    }

    /// An event count of the network.
    pub fn count(&self, sum: LaneSum) -> NetworkCell {
        let value = clamped(sum.value);
        if self.small_cells.release(value) == CellRelease::Suppressed {
            return NetworkCell::Withheld(WithheldCell::FewerThanK {
                k: self.small_cells.min_cell_count(),
            });
        }
        self.enough_facilities(value, sum.contributors)
    }

    /// An exposure of the network (patient days, admissions, …): no k, the facility minimum.
    pub fn exposure(&self, sum: LaneSum) -> NetworkCell {
        self.enough_facilities(clamped(sum.value), sum.contributors)
    }

    fn enough_facilities(&self, value: u64, contributors: u32) -> NetworkCell {
        if value > 0 && contributors < self.min_facilities {
            return NetworkCell::Withheld(WithheldCell::TooFewFacilities {
                required: self.min_facilities,
            });
        }
        NetworkCell::Released {
            value,
            contributors,
        }
    }

    /// A table of event counts whose `margins` (indices into `counts`) are totals of other
    /// cells of it: each cell through [`NetworkCellRule::count`], then complements until no
    /// withheld cell can be recovered from a released total.
    ///
    /// A total over a multi-valued dimension (a month's events, each once, over its categories)
    /// is smaller than the sum of its cells by the events with several values, which no figure
    /// releases. The test assumes the reader knows that difference anyway — the worst case — by
    /// reading each total as the larger of itself and the sum of its cells.
    pub fn table(&self, counts: &[LaneSum], margins: &[Margin]) -> Vec<NetworkCell> {
        let mut cells: Vec<NetworkCell> = counts.iter().map(|c| self.count(*c)).collect();
        let mut values: Vec<u64> = counts.iter().map(|c| clamped(c.value)).collect();
        for margin in margins {
            let cells: u64 = margin.members.iter().map(|i| values[*i]).sum();
            values[margin.total] = values[margin.total].max(cells);
        }
        let hidden: Vec<bool> = cells
            .iter()
            .map(|c| matches!(c, NetworkCell::Withheld(_)))
            .collect();
        let completed = complementary::complete(&values, hidden, margins, &self.small_cells);
        for (cell, hidden) in cells.iter_mut().zip(completed) {
            if hidden && matches!(cell, NetworkCell::Released { .. }) {
                *cell = NetworkCell::Withheld(WithheldCell::Complement);
            }
        }
        cells
    }
}

/// A sum as a count: under differential privacy noise can take it below zero, and a negative
/// count is released as 0 (post-processing costs no privacy).
fn clamped(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(value: i64, contributors: u32) -> LaneSum {
        LaneSum {
            value,
            contributors,
        }
    }

    fn rule() -> NetworkCellRule {
        NetworkCellRule::new(SmallCellRule::default(), 5).unwrap()
    }

    fn released(value: u64, contributors: u32) -> NetworkCell {
        NetworkCell::Released {
            value,
            contributors,
        }
    }

    #[test]
    fn a_count_needs_k_events_and_enough_facilities() {
        let rule = rule();
        assert_eq!(rule.count(sum(0, 0)), released(0, 0));
        assert_eq!(
            rule.count(sum(10, 6)),
            NetworkCell::Withheld(WithheldCell::FewerThanK { k: 11 })
        );
        assert_eq!(
            rule.count(sum(400, 4)),
            NetworkCell::Withheld(WithheldCell::TooFewFacilities { required: 5 })
        );
        assert_eq!(rule.count(sum(11, 5)), released(11, 5));
        assert_eq!(
            rule.count(sum(3, 1)).value().unwrap_err().to_string(),
            "fewer than 11 events"
        );
        assert_eq!(
            rule.count(sum(30, 2)).value().unwrap_err().to_string(),
            "fewer than 5 facilities contributed"
        );
    }

    #[test]
    fn noise_below_zero_is_released_as_zero() {
        // Differential privacy: the sum carries noise; a negative sum is 0 whoever contributed.
        assert_eq!(rule().count(sum(-4, 2)), released(0, 2));
        assert_eq!(rule().count(sum(-4, 0)), released(0, 0));
    }

    #[test]
    fn exposure_needs_facilities_but_not_k() {
        let rule = rule();
        assert_eq!(rule.exposure(sum(7, 5)), released(7, 5));
        assert_eq!(
            rule.exposure(sum(90_000, 4)),
            NetworkCell::Withheld(WithheldCell::TooFewFacilities { required: 5 })
        );
        assert_eq!(rule.exposure(sum(0, 0)), released(0, 0));
    }

    #[test]
    fn a_lone_withheld_cell_under_a_released_total_gets_a_complement() {
        // Falls 40, medication 8 (withheld), pressure injuries 25; the month's total 73.
        let counts = [sum(40, 6), sum(8, 3), sum(25, 6), sum(73, 6)];
        let margins = [Margin {
            total: 3,
            members: vec![0, 1, 2],
        }];
        let cells = rule().table(&counts, &margins);
        assert_eq!(
            cells,
            [
                released(40, 6),
                NetworkCell::Withheld(WithheldCell::FewerThanK { k: 11 }),
                NetworkCell::Withheld(WithheldCell::Complement),
                released(73, 6),
            ]
        );
        // A cell withheld for too few facilities is protected the same way.
        let counts = [sum(40, 6), sum(300, 2), sum(25, 6), sum(365, 6)];
        let cells = rule().table(&counts, &margins);
        assert_eq!(cells[2], NetworkCell::Withheld(WithheldCell::Complement));
        // Events with two categories make the cells sum to more than the month's total: 40 + 8
        // + 9 + 25 = 82 over a total of 70. Read at face value the total would leave the two
        // withheld cells 70 − 65 = 5 between them; the reader who knows the overlap gets 17,
        // wide enough (each anywhere in 1..16) — and that reader is the one the test assumes.
        let two = [Margin {
            total: 4,
            members: vec![0, 1, 2, 3],
        }];
        let counts = [sum(40, 6), sum(8, 3), sum(9, 4), sum(25, 6), sum(70, 6)];
        let cells = rule().table(&counts, &two);
        assert_eq!((cells[0].value(), cells[3].value()), (Ok(40), Ok(25)));
        // Nothing withheld: nothing to complement.
        let counts = [sum(40, 6), sum(30, 6), sum(25, 6), sum(95, 6)];
        assert!(
            rule()
                .table(&counts, &margins)
                .iter()
                .all(|c| c.value().is_ok())
        );
    }

    #[test]
    fn the_facility_minimum_has_a_floor() {
        assert_eq!(
            NetworkCellRule::new(SmallCellRule::default(), 2),
            Err(NetworkRuleError::TooFewFacilities(2))
        );
    }
}
