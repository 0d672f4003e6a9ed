//! The lane vector: the canonical, fixed-length form of one node's answer to one query.
//!
//! Masks cancel only if every member adds up the same lanes in the same order, so the vector is
//! derived from the query alone — never from what a node happens to hold — and zeros are sent
//! like any value. Sections, in order:
//! 1. event counts, one lane per cell of the query's domain;
//! 2. event totals (when grouping by a multi-valued dimension: the same cells without it, each
//!    event once), one lane per cell of the totals' domain;
//! 3. exposure, one lane per period × denominator type (× unit type when grouping by unit type);
//! 4. indicators: one 0/1 lane per lane of sections 1–3, 1 when this facility's exact value is
//!    non-zero — their sum tells the gateway how many facilities contributed, not which.
//!
//! Cells are [`noise::domain`]'s — the domain the node already noises for differential privacy:
//! periods outermost, then each grouped dimension in [`crate::query::DIMENSIONS`] order (not the
//! order the query lists them, so that equal queries make equal vectors), every value of it (a
//! filter's values when it filters), row-major. That domain keeps value 0 of single-valued
//! dimensions ("not recorded", e.g. the harm of a near miss) and leaves it out of multi-valued
//! ones, so every counted event lands in a lane.
//!
//! Lanes are u32 added mod 2^32. So that a sum can never wrap, a node refuses to encode a value
//! larger than its share of the range: |count| ≤ (2^31 − 1)/|S| (counts may carry negative
//! noise and are read as i32), exposure ≤ (2^32 − 1)/|S|. On the wire lanes are little-endian.

use crate::disclosure::noise::{self, DomainTooLarge};
use crate::pb;
use crate::query::{AggregateQuery, CellKey, Period};
use std::collections::BTreeMap;

/// Why lanes cannot be encoded or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaneError {
    /// Wrong number of values for the layout.
    #[error("{got} values for a layout of {expected}")]
    Length {
        /// Values given.
        got: usize,
        /// Values the layout has.
        expected: usize,
    },
    /// A value too large for the cohort's sum to stay exact.
    #[error("lane {lane} holds {value}; with this cohort a member may send at most {bound}")]
    TooLarge {
        /// Lane index.
        lane: usize,
        /// The value.
        value: i128,
        /// The bound for this cohort.
        bound: i128,
    },
    /// Bytes that are not whole u32 lanes.
    #[error("{0} bytes are not a whole number of 4-byte lanes")]
    Bytes(usize),
    /// An indicator sum above the number of survivors: the sum did not open correctly.
    #[error(
        "lane {lane} counts {contributors} contributing facilities among {survivors} survivors: the sum is corrupt"
    )]
    Implausible {
        /// Indicator lane index.
        lane: usize,
        /// Its sum.
        contributors: u32,
        /// |A|.
        survivors: usize,
    },
}

/// The sizes of a lane vector's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneLayout {
    /// Event-count lanes.
    pub counts: usize,
    /// Event-total lanes.
    pub totals: usize,
    /// Exposure lanes.
    pub exposure: usize,
}

/// One value lane of an opened sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneSum {
    /// The cohort's sum (counts may be negative under differential privacy).
    pub value: i64,
    /// How many survivors had a non-zero exact value in this lane.
    pub contributors: u32,
}

/// An opened sum, by section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LaneSums {
    /// Event counts, in domain order.
    pub counts: Vec<LaneSum>,
    /// Event totals, in domain order.
    pub totals: Vec<LaneSum>,
    /// Exposure, in domain order.
    pub exposure: Vec<LaneSum>,
}

impl LaneLayout {
    /// Value lanes (sections 1–3).
    pub fn values(&self) -> usize {
        self.counts + self.totals + self.exposure
    }

    /// Lanes that carry noise under differential privacy (counts and totals, the first ones).
    pub fn noised(&self) -> usize {
        self.counts + self.totals
    }

    /// All lanes: values and their indicators.
    pub fn len(&self) -> usize {
        2 * self.values()
    }

    /// Whether there are no lanes at all.
    pub fn is_empty(&self) -> bool {
        self.values() == 0
    }

