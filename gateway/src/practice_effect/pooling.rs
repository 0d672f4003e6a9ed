//! Pooling facilities' log rate ratios by random-effects meta-analysis (REML or DerSimonian–Laird
//! τ², Hartung–Knapp
//! interval, I², prediction interval; `psonet_core::stats::meta_analysis`), and the answer's
//! forest rows under pseudonyms.

use super::adopters::Study;
use crate::pseudonym::Pseudonyms;
use psonet_core::pb;
use psonet_core::stats::Interval;
use psonet_core::stats::meta_analysis::{
    MetaAnalysis, MetaAnalysisError, Tau2Estimator, random_effects,
};

/// Confidence of every interval.
pub const CONFIDENCE: f64 = 0.95;

fn wire(i: Interval) -> pb::Interval {
    pb::Interval {
        lower: i.lower,
        upper: i.upper,
    }
}

fn exp(i: Interval) -> Interval {
    Interval {
        lower: i.lower.exp(),
        upper: i.upper.exp(),
    }
}

/// The τ² estimator a request asks for (REML unless it says DerSimonian–Laird).
pub fn estimator(method: i32) -> Tau2Estimator {
    match pb::HeterogeneityEstimator::try_from(method) {
        Ok(pb::HeterogeneityEstimator::DersimonianLaird) => Tau2Estimator::DerSimonianLaird,
        _ => Tau2Estimator::Reml,
    }
}

/// The meta-analysis of `studies` with τ² from `estimator`.
pub fn pool(
    studies: &[Study],
    estimator: Tau2Estimator,
) -> Result<MetaAnalysis, MetaAnalysisError> {
    let logs: Vec<_> = studies.iter().map(|s| s.log_ratio).collect();
    random_effects(&logs, estimator, CONFIDENCE)
}

fn forest_row(s: &Study, weight: f64, names: &Pseudonyms) -> pb::FacilityBeforeAfter {
    let c = &s.counts;
    pb::FacilityBeforeAfter {
        facility: names.name(&s.facility_id),
        start_month: s.start.map(|m| m.to_string()).unwrap_or_default(),
        counts: Some(pb::BeforeAfterCounts {
            before_events: c.before.events,
            before_exposure: c.before.exposure as u64,
            before_months: s.months.0,
            after_events: c.after.events,
            after_exposure: c.after.exposure as u64,
            after_months: s.months.1,
        }),
        ratio: s.log_ratio.estimate.exp(),
        interval: Some(wire(exp(s.log_ratio.interval(CONFIDENCE)))),
        weight,
    }
}

/// The pooled estimate on the wire, with its forest rows in pseudonym order.
pub fn pooled_to_wire(
    studies: &[Study],
    m: &MetaAnalysis,
    names: &Pseudonyms,
) -> pb::PooledRateRatio {
    let mut rows: Vec<pb::FacilityBeforeAfter> = studies
        .iter()
        .zip(&m.weights)
        .map(|(s, w)| forest_row(s, *w, names))
        .collect();
    rows.sort_by(|a, b| a.facility.cmp(&b.facility));
    pb::PooledRateRatio {
        facilities: m.studies as u32,
        ratio: m.ratio(),
        interval: Some(wire(m.ratio_interval())),
        prediction: m.ratio_prediction().map(wire),
        tau2: m.tau2,
        i2: m.i2,
        q: m.q,
        studies: rows,
    }
}

/// Adopters' pooled change over non-adopters' (difference in differences on the log scale),
/// with a normal interval from the two Hartung–Knapp standard errors.
pub fn ratio_of_pooled(adopters: &MetaAnalysis, others: &MetaAnalysis) -> (f64, Interval) {
    let difference = adopters.mean - others.mean;
    let se = (adopters.hartung_knapp_standard_error.powi(2)
        + others.hartung_knapp_standard_error.powi(2))
    .sqrt();
    let z = psonet_core::stats::distribution::normal_quantile(1.0 - (1.0 - CONFIDENCE) / 2.0);
    (
        difference.exp(),
        Interval {
            lower: (difference - z * se).exp(),
            upper: (difference + z * se).exp(),
        },
    )
}
