//! A metric's monthly series at this facility, read from the exact counters and the exposure
//! records — never from events — for the months of a range and the units of an intervention.
//!
//! The metric's definition comes with the request (the gateway's catalogue is the source of
//! truth for definitions; the node keeps none), and is checked like an aggregate query.

use crate::store::{Store, StoreError};
use psonet_core::month::{Month, MonthRange};
use psonet_core::pb::{self, DenominatorType};
use psonet_core::query::{AggregateQuery, Grain, Period};
use psonet_core::violations::FieldViolations;
use std::collections::BTreeMap;

/// One month of a metric at this facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthCount {
    /// The month.
    pub month: Month,
    /// Events of the metric.
    pub events: u64,
    /// Exposure in the metric's denominator.
    pub exposure: u64,
}

/// Why a series could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    /// The metric definition is malformed (fields under `metric`).
    #[error("invalid metric: {0}")]
    Invalid(FieldViolations),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The checked counter query of `metric` over `range` by month, restricted to `units` (raw
/// unit types; empty = all).
pub fn query(
    metric: &pb::Metric,
    range: MonthRange,
    units: &[i32],
) -> Result<AggregateQuery, SeriesError> {
    let mut filter = metric.numerator.clone().unwrap_or_default();
    filter.unit_types = units.to_vec();
    let request = pb::AggregateRequest {
        month_from: range.from().to_string(),
        month_to: range.to().to_string(),
        time_grain: pb::TimeGrain::Month as i32,
        filter: Some(filter),
        ..Default::default()
    };
    AggregateQuery::from_wire(&request).map_err(|bad| {
        let mut v = FieldViolations::new();
        for x in bad.iter() {
            v.add(format!("metric.{}", x.field), x.description.clone());
        }
        SeriesError::Invalid(v)
    })
}

/// The denominator of `metric`, checked.
fn denominator(metric: &pb::Metric) -> Result<DenominatorType, SeriesError> {
    match DenominatorType::try_from(metric.denominator) {
        Ok(d) if d != DenominatorType::Unspecified => Ok(d),
        _ => {
            let mut v = FieldViolations::new();
            v.add("metric.denominator", "must be a known denominator");
            Err(SeriesError::Invalid(v))
        }
    }
}

/// Every month of `range` with its events and exposure of `metric` on `units` (raw unit types;
/// empty = all), months without exposure included with zero.
pub fn monthly(
    store: &Store,
    metric: &pb::Metric,
    range: MonthRange,
    units: &[i32],
) -> Result<Vec<MonthCount>, SeriesError> {
    let denominator = denominator(metric)?;
    let query = query(metric, range, units)?;
    let mut events: BTreeMap<Period, u64> = BTreeMap::new();
    for (cell, count) in store.aggregate(&query)? {
        *events.entry(cell.period).or_default() += count;
    }
    let unit_bytes: Vec<u8> = units.iter().map(|u| *u as u8).collect();
    let mut exposure: BTreeMap<Period, u64> = BTreeMap::new();
    for ((period, _, d), value) in store.exposure(range, Grain::Month, &unit_bytes)? {
        if d == denominator {
            *exposure.entry(period).or_default() += value;
        }
    }
    Ok(range
        .months()
        .map(|month| {
            let period = Period::of(month, Grain::Month);
            MonthCount {
                month,
                events: events.get(&period).copied().unwrap_or(0),
                exposure: exposure.get(&period).copied().unwrap_or(0),
            }
        })
        .collect())
}
