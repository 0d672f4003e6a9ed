//! The gateway's release rule for network and peer-group figures.
//!
//! A node's small-cell rule protects one facility's cells; once the gateway sums facilities, two
//! more risks appear (see `reference/privacy.md`): a "network" figure over one or two facilities
//! *is* those facilities' figure, and a cell where one facility holds nearly every event reveals
//! that facility's count to anyone who knows the others are small. So a network or peer figure is
//! released only when enough facilities contribute to it and none of them dominates it.

/// Contributing facilities a network or peer figure needs by default.
pub const DEFAULT_MIN_FACILITIES: u32 = 5;
/// The floor below which no network may set the facility minimum.
pub const MIN_FACILITIES_FLOOR: u32 = 3;
/// Largest share of a cell one facility may hold by default.
pub const DEFAULT_MAX_SHARE: f64 = 0.75;

/// Why a network figure was withheld.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Withheld {
    /// Fewer facilities contributed than the rule requires.
    TooFewFacilities {
        /// Facilities that contributed.
        contributing: u32,
        /// Facilities the rule requires.
        required: u32,
    },
    /// One facility holds more than the allowed share of the cell.
    Dominated {
        /// The largest facility's share of the cell, 0..=1.
        share: f64,
        /// The allowed share.
        max_share: f64,
    },
}

impl std::fmt::Display for Withheld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Withheld::TooFewFacilities {
                contributing,
                required,
            } => write!(
                f,
                "{contributing} facilities contribute; a network figure needs at least {required}"
            ),
            Withheld::Dominated { share, max_share } => write!(
                f,
                "one facility holds {:.0}% of the cell; at most {:.0}% is allowed",
                share * 100.0,
                max_share * 100.0
            ),
        }
    }
}

/// A rule that would let a network figure reveal one facility.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetworkRuleError {
    /// The facility minimum is below the floor.
    #[error("min_facilities must be at least {MIN_FACILITIES_FLOOR} (got {0})")]
    TooFewFacilities(u32),
    /// The dominance share is not in (0, 1].
    #[error("max_share must be greater than 0 and at most 1 (got {0})")]
    BadShare(f64),
}

/// Minimum contributing facilities and maximum single-facility share for a released figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkReleaseRule {
    min_facilities: u32,
    max_share: f64,
}

impl NetworkReleaseRule {
    /// The rule with its two thresholds, refused when it could reveal a single facility.
    pub fn new(min_facilities: u32, max_share: f64) -> Result<Self, NetworkRuleError> {
        if min_facilities < MIN_FACILITIES_FLOOR {
            return Err(NetworkRuleError::TooFewFacilities(min_facilities));
        }
        if !(max_share > 0.0 && max_share <= 1.0) {
            return Err(NetworkRuleError::BadShare(max_share));
        }
        Ok(Self {
            min_facilities,
            max_share,
        })
    }

    /// Contributing facilities a figure needs.
    pub fn min_facilities(&self) -> u32 {
        self.min_facilities
    }

    /// Largest share of a cell one facility may hold.
    pub fn max_share(&self) -> f64 {
        self.max_share
    }

    /// Whether a query over `facilities` facilities in scope (a network or a peer group) can
    /// release anything at all: a group smaller than the minimum *is* its members' figures.
    pub fn check_scope(&self, facilities: usize) -> Result<(), Withheld> {
        let contributing = u32::try_from(facilities).unwrap_or(u32::MAX);
        if contributing < self.min_facilities {
            return Err(Withheld::TooFewFacilities {
                contributing,
                required: self.min_facilities,
            });
        }
        Ok(())
    }

    /// Whether a figure summed from `contributions` — one count per contributing facility,
    /// zeros included (a facility with exposure and no events contributes a zero) — may be
    /// released.
    pub fn check(&self, contributions: &[u64]) -> Result<(), Withheld> {
        let contributing = u32::try_from(contributions.len()).unwrap_or(u32::MAX);
        if contributing < self.min_facilities {
            return Err(Withheld::TooFewFacilities {
                contributing,
                required: self.min_facilities,
            });
        }
        let total: u128 = contributions.iter().map(|&c| u128::from(c)).sum();
        let largest = contributions.iter().copied().max().unwrap_or(0);
        if total > 0 {
            let share = largest as f64 / total as f64;
            if share > self.max_share {
                return Err(Withheld::Dominated {
                    share,
                    max_share: self.max_share,
                });
            }
        }
        Ok(())
    }
}

impl Default for NetworkReleaseRule {
    fn default() -> Self {
        Self {
            min_facilities: DEFAULT_MIN_FACILITIES,
            max_share: DEFAULT_MAX_SHARE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_enough_facilities() {
        let rule = NetworkReleaseRule::default();
        assert_eq!(
            rule.check(&[20, 20, 20, 20]),
            Err(Withheld::TooFewFacilities {
                contributing: 4,
                required: 5
            })
        );
        assert_eq!(rule.check(&[20, 20, 20, 20, 0]), Ok(()));
        assert!(rule.check_scope(2).is_err());
        assert_eq!(rule.check_scope(5), Ok(()));
    }

    #[test]
    fn withholds_a_dominated_cell() {
        let rule = NetworkReleaseRule::default();
        assert!(matches!(
            rule.check(&[100, 5, 5, 5, 5]),
            Err(Withheld::Dominated { .. })
        ));
        assert_eq!(rule.check(&[75, 25, 0, 0, 0]), Ok(()));
        assert_eq!(rule.check(&[0, 0, 0, 0, 0]), Ok(()));
    }

    #[test]
    fn refuses_rules_that_reveal_a_facility() {
        assert_eq!(
            NetworkReleaseRule::new(2, 0.75),
            Err(NetworkRuleError::TooFewFacilities(2))
        );
        assert!(NetworkReleaseRule::new(3, 0.0).is_err());
        assert!(NetworkReleaseRule::new(3, 1.5).is_err());
        assert!(NetworkReleaseRule::new(3, 1.0).is_ok());
    }
}