    /// A member's lanes from its exact values (sections 1–3 in order) and, under differential
    /// privacy, its noise for the noised lanes (empty otherwise), for a cohort of `cohort`.
    pub fn encode(
        &self,
        exact: &[u64],
        noise: &[i64],
        cohort: usize,
    ) -> Result<Vec<u32>, LaneError> {
        if exact.len() != self.values() {
            return Err(LaneError::Length {
                got: exact.len(),
                expected: self.values(),
            });
        }
        if !noise.is_empty() && noise.len() != self.noised() {
            return Err(LaneError::Length {
                got: noise.len(),
                expected: self.noised(),
            });
        }
        let members = cohort.max(1) as i128;
        let count_bound = i128::from(i32::MAX) / members;
        let exposure_bound = i128::from(u32::MAX) / members;
        let mut lanes = Vec::with_capacity(self.len());
        for (lane, value) in exact.iter().enumerate() {
            let noised = lane < self.noised();
            let v = i128::from(*value)
                + if noised {
                    noise.get(lane).map_or(0, |n| i128::from(*n))
                } else {
                    0
                };
            let bound = if noised { count_bound } else { exposure_bound };
            if v.abs() > bound {
                return Err(LaneError::TooLarge {
                    lane,
                    value: v,
                    bound,
                });
            }
            // Two's complement: a negative count is its i32 bit pattern.
            lanes.push(if noised { v as i32 as u32 } else { v as u32 });
        }
        lanes.extend(exact.iter().map(|v| u32::from(*v != 0)));
        Ok(lanes)
    }

    /// Reads an opened sum over `survivors` members, checking that no indicator counts more
    /// facilities than survived (an incorrectly opened sum is uniform noise and fails this for
    /// all but a ~|A|/2^32 fraction of lanes).
    pub fn decode(&self, sum: &[u32], survivors: usize) -> Result<LaneSums, LaneError> {
        if sum.len() != self.len() {
            return Err(LaneError::Length {
                got: sum.len(),
                expected: self.len(),
            });
        }
        let (values, indicators) = sum.split_at(self.values());
        if let Some((lane, c)) = indicators
            .iter()
            .enumerate()
            .find(|(_, c)| **c as usize > survivors)
        {
            return Err(LaneError::Implausible {
                lane: self.values() + lane,
                contributors: *c,
                survivors,
            });
        }
        let read = |range: std::ops::Range<usize>, signed: bool| -> Vec<LaneSum> {
            range
                .map(|lane| LaneSum {
                    value: if signed {
                        i64::from(values[lane] as i32)
                    } else {
                        i64::from(values[lane])
                    },
                    contributors: indicators[lane],
                })
                .collect()
        };
        Ok(LaneSums {
            counts: read(0..self.counts, true),
            totals: read(self.counts..self.noised(), true),
            exposure: read(self.noised()..self.values(), false),
        })
    }
}

/// Lanes as little-endian bytes, for the wire.
pub fn to_bytes(lanes: &[u32]) -> Vec<u8> {
    lanes.iter().flat_map(|l| l.to_le_bytes()).collect()
}

/// Lanes from little-endian bytes.
pub fn from_bytes(bytes: &[u8]) -> Result<Vec<u32>, LaneError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(LaneError::Bytes(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// An exposure lane: a period, a denominator, and a unit type when the query groups by it
/// (`None`: summed over the unit types the query covers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExposureKey {
    /// Period.
    pub period: Period,
    /// What is counted.
    pub denominator: pb::DenominatorType,
    /// Unit type, when grouped by.
    pub unit: Option<pb::UnitType>,
}

/// The cells behind each lane of a query's vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneDomain {
    /// Count cells.
    pub cells: Vec<CellKey>,
    /// Event-total cells (empty when the query has none).
    pub totals: Vec<CellKey>,
    /// Exposure lanes.
    pub exposure: Vec<ExposureKey>,
    /// Unit types whose exposure counts (empty: all).
    units: Vec<u8>,
}

impl LaneDomain {
    /// The domain of `query`.
    pub fn of(query: &AggregateQuery) -> Result<Self, DomainTooLarge> {
        let cells = noise::domain(query)?;
        let totals = match query.event_totals() {
            Some(q) => noise::domain(&q)?,
            None => Vec::new(),
        };
        let mut periods: Vec<Period> = query
            .range
            .months()
            .map(|m| Period::of(m, query.grain))
            .collect();
        periods.dedup();
        let units = query
            .filter
            .get(&pb::Dimension::UnitType)
            .cloned()
            .unwrap_or_default();
        let grouped_units: Vec<Option<pb::UnitType>> =
            if query.group_by.contains(&pb::Dimension::UnitType) {
                (0..=u8::MAX)
                    .filter(|u| units.is_empty() || units.contains(u))
                    .filter_map(|u| pb::UnitType::try_from(i32::from(u)).ok())
                    .map(Some)
                    .collect()
            } else {
                vec![None]
            };
        let denominators: Vec<pb::DenominatorType> = (1..=i32::from(u8::MAX))
            .filter_map(|d| pb::DenominatorType::try_from(d).ok())
            .collect();
        let mut exposure =
            Vec::with_capacity(periods.len() * denominators.len() * grouped_units.len());
        for period in &periods {
            for denominator in &denominators {
                for unit in &grouped_units {
                    exposure.push(ExposureKey {
                        period: *period,
                        denominator: *denominator,
                        unit: *unit,
                    });
                }
            }
        }
        let size = cells.len() + totals.len() + exposure.len();
        if size > noise::MAX_DOMAIN_CELLS {
            return Err(DomainTooLarge(size));
        }
        Ok(Self {
            cells,
            totals,
            exposure,
            units,
        })
    }

