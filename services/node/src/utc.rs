//! UTC timestamps for the audit trail, without a calendar library: civil dates from days since
//! 1970 and back (Howard Hinnant's algorithms).

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch.
pub fn format_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Milliseconds since the Unix epoch of `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]Z` (UTC).
pub fn parse_ms(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T').unwrap_or((text, "00:00:00Z"));
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) || y < 1970 {
        return None;
    }
    let mut t = time
        .strip_suffix('Z')?
        .split(':')
        .map(|p| p.parse::<u64>().ok());
    let (h, min) = (t.next()??, t.next()??);
    let s = t.next().unwrap_or(Some(0))?;
    if h > 23 || min > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, m, day) as u64;
    Some(((days * 86_400) + h * 3600 + min * 60 + s) * 1000)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_utc() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_772_582_400_123), "2026-03-04T00:00:00.123Z");
        assert_eq!(parse_ms("2026-03-04"), Some(1_772_582_400_000));
        assert_eq!(parse_ms("2026-03-04T01:02:03Z"), Some(1_772_586_123_000));
        assert_eq!(
            parse_ms("2024-02-29T12:00Z").map(format_ms).unwrap(),
            "2024-02-29T12:00:00.000Z"
        );
        assert_eq!(parse_ms("yesterday"), None);
        assert_eq!(parse_ms("2026-13-01"), None);
    }
}
