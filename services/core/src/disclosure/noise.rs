//! Differentially private answers: noise on every cell of the answer's domain.
//!
//! Noise only on the cells that exist would reveal, by a cell's absence, that it is zero; so
//! the domain is every period of the range times every value of each grouped dimension (the
//! filtered values where a filter lists them), and every one of those cells gets independent
//! discrete-Gaussian noise. Noisy counts below zero are released as zero (post-processing costs
//! no privacy), and suppression runs after noise.
//!
//! The unit of privacy is one event report. An event adds 1 to one cell per value it holds of
//! each grouped multi-valued dimension (at most 10 categories, 12 contributing factors), plus 1
//! to one event total; the L2 sensitivity² is the number of cells it can touch.

use super::discrete_gaussian::{DiscreteGaussian, UniformSource};
use crate::event::{MAX_CATEGORIES, MAX_CONTRIBUTING_FACTORS};
use crate::pb::Dimension;
use crate::query::{AggregateQuery, CellKey, DIMENSIONS, Period, is_multi_valued, known_value};
use std::collections::BTreeMap;

/// The most cells a noisy answer may have.
pub const MAX_DOMAIN_CELLS: usize = 100_000;

/// A query whose domain is too large to answer with noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the answer would have {0} cells; at most {MAX_DOMAIN_CELLS} can be noised: group by fewer dimensions or filter"
)]
pub struct DomainTooLarge(pub usize);

/// The L2 sensitivity² of `query`'s cells (plus its event totals when `with_totals`).
pub fn l2_squared(query: &AggregateQuery, with_totals: bool) -> u64 {
    let mut cells: u64 = 1;
    for d in query
        .group_by
        .iter()
        .filter(|d| matches!(d, Dimension::Category | Dimension::ContributingFactor))
    {
        let most = if *d == Dimension::Category {
            MAX_CATEGORIES
        } else {
            MAX_CONTRIBUTING_FACTORS
        };
        let listed = query.filter.get(d).map_or(most, Vec::len);
        cells *= listed.min(most) as u64;
    }
    cells + u64::from(with_totals)
}

/// Every cell of `query`'s answer, zero or not.
pub fn domain(query: &AggregateQuery) -> Result<Vec<CellKey>, DomainTooLarge> {
    let mut periods: Vec<Period> = query
        .range
        .months()
        .map(|m| Period::of(m, query.grain))
        .collect();
    periods.dedup();
    let mut size = periods.len();
    let mut axes: Vec<(usize, Vec<u8>)> = Vec::new();
    for (slot, d) in DIMENSIONS.iter().enumerate() {
        if !query.group_by.contains(d) {
            continue;
        }
        // A multi-valued dimension has no "not recorded" value: an event without a category or
        // factor has no counter in that family, so 0 is not part of its domain.
        let first = u8::from(is_multi_valued(*d));
        let values = match query.filter.get(d) {
            Some(listed) => listed.clone(),
            None => (first..=u8::MAX)
                .filter(|v| known_value(*d, i32::from(*v)))
                .collect(),
        };
        size = size.saturating_mul(values.len());
        axes.push((slot, values));
    }
    if size > MAX_DOMAIN_CELLS {
        return Err(DomainTooLarge(size));
    }
    let mut cells: Vec<CellKey> = periods
        .into_iter()
        .map(|period| CellKey {
            period,
            values: [0; 9],
        })
        .collect();
    for (slot, values) in axes {
        cells = cells
            .into_iter()
            .flat_map(|cell| {
                values.iter().map(move |v| {
                    let mut next = cell;
                    next.values[slot] = *v;
                    next
                })
            })
            .collect();
    }
    Ok(cells)
}

/// `counts` over `domain` with independent noise from `noise` on every cell, clamped at zero.
pub fn add_noise(
    counts: &BTreeMap<CellKey, u64>,
    domain: &[CellKey],
    noise: &DiscreteGaussian,
    rng: &mut impl UniformSource,
) -> BTreeMap<CellKey, u64> {
    domain
        .iter()
        .map(|cell| {
            let true_count = counts.get(cell).copied().unwrap_or(0) as i128;
            let noisy = (true_count + i128::from(noise.sample(rng))).max(0);
            (*cell, noisy.min(i128::from(u64::MAX >> 1)) as u64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disclosure::discrete_gaussian::OsRandom;
    use crate::disclosure::zcdp::{Rho, Variance};
    use crate::pb;

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

    #[test]
    fn the_domain_covers_every_value_of_every_grouped_dimension() {
        let q = query(&[Dimension::Sex], Default::default());
        let sexes = (0..=255)
            .filter(|v| known_value(Dimension::Sex, *v))
            .count();
        assert_eq!(domain(&q).unwrap().len(), 3 * sexes);
        let q = query(
            &[Dimension::Harm],
            pb::AggregateFilter {
                harms: vec![1, 2],
                ..Default::default()
            },
        );
        assert_eq!(domain(&q).unwrap().len(), 6);
        let categories = domain(&query(&[Dimension::Category], Default::default())).unwrap();
        assert!(categories.iter().all(|c| c.values[0] != 0), "no category 0");
        let every: Vec<Dimension> = DIMENSIONS.to_vec();
        assert!(domain(&query(&every, Default::default())).is_err());
    }

    #[test]
    fn sensitivity_counts_the_cells_one_event_can_touch() {
        assert_eq!(
            l2_squared(&query(&[Dimension::Harm], Default::default()), false),
            1
        );
        let by_category = query(&[Dimension::Category], Default::default());
        assert_eq!(l2_squared(&by_category, true), MAX_CATEGORIES as u64 + 1);
        let two = query(
            &[Dimension::Category],
            pb::AggregateFilter {
                categories: vec![3, 5],
                ..Default::default()
            },
        );
        assert_eq!(l2_squared(&two, false), 2);
    }

    #[test]
    fn every_domain_cell_is_noised_and_none_is_negative() {
        let q = query(&[Dimension::Harm], Default::default());
        let cells = domain(&q).unwrap();
        let v = Variance::for_cost(1, Rho::from_f64(0.02).unwrap()).unwrap();
        let noisy = add_noise(
            &BTreeMap::new(),
            &cells,
            &DiscreteGaussian::new(v),
            &mut OsRandom::default(),
        );
        assert_eq!(noisy.len(), cells.len());
        assert!(noisy.values().any(|n| *n > 0), "zeros must be noised too");
    }
}
