//! Opening the sum, and refusing to hand out one that did not open correctly.
//!
//! The arithmetic is `psonet_core::secagg::protocol::GatewayUnmask`: the survivors' masked
//! vectors added lane by lane, each survivor's self mask rebuilt from t seed shares and taken
//! off, and the masks survivors shared with dropped members taken off with the keys they
//! revealed. A sum that opened with a wrong mask is uniform noise, so it is checked before it is
//! used:
//! - every indicator lane counts at most |A| contributing facilities;
//! - without differential privacy, every value lane is exact: it is at least its contributor
//!   count (a contributing facility has at least 1 there) and 0 where no facility contributed,
//!   and a count is never negative;
//! - with it, exposure lanes (never noised) still must be.
//!
//! A uniformly random lane passes the first check with probability |A|/2^32, so a wrong sum of
//! even a handful of lanes is caught with overwhelming probability.

use psonet_core::secagg::cohort::Cohort;
use psonet_core::secagg::lanes::{LaneLayout, LaneSum, LaneSums};
use psonet_core::secagg::mask::QueryId;
use psonet_core::secagg::protocol::{GatewayUnmask, Round2Answer, UnmaskError};
use std::collections::BTreeMap;
use tonic::Status;

/// The sum of the survivors' vectors (`masked`, by facility) opened with their round-2
/// `answers`, decoded by `layout` and checked; `exact` when no member added noise.
pub fn open(
    cohort: &Cohort,
    query_id: QueryId,
    threshold: usize,
    layout: &LaneLayout,
    masked: &BTreeMap<String, Vec<u32>>,
    answers: &BTreeMap<String, Round2Answer>,
    exact: bool,
) -> Result<LaneSums, Status> {
    let sum = GatewayUnmask {
        cohort,
        query_id,
        threshold,
        lanes: layout.len(),
    }
    .sum(masked, answers)
    .map_err(|e| match e {
        UnmaskError::MissingSeedShares { .. } | UnmaskError::MissingDroppedKey { .. } => {
            Status::unavailable(format!("secure aggregation could not open the sum: {e}"))
        }
        other => Status::internal(format!(
            "secure aggregation could not open the sum: {other}"
        )),
    })?;
    let sums = layout
        .decode(&sum, masked.len())
        .map_err(|e| corrupt(&e.to_string()))?;
    check(&sums, exact)?;
    Ok(sums)
}

fn corrupt(why: &str) -> Status {
    tracing::error!(why, "a secure sum did not open correctly");
    Status::internal(format!(
        "the secure sum did not open correctly ({why}); no figure is released"
    ))
}

/// The plausibility checks of an opened sum.
fn check(sums: &LaneSums, exact: bool) -> Result<(), Status> {
    let plausible = |s: &LaneSum| {
        (s.contributors == 0 && s.value == 0)
            || (s.value >= i64::from(s.contributors) && s.contributors > 0)
    };
    let sections: [(&str, &[LaneSum], bool); 3] = [
        ("count", &sums.counts, exact),
        ("total", &sums.totals, exact),
        ("exposure", &sums.exposure, true),
    ];
    for (name, lanes, checked) in sections {
        if !checked {
            continue;
        }
        if let Some((i, s)) = lanes.iter().enumerate().find(|(_, s)| !plausible(s)) {
            return Err(corrupt(&format!(
                "{name} lane {i} sums to {} from {} contributing facilities",
                s.value, s.contributors
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(value: i64, contributors: u32) -> LaneSum {
        LaneSum {
            value,
            contributors,
        }
    }

    #[test]
    fn exact_sums_must_fit_their_contributor_counts() {
        let good = LaneSums {
            counts: vec![lane(0, 0), lane(12, 3), lane(3, 3)],
            totals: vec![lane(15, 3)],
            exposure: vec![lane(9000, 5)],
        };
        assert!(check(&good, true).is_ok());
        for bad in [lane(2, 3), lane(5, 0), lane(-1, 0), lane(0, 1)] {
            let sums = LaneSums {
                counts: vec![bad],
                ..good.clone()
            };
            assert!(check(&sums, true).is_err(), "{bad:?}");
            // Under differential privacy counts carry noise and are not checked ...
            assert!(check(&sums, false).is_ok(), "{bad:?}");
        }
        // ... but exposure always is.
        let sums = LaneSums {
            exposure: vec![lane(7, 0)],
            ..good
        };
        assert!(check(&sums, false).is_err());
    }
}
