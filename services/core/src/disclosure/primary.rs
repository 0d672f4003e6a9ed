//! Primary small-cell suppression: the first rule every released count passes.
//!
//! A count of 1 to k-1 events could point at one patient, reporter or clinician, so it is
//! withheld; zero is released (CMS cell-size suppression policy, k = 11 by default).

/// The network's default smallest releasable count (CMS / PCORnet rule).
pub const DEFAULT_MIN_CELL_COUNT: u32 = 11;

/// What may be said about one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellRelease {
    /// The count may be released as is (zero, or at least k).
    Released(u64),
    /// The count is 1..k-1 and must not leave.
    Suppressed,
}

/// The small-cell rule with its threshold k.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmallCellRule {
    min_cell_count: u32,
}

/// A threshold that would release single events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("min_cell_count must be at least 2 (got {0}); 11 is the recommended minimum")]
pub struct ThresholdTooLow(pub u32);

impl SmallCellRule {
    /// The rule with threshold `min_cell_count` (k); k = 1 would release single events.
    pub fn new(min_cell_count: u32) -> Result<Self, ThresholdTooLow> {
        if min_cell_count < 2 {
            return Err(ThresholdTooLow(min_cell_count));
        }
        Ok(Self { min_cell_count })
    }

    /// The threshold k.
    pub fn min_cell_count(&self) -> u32 {
        self.min_cell_count
    }

    /// Whether `count` may be released.
    pub fn release(&self, count: u64) -> CellRelease {
        if count == 0 || count >= u64::from(self.min_cell_count) {
            CellRelease::Released(count)
        } else {
            CellRelease::Suppressed
        }
    }
}

impl Default for SmallCellRule {
    fn default() -> Self {
        Self {
            min_cell_count: DEFAULT_MIN_CELL_COUNT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppresses_one_to_k_minus_one_and_releases_zero() {
        let rule = SmallCellRule::default();
        assert_eq!(rule.release(0), CellRelease::Released(0));
        for n in 1..11 {
            assert_eq!(rule.release(n), CellRelease::Suppressed, "{n}");
        }
        assert_eq!(rule.release(11), CellRelease::Released(11));
        assert_eq!(SmallCellRule::new(1), Err(ThresholdTooLow(1)));
        assert_eq!(
            SmallCellRule::new(3).unwrap().release(3),
            CellRelease::Released(3)
        );
    }
}
