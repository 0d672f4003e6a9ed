//! The pooled rate: Σ events / Σ exposure. It is the exposure-weighted network rate and the
//! funnel target; a mean of facility rates would let a small facility's noise count as much as
//! a large facility's evidence.

/// One unit's count and exposure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountExposure {
    /// Events observed.
    pub events: u64,
    /// Exposure (patient days, procedures…), in its natural unit.
    pub exposure: f64,
}

/// Σ events / Σ exposure (per one unit of exposure); `None` without exposure.
pub fn pooled_rate(units: &[CountExposure]) -> Option<f64> {
    let events: u64 = units.iter().map(|u| u.events).sum();
    let exposure: f64 = units.iter().map(|u| u.exposure).sum();
    (exposure > 0.0).then(|| events as f64 / exposure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_is_not_the_mean_of_rates() {
        let units = [
            CountExposure {
                events: 1,
                exposure: 10.0,
            },
            CountExposure {
                events: 10,
                exposure: 1000.0,
            },
        ];
        assert_eq!(pooled_rate(&units), Some(11.0 / 1010.0));
        assert_eq!(pooled_rate(&[]), None);
    }
}
