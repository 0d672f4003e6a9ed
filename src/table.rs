//! Readable tables of benchmark results.

use psonet_core::pb::{self, CoverageStatus, EventCategory};
use std::fmt::Write;

fn short(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_string()
}

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The benchmark rows and the coverage as text tables.
pub fn benchmark(response: &pb::NetworkBenchmarkResponse) -> String {
    let mut out = String::new();
    let ok = response
        .coverage
        .iter()
        .filter(|c| c.status == CoverageStatus::Ok as i32)
        .count();
    let _ = writeln!(
        out,
        "{ok} of {} facilities answered; cells under {} events are withheld at each facility.\n",
        response.coverage.len(),
        response.min_cell_count
    );
    let _ = writeln!(
        out,
        "{:<8}  {:<24} {:>7} {:>13} {:>13} {:>10} {:>8}",
        "month", "category", "events", "patient days", "per 1,000 pd", "facilities", "withheld"
    );
    for row in &response.rows {
        let category = EventCategory::try_from(row.category).map_or("?", |c| c.as_str_name());
        if row.withheld {
            let _ = writeln!(
                out,
                "{:<8}  {:<24} withheld: {}",
                row.month,
                short(category, "EVENT_CATEGORY_"),
                row.withheld_reason
            );
            continue;
        }
        let rate = row
            .rate_per_1000_patient_days
            .map_or("-".to_string(), |r| format!("{r:.2}"));
        let _ = writeln!(
            out,
            "{:<8}  {:<24} {:>7} {:>13} {:>13} {:>10} {:>8}",
            row.month,
            short(category, "EVENT_CATEGORY_"),
            thousands(row.events),
            thousands(row.patient_days),
            rate,
            row.contributing_facilities,
            row.suppressed_cells
        );
    }
    if response.rows.is_empty() {
        let _ = writeln!(out, "(no events in the range)");
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:<12} {:>8}  detail",
        "facility", "status", "latency"
    );
    for c in &response.coverage {
        let status = CoverageStatus::try_from(c.status).map_or("?", |s| s.as_str_name());
        let _ = writeln!(
            out,
            "{:<24} {:<12} {:>6}ms  {}",
            c.facility_id,
            short(status, "COVERAGE_STATUS_"),
            c.latency_ms,
            c.detail
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
