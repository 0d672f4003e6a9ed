//! Fixed buckets: calendar months and coarser, never a free date range.
//!
//! A query's cells are whole periods of its grain, and its range must consist of whole periods
//! of the network's finest grain: with quarters as the finest grain, a query from February to
//! April would answer for part-quarters, and differencing two such answers would give months.
//! Dimension values are fixed enumerations and filters select whole values, so no event-level
//! predicate can be expressed at all.

use crate::query::{AggregateQuery, Grain, Period};
use crate::violations::FieldViolations;
use serde::{Deserialize, Serialize};

/// The finest time bucket a network releases; month by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinestGrain {
    /// Calendar months.
    #[default]
    Month,
    /// Calendar quarters.
    Quarter,
    /// Calendar years.
    Year,
}

impl FinestGrain {
    /// The query grain it corresponds to.
    pub fn grain(self) -> Grain {
        match self {
            FinestGrain::Month => Grain::Month,
            FinestGrain::Quarter => Grain::Quarter,
            FinestGrain::Year => Grain::Year,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FinestGrain::Month => "month",
            FinestGrain::Quarter => "quarter",
            FinestGrain::Year => "year",
        }
    }

    /// Refuses a query finer than this grain, or whose range cuts one of its periods.
    pub fn check(self, query: &AggregateQuery) -> Result<(), FieldViolations> {
        let finest = self.grain();
        let mut v = FieldViolations::new();
        if query.grain < finest {
            v.add(
                "time_grain",
                format!("this network releases nothing finer than a {}", self.name()),
            );
        }
        let (from, to) = (query.range.from(), query.range.to());
        if from.minus(1) != from && Period::of(from, finest) == Period::of(from.minus(1), finest) {
            v.add(
                "month_from",
                format!("must be the first month of a {}", self.name()),
            );
        }
        if to.next() != to && Period::of(to, finest) == Period::of(to.next(), finest) {
            v.add(
                "month_to",
                format!("must be the last month of a {}", self.name()),
            );
        }
        v.into_result(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    fn query(from: &str, to: &str, grain: pb::TimeGrain) -> AggregateQuery {
        AggregateQuery::from_wire(&pb::AggregateRequest {
            month_from: from.into(),
            month_to: to.into(),
            time_grain: grain as i32,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn months_are_always_whole() {
        let q = query("2025-02", "2025-04", pb::TimeGrain::Month);
        assert_eq!(FinestGrain::Month.check(&q), Ok(()));
    }

    #[test]
    fn quarters_refuse_months_and_cut_quarters() {
        let err = FinestGrain::Quarter
            .check(&query("2025-02", "2025-04", pb::TimeGrain::Month))
            .unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["time_grain", "month_from", "month_to"]);
        let whole = query("2025-01", "2025-06", pb::TimeGrain::Quarter);
        assert_eq!(FinestGrain::Quarter.check(&whole), Ok(()));
        let year = query("2025-04", "2025-12", pb::TimeGrain::Year);
        assert_eq!(FinestGrain::Quarter.check(&year), Ok(()));
        assert!(FinestGrain::Year.check(&year).is_err());
    }
}
