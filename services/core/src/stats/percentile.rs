//! Where a facility stands among its peers, and the peer distribution's thresholds.
//!
//! Percentile rank counts ties as half (mid-rank), so equal rates get equal ranks and the
//! ranks of a group average 50. Thresholds (P10…P90) interpolate linearly between order
//! statistics (Hyndman–Fan type 7, R's and numpy's default), so they agree with what an analyst
//! gets from a spreadsheet or R.

/// Which direction is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Lower values are better (harm rates): the rank is the share of peers with a higher value.
    Lower,
    /// Higher values are better (reporting rates): the share of peers with a lower value.
    Higher,
}

/// Percentile rank 0..=100 of `value` among `peers` (the facility included): 100·(B + ½E)/N,
/// B = peers strictly worse, E = peers equal. `None` for an empty peer list.
pub fn percentile_rank(value: f64, peers: &[f64], better: Better) -> Option<f64> {
    if peers.is_empty() {
        return None;
    }
    let worse = peers
        .iter()
        .filter(|&&p| match better {
            Better::Lower => p > value,
            Better::Higher => p < value,
        })
        .count();
    let ties = peers.iter().filter(|&&p| p == value).count();
    Some(100.0 * (worse as f64 + 0.5 * ties as f64) / peers.len() as f64)
}

/// The type-7 quantile `p` (0..=1) of `values`: h = (N−1)p, interpolate between the ⌊h⌋-th and
/// ⌈h⌉-th smallest. `None` for no values or `p` outside 0..=1.
pub fn quantile_type7(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let h = (sorted.len() - 1) as f64 * p;
    let below = h.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let weight = h - below as f64;
    Some(sorted[below] + weight * (sorted[above] - sorted[below]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_count_half() {
        let peers = [1.0, 2.0, 2.0, 3.0];
        assert_eq!(percentile_rank(2.0, &peers, Better::Lower), Some(50.0));
        assert_eq!(percentile_rank(1.0, &peers, Better::Lower), Some(87.5));
        assert_eq!(percentile_rank(1.0, &peers, Better::Higher), Some(12.5));
        assert_eq!(quantile_type7(&[3.0, 1.0, 2.0], 0.25), Some(1.5));
    }
}