    /// The section sizes.
    pub fn layout(&self) -> LaneLayout {
        LaneLayout {
            counts: self.cells.len(),
            totals: self.totals.len(),
            exposure: self.exposure.len(),
        }
    }

    /// A member's exact values in lane order (sections 1–3), from its counts, totals and
    /// exposure by (period, unit type, denominator). Anything outside the domain is ignored.
    pub fn exact_values(
        &self,
        cells: &BTreeMap<CellKey, u64>,
        totals: &BTreeMap<CellKey, u64>,
        exposure: &BTreeMap<(Period, pb::UnitType, pb::DenominatorType), u64>,
    ) -> Vec<u64> {
        let mut values: Vec<u64> = self
            .cells
            .iter()
            .map(|c| cells.get(c).copied().unwrap_or(0))
            .chain(
                self.totals
                    .iter()
                    .map(|c| totals.get(c).copied().unwrap_or(0)),
            )
            .collect();
        let start = values.len();
        values.resize(start + self.exposure.len(), 0);
        let index: BTreeMap<ExposureKey, usize> = self
            .exposure
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, start + i))
            .collect();
        let grouped = self.exposure.first().is_some_and(|k| k.unit.is_some());
        for ((period, unit, denominator), value) in exposure {
            if !self.units.is_empty() && !self.units.contains(&(*unit as u8)) {
                continue;
            }
            let key = ExposureKey {
                period: *period,
                denominator: *denominator,
                unit: grouped.then_some(*unit),
            };
            if let Some(lane) = index.get(&key) {
                values[*lane] = values[*lane].saturating_add(*value);
            }
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::Dimension;
    use crate::query::Grain;

    fn query(group_by: &[Dimension], filter: pb::AggregateFilter) -> AggregateQuery {
        AggregateQuery::from_wire(&pb::AggregateRequest {
            month_from: "2025-01".into(),
            month_to: "2025-03".into(),
            group_by: group_by.iter().map(|d| *d as i32).collect(),
            filter: Some(filter),
            ..Default::default()
        })
        .unwrap()
    }

    fn period(month: &str) -> Period {
        Period::of(month.parse().unwrap(), Grain::Month)
    }

    #[test]
    fn cells_run_periods_outermost_then_dimensions_in_canonical_order() {
        // Listed harm first, category second: the vector is the same as the other way round.
        let q = query(&[Dimension::Harm, Dimension::Category], Default::default());
        let swapped = query(&[Dimension::Category, Dimension::Harm], Default::default());
        let d = LaneDomain::of(&q).unwrap();
        assert_eq!(d, LaneDomain::of(&swapped).unwrap());
        // 3 months × 12 categories (no 0) × 7 harm levels (0 "not recorded" included).
        assert_eq!(d.cells.len(), 3 * 12 * 7);
        let c = &d.cells;
        assert_eq!(
            (c[0].period, c[0].values[0], c[0].values[2]),
            (period("2025-01"), 1, 0)
        );
        assert_eq!((c[1].values[0], c[1].values[2]), (1, 1));
        assert_eq!((c[7].values[0], c[7].values[2]), (2, 0));
        assert_eq!(c[84].period, period("2025-02"));
        // Totals drop the multi-valued category: 3 months × 7 harm levels.
        assert_eq!(d.totals.len(), 3 * 7);
        assert!(d.totals.iter().all(|t| t.values[0] == 0));
        // Exposure: 3 months × 5 denominators, summed over unit types.
        assert_eq!(d.exposure.len(), 15);
        assert_eq!(d.exposure[1].denominator, pb::DenominatorType::Admissions);
        assert_eq!(d.exposure[5].period, period("2025-02"));
        let layout = d.layout();
        assert_eq!(layout.len(), 2 * (252 + 21 + 15));
    }

    #[test]
    fn exposure_is_per_unit_only_when_grouped_and_follows_the_unit_filter() {
        let icu = pb::UnitType::CriticalCareAdult;
        let med = pb::UnitType::Medical;
        let exposure: BTreeMap<_, _> = [
            (
                (period("2025-01"), icu, pb::DenominatorType::PatientDays),
                100,
            ),
            (
                (period("2025-01"), med, pb::DenominatorType::PatientDays),
                900,
            ),
        ]
        .into();
        let summed = LaneDomain::of(&query(&[Dimension::Harm], Default::default())).unwrap();
        let v = summed.exact_values(&BTreeMap::new(), &BTreeMap::new(), &exposure);
        assert_eq!(v[summed.cells.len()], 1000);
        let only_icu = LaneDomain::of(&query(
            &[Dimension::Harm],
            pb::AggregateFilter {
                unit_types: vec![icu as i32],
                ..Default::default()
            },
        ))
        .unwrap();
        let v = only_icu.exact_values(&BTreeMap::new(), &BTreeMap::new(), &exposure);
        assert_eq!(v[only_icu.cells.len()], 100);
        let by_unit = LaneDomain::of(&query(&[Dimension::UnitType], Default::default())).unwrap();
        let units = by_unit.cells.len() / 3;
        assert_eq!(by_unit.exposure.len(), 3 * 5 * units);
        let v = by_unit.exact_values(&BTreeMap::new(), &BTreeMap::new(), &exposure);
        let lane = |u: pb::UnitType| {
            by_unit.cells.len()
                + by_unit
                    .exposure
                    .iter()
                    .position(|k| k.unit == Some(u) && k.period == period("2025-01"))
                    .unwrap()
        };
        assert_eq!((v[lane(icu)], v[lane(med)]), (100, 900));
    }

    #[test]
    fn counts_land_in_their_cell_lane() {
        let q = query(&[Dimension::Harm], Default::default());
        let d = LaneDomain::of(&q).unwrap();
        let target = d.cells[9];
        let v = d.exact_values(&[(target, 42)].into(), &BTreeMap::new(), &BTreeMap::new());
        assert_eq!(v[9], 42);
        assert_eq!(v.iter().sum::<u64>(), 42);
    }

    #[test]
    fn encoding_adds_noise_sets_indicators_and_bounds_values() {
        let layout = LaneLayout {
            counts: 2,
            totals: 1,
            exposure: 1,
        };
        let lanes = layout.encode(&[5, 0, 3, 700], &[-7, 2, 0], 4).unwrap();
        assert_eq!(lanes, [(-2i32) as u32, 2, 3, 700, 1, 0, 1, 1]);
        // A sum of four such vectors reads back signed, with contributor counts.
        let mut sum = vec![0u32; 8];
        for _ in 0..4 {
            for (s, l) in sum.iter_mut().zip(&lanes) {
                *s = s.wrapping_add(*l);
            }
        }
        let read = layout.decode(&sum, 4).unwrap();
        assert_eq!(
            read.counts[0],
            LaneSum {
                value: -8,
                contributors: 4
            }
        );
        assert_eq!(
            read.counts[1],
            LaneSum {
                value: 8,
                contributors: 0
            }
        );
        assert_eq!(
            read.exposure[0],
            LaneSum {
                value: 2800,
                contributors: 4
            }
        );
        // Four indicators cannot come from three survivors.
        assert_eq!(
            layout.decode(&sum, 3),
            Err(LaneError::Implausible {
                lane: 4,
                contributors: 4,
                survivors: 3
            })
        );
        // Per-member bounds keep a 500-member sum exact.
        let bound = i128::from(i32::MAX) / 500;
        assert_eq!(
            layout.encode(&[bound as u64 + 1, 0, 0, 0], &[], 500),
            Err(LaneError::TooLarge {
                lane: 0,
                value: bound + 1,
                bound
            })
        );
        assert!(
            layout
                .encode(&[0, 0, 0, u64::from(u32::MAX) / 500], &[], 500)
                .is_ok()
        );
        assert_eq!(
            layout.encode(&[1, 2, 3], &[], 5),
            Err(LaneError::Length {
                got: 3,
                expected: 4
            })
        );
    }

    #[test]
    fn bytes_are_little_endian_lanes() {
        let lanes = [1u32, 0x0102_0304, u32::MAX];
        let bytes = to_bytes(&lanes);
        assert_eq!(bytes[..8], [1, 0, 0, 0, 4, 3, 2, 1]);
        assert_eq!(from_bytes(&bytes), Ok(lanes.to_vec()));
        assert_eq!(from_bytes(&bytes[..5]), Err(LaneError::Bytes(5)));
    }
}
