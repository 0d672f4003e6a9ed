//! Calendar months: the finest time bucket psonet keeps or releases.
//!
//! Events carry a discovery *month*, never a date, so that nothing finer than a month can be
//! stored, counted or released. Months are written `YYYY-MM` on the wire.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// The earliest year accepted: older reports predate the Common Formats by far.
pub const MIN_YEAR: u32 = 1990;
/// The latest year accepted (keeps `YYYY` four digits).
pub const MAX_YEAR: u32 = 9999;
/// The longest range of months one aggregate query may span (ten years).
pub const MAX_RANGE_MONTHS: u32 = 120;

/// A calendar month, ordered in time.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(u32);

/// Why a text is not a month or a pair of months is not a range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonthError {
    /// Not of the form `YYYY-MM`.
    #[error("expected a month as YYYY-MM, got {0:?}")]
    Format(String),
    /// A month number outside 1..=12 or a year outside the accepted span.
    #[error("{0:?} is not a month between {MIN_YEAR}-01 and {MAX_YEAR}-12")]
    OutOfRange(String),
    /// The range ends before it starts.
    #[error("the range ends ({to}) before it starts ({from})")]
    Reversed {
        /// First month given.
        from: Month,
        /// Last month given.
        to: Month,
    },
    /// The range spans more months than one query may.
    #[error("the range spans {0} months; at most {MAX_RANGE_MONTHS} are allowed")]
    TooLong(u32),
}

impl Month {
    /// The month `month` (1..=12) of `year`.
    pub fn new(year: u32, month: u32) -> Result<Self, MonthError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) || !(1..=12).contains(&month) {
            return Err(MonthError::OutOfRange(format!("{year:04}-{month:02}")));
        }
        Ok(Month(year * 12 + month - 1))
    }

    /// Calendar year.
    pub fn year(self) -> u32 {
        self.0 / 12
    }

    /// Month of the year, 1..=12.
    pub fn month(self) -> u32 {
        self.0 % 12 + 1
    }

    /// A dense, ordered number for storage keys (`year * 12 + month - 1`).
    pub fn index(self) -> u32 {
        self.0
    }

    /// The month whose [`Month::index`] is `index`, if it is in the accepted span.
    pub fn from_index(index: u32) -> Option<Self> {
        let m = Month(index);
        (MIN_YEAR..=MAX_YEAR).contains(&m.year()).then_some(m)
    }

    /// The following month (saturating at the last accepted month).
    pub fn next(self) -> Self {
        Month::from_index(self.0 + 1).unwrap_or(self)
    }

    /// The month `n` months earlier (saturating at the first accepted month).
    pub fn minus(self, n: u32) -> Self {
        Month::from_index(self.0.saturating_sub(n)).unwrap_or(Month(MIN_YEAR * 12))
    }

    /// The current month in UTC, from the system clock.
    pub fn current() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let (year, month) = civil_year_month(secs / 86_400);
        Month::new(year, month).unwrap_or(Month(MIN_YEAR * 12))
    }
}

/// Year and month of a day counted from 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil_year_month(days: u64) -> (u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as u32, month as u32)
}

impl FromStr for Month {
    type Err = MonthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| bytes[r].iter().all(u8::is_ascii_digit);
        if bytes.len() != 7 || bytes[4] != b'-' || !digits(0..4) || !digits(5..7) {
            return Err(MonthError::Format(s.to_string()));
        }
        let year = s[0..4].parse().map_err(|_| MonthError::Format(s.into()))?;
        let month = s[5..7].parse().map_err(|_| MonthError::Format(s.into()))?;
        Month::new(year, month)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

/// An inclusive range of whole months, at most [`MAX_RANGE_MONTHS`] long: the only time filter
/// a query may use, so that no one can ask for a free date range.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MonthRange {
    from: Month,
    to: Month,
}

impl MonthRange {
    /// The months `from..=to`.
    pub fn new(from: Month, to: Month) -> Result<Self, MonthError> {
        if to < from {
            return Err(MonthError::Reversed { from, to });
        }
        let len = to.index() - from.index() + 1;
        if len > MAX_RANGE_MONTHS {
            return Err(MonthError::TooLong(len));
        }
        Ok(MonthRange { from, to })
    }

    /// First month.
    pub fn from(&self) -> Month {
        self.from
    }

    /// Last month.
    pub fn to(&self) -> Month {
        self.to
    }

    /// Whether `m` is in the range.
    pub fn contains(&self, m: Month) -> bool {
        self.from <= m && m <= self.to
    }

    /// Every month of the range, in order.
    pub fn months(&self) -> impl Iterator<Item = Month> + use<> {
        (self.from.index()..=self.to.index()).map(Month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        let m: Month = "2024-02".parse().unwrap();
        assert_eq!((m.year(), m.month()), (2024, 2));
        assert_eq!(m.to_string(), "2024-02");
        assert_eq!(m.next().to_string(), "2024-03");
        assert_eq!(
            "2024-12".parse::<Month>().unwrap().next().to_string(),
            "2025-01"
        );
    }

    #[test]
    fn rejects_malformed_and_out_of_range() {
        for bad in [
            "2024-2",
            "2024/02",
            "24-02",
            "2024-02-01",
            "",
            "２０２４-02",
        ] {
            assert!(
                matches!(bad.parse::<Month>(), Err(MonthError::Format(_))),
                "{bad}"
            );
        }
        for bad in ["2024-00", "2024-13", "1989-12"] {
            assert!(
                matches!(bad.parse::<Month>(), Err(MonthError::OutOfRange(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_year_month(0), (1970, 1));
        assert_eq!(civil_year_month(31), (1970, 2));
        // 2000-03-01 is day 11017; 2026-11-25 is day 20782.
        assert_eq!(civil_year_month(11_016), (2000, 2));
        assert_eq!(civil_year_month(11_017), (2000, 3));
        assert_eq!(civil_year_month(20_782), (2026, 11));
    }

    #[test]
    fn ranges_are_bounded_and_ordered() {
        let a: Month = "2020-01".parse().unwrap();
        let b: Month = "2020-12".parse().unwrap();
        assert_eq!(MonthRange::new(a, b).unwrap().months().count(), 12);
        assert!(matches!(
            MonthRange::new(b, a),
            Err(MonthError::Reversed { .. })
        ));
        let far: Month = "2030-01".parse().unwrap();
        assert_eq!(MonthRange::new(a, far), Err(MonthError::TooLong(121)));
    }
}
