//! Readable tables of benchmark results, for a terminal.

use super::thousands;
use psonet_core::pb::{self, CoverageStatus, EventCategory};
use psonet_gateway::metric::catalogue::denominator_label;
use std::fmt::Write;

fn short(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_string()
}

/// The benchmark rows and the coverage as text tables.
pub fn benchmark(response: &pb::NetworkBenchmarkResponse) -> String {
    let mut out = String::new();
    let ok = response
        .coverage
        .iter()
        .filter(|c| c.status == CoverageStatus::Ok as i32)
        .count();
    let k = response.min_cell_count;
    if response.noise_sd > 0.0 {
        let _ = writeln!(
            out,
            "{ok} of {} facilities answered; network counts with differential-privacy noise \
             (standard deviation {:.1} per count; secure aggregation: no facility's own counts \
             were seen). A row is withheld when it has fewer than {k} events or too few \
             facilities contributed.\n",
            response.coverage.len(),
            response.noise_sd
        );
    } else if response.exact {
        let _ = writeln!(
            out,
            "{ok} of {} facilities answered; exact network counts (secure aggregation: no facility's \
             own counts were seen). A row is withheld when it has fewer than {k} events or too few \
             facilities contributed.\n",
            response.coverage.len(),
        );
    } else {
        let _ = writeln!(
            out,
            "{ok} of {} facilities answered; cells under {k} events are withheld at each facility, \
             so a row with withheld cells is a lower bound.\n",
            response.coverage.len(),
        );
    }
    let header = format!(
        "{:<8}  {:<24} {:>7} {:>13} {:>13} {:>10}",
        "month", "category", "events", "patient days", "per 1,000 pd", "facilities"
    );
    let lower_bounds = !response.exact && response.noise_sd == 0.0;
    if lower_bounds {
        let _ = writeln!(out, "{header} {:>8}", "withheld");
    } else {
        let _ = writeln!(out, "{header}");
    }
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
        let line = format!(
            "{:<8}  {:<24} {:>7} {:>13} {:>13} {:>10}",
            row.month,
            short(category, "EVENT_CATEGORY_"),
            thousands(row.events),
            thousands(row.patient_days),
            rate,
            row.contributing_facilities,
        );
        if lower_bounds {
            let _ = writeln!(out, "{line} {:>8}", row.suppressed_cells);
        } else {
            let _ = writeln!(out, "{line}");
        }
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
        let _ = writeln!(
            out,
            "{:<24} {:<12} {:>6}ms  {}",
            c.facility_id,
            status_name(c),
            c.latency_ms,
            c.detail
        );
    }
    out
}

/// A facility's coverage status without its prefix, e.g. `TIMED_OUT`.
fn status_name(c: &pb::FacilityCoverage) -> String {
    let status = CoverageStatus::try_from(c.status).map_or("?", |s| s.as_str_name());
    short(status, "COVERAGE_STATUS_")
}

/// A funnel point's events: the caller's own count; "—" on another facility's point, whose
/// count the gateway does not show (it sends 0 with a rate above 0).
fn point_events(p: &pb::FunnelPoint) -> String {
    if !p.is_caller && p.events == 0 && p.rate > 0.0 {
        "—".into()
    } else {
        thousands(p.events)
    }
}

/// `4.235 (exact 95% CI 4.061 to 4.414): 2,234 events / 527,506 patient days`.
fn rate_with_interval(
    rate: f64,
    ci: pb::Interval,
    events: u64,
    exposure: f64,
    metric: &pb::Metric,
) -> String {
    format!(
        "{rate:.3} (exact 95% CI {:.3} to {:.3}): {} events / {} {}",
        ci.lower,
        ci.upper,
        thousands(events),
        thousands(exposure.round() as u64),
        denominator_label(metric)
    )
}

fn signed(v: f64) -> String {
    format!("{v:.2}")
}

fn position_name(position: i32) -> String {
    pb::FunnelPosition::try_from(position)
        .map_or("?", |p| p.as_str_name())
        .trim_start_matches("FUNNEL_POSITION_")
        .to_lowercase()
        .replace("above_998", "ABOVE 99.8%")
        .replace("above_95", "above 95%")
        .replace("below_998", "BELOW 99.8%")
        .replace("below_95", "below 95%")
}

/// The metric catalogue as a table.
pub fn metrics(response: &pb::ListMetricsResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<20} {:>3}  {:<30} unit", "metric", "v", "name");
    for m in &response.metrics {
        let _ = writeln!(
            out,
            "{:<20} {:>3}  {:<30} {}",
            m.id, m.version, m.name, m.unit
        );
    }
    out
}

/// A metric benchmark: pooled rate, distribution, funnel, exclusions and coverage.
pub fn metric_benchmark(response: &pb::NetworkBenchmarkResponse) -> String {
    let mut out = String::new();
    let Some(b) = &response.metric else {
        return benchmark(response);
    };
    let metric = b.metric.clone().unwrap_or_default();
    let _ = writeln!(
        out,
        "{} ({} v{}), {} to {}, {}",
        metric.name, metric.id, metric.version, b.month_from, b.month_to, metric.unit
    );
    if !b.released {
        let _ = writeln!(out, "withheld: {}", b.withheld_reason);
    } else {
        let ci = b.pooled_interval_95.unwrap_or_default();
        let how = if response.noise_sd > 0.0 {
            "network sum with differential-privacy noise"
        } else if response.exact {
            "exact network sum"
        } else {
            "sum of the facilities below"
        };
        let _ = writeln!(
            out,
            "pooled rate {} over {} facilities ({how})",
            rate_with_interval(b.pooled_rate, ci, b.events, b.exposure, &metric),
            b.contributing_facilities
        );
        if !b.facilities_withheld_reason.is_empty() {
            let _ = writeln!(out, "{}", b.facilities_withheld_reason);
        }
        if let Some(d) = &b.distribution {
            let _ = writeln!(
                out,
                "facility rates: P10 {:.2}  P25 {:.2}  median {:.2}  P75 {:.2}  P90 {:.2}",
                d.p10, d.p25, d.p50, d.p75, d.p90
            );
        }
        if let Some(o) = &b.overdispersion {
            let _ = writeln!(
                out,
                "over-dispersion: phi {:.2} (1 = Poisson noise only), tau^2 {:.2e}",
                o.phi, o.tau2
            );
        }
        if !b.funnel.is_empty() {
            let _ = writeln!(
                out,
                "\neach facility's rate, as its node releases it (pseudonymous; another facility's \
                 exposure banded, its rate to two figures, its count not shown):"
            );
        }
        let _ = writeln!(
            out,
            "{:<14} {:>7} {:>12} {:>8} {:>8} {:>8} {:>8} {:>8}  {:<12} adjusted for over-dispersion",
            "facility",
            "events",
            "exposure",
            "rate",
            "lo99.8",
            "lo95",
            "hi95",
            "hi99.8",
            "position"
        );
        for p in &b.funnel {
            let l = p.limits.unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<14} {:>7} {:>12} {:>8} {:>8} {:>8} {:>8} {:>8}  {:<12} {}",
                p.facility,
                point_events(p),
                thousands(p.exposure.round() as u64),
                signed(p.rate),
                signed(l.lower_998),
                signed(l.lower_95),
                signed(l.upper_95),
                signed(l.upper_998),
                position_name(p.position),
                position_name(p.adjusted_position)
            );
        }
    }
    for e in &b.excluded {
        let _ = writeln!(out, "excluded {}: {}", e.facility, e.reason);
    }
    let _ = writeln!(out);
    coverage(&mut out, &response.coverage);
    out
}

fn coverage(out: &mut String, rows: &[pb::FacilityCoverage]) {
    let ok = rows
        .iter()
        .filter(|c| c.status == CoverageStatus::Ok as i32)
        .count();
    let _ = writeln!(out, "{ok} of {} facilities in scope answered", rows.len());
    for c in rows
        .iter()
        .filter(|c| c.status != CoverageStatus::Ok as i32)
    {
        let _ = writeln!(
            out,
            "  {:<22} {}  {}",
            c.facility_id,
            status_name(c),
            c.detail
        );
    }
}

/// A control chart as a table with its signals.
pub fn control_chart(chart: &pb::ControlChart) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "centre {:.3}, Laney sigma_z {:.2}\n{:<8} {:>7} {:>12} {:>8} {:>8} {:>8} {:>10}  note",
        chart.centre,
        chart.sigma_z,
        "month",
        "events",
        "exposure",
        "rate",
        "LCL",
        "UCL",
        "facilities"
    );
    for p in &chart.points {
        if !p.released {
            let _ = writeln!(out, "{:<8}  withheld: {}", p.month, p.withheld_reason);
            continue;
        }
        let note = if p.rate > p.upper {
            "above UCL"
        } else if p.rate < p.lower {
            "below LCL"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:<8} {:>7} {:>12} {:>8} {:>8} {:>8} {:>10}  {note}",
            p.month,
            thousands(p.events),
            thousands(p.exposure.round() as u64),
            signed(p.rate),
            signed(p.lower),
            signed(p.upper),
            p.contributing_facilities
        );
    }
    for s in &chart.signals {
        let rule = pb::SignalRule::try_from(s.rule).map_or("?", |r| r.as_str_name());
        let _ = writeln!(
            out,
            "signal: {} {} from {} to {}",
            if s.upward { "upward" } else { "downward" },
            short(rule, "SIGNAL_RULE_").to_lowercase().replace('_', " "),
            s.first_month,
            s.last_month
        );
    }
    if chart.signals.is_empty() {
        let _ = writeln!(out, "no special-cause signal");
    }
    out
}

/// A trend response.
pub fn trend(response: &pb::TrendResponse) -> String {
    let metric = response.metric.clone().unwrap_or_default();
    let sums = if response.noise_sd > 0.0 {
        format!(
            "monthly sums with differential-privacy noise (standard deviation {:.1})",
            response.noise_sd
        )
    } else if response.exact {
        "exact monthly sums".to_string()
    } else {
        "sums of node-suppressed answers".to_string()
    };
    let mut out = format!(
        "{} {}: network u-chart of the {sums}\n",
        metric.name, metric.unit
    );
    out.push_str(&control_chart(&response.chart.clone().unwrap_or_default()));
    out.push('\n');
    coverage(&mut out, &response.coverage);
    out
}

/// A facility scorecard.
pub fn scorecard(card: &pb::FacilityScorecardResponse) -> String {
    let mut out = String::new();
    let peers = card.peers.clone().unwrap_or_default();
    let metric = peers.metric.clone().unwrap_or_default();
    let ci = card.rate_interval_95.unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: {} {} from {} to {}\nyour rate {}",
        card.facility_id,
        metric.name,
        metric.unit,
        peers.month_from,
        peers.month_to,
        rate_with_interval(card.rate, ci, card.events, card.exposure, &metric)
    );
    if peers.released {
        let _ = writeln!(
            out,
            "peers: pooled {:.3} over {} facilities; your percentile rank {:.1} (100 = best); funnel: {}",
            peers.pooled_rate,
            peers.contributing_facilities,
            card.percentile_rank,
            position_name(card.funnel_position)
        );
    }
    if let Some(oe) = &card.observed_expected {
        let i = oe.interval_95.unwrap_or_default();
        let _ = writeln!(
            out,
            "observed/expected by unit type: {} / {:.1} = {:.2} (mid-P 95% CI {:.2} to {:.2}, p = {:.4})",
            oe.observed, oe.expected, oe.ratio, i.lower, i.upper, oe.p_value
        );
    }
    for f in &card.flags {
        let _ = writeln!(out, "flag: {f}");
    }
    let _ = writeln!(out, "\nyour months:");
    out.push_str(&control_chart(&card.trend.clone().unwrap_or_default()));
    out
}

/// Links, one row each: facility, the other end, up or down since when, reconnects, when the
/// other end's certificate expires, and why a link is down.
pub fn links(response: &pb::ListLinksResponse) -> String {
    let mut out = String::new();
    if response.links.is_empty() {
        out.push_str("no links (nothing dials out to this server, or it dials out to none)\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<20} {:<22} {:<5} {:<21} {:>10} {:<11} detail",
        "facility", "peer", "state", "since (UTC)", "reconnects", "cert until"
    );
    for link in &response.links {
        let when = |seconds: Option<i64>| {
            seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or_else(|| "-".to_string(), |s| utc_seconds(s * 1000))
        };
        let until = when(link.peer_certificate_not_after.as_ref().map(|t| t.seconds));
        let _ = writeln!(
            out,
            "{:<20} {:<22} {:<5} {:<21} {:>10} {:<11} {}",
            link.facility_id,
            if link.peer_address.is_empty() {
                "-"
            } else {
                &link.peer_address
            },
            if link.up { "up" } else { "DOWN" },
            when(link.since.as_ref().map(|t| t.seconds)),
            link.reconnects,
            until.get(..10).unwrap_or(&until),
            link.last_error
        );
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` for milliseconds since the Unix epoch.
fn utc_seconds(ms: u64) -> String {
    let text = psonet_node::utc::format_ms(ms).replacen('T', " ", 1);
    text.get(..19).unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_table_shows_no_lower_bounds_and_says_why_rows_are_withheld() {
        let row = |category: EventCategory, events: u64, reason: &str| pb::BenchmarkRow {
            month: "2026-07".into(),
            category: category as i32,
            events,
            patient_days: if reason.is_empty() { 9_000 } else { 0 },
            rate_per_1000_patient_days: reason.is_empty().then(|| events as f64 / 9.0),
            contributing_facilities: if reason.is_empty() { 6 } else { 0 },
            withheld: !reason.is_empty(),
            withheld_reason: reason.into(),
            ..Default::default()
        };
        let mut response = pb::NetworkBenchmarkResponse {
            rows: vec![
                row(EventCategory::Fall, 412, ""),
                row(EventCategory::Hai, 0, "fewer than 5 facilities contributed"),
            ],
            min_cell_count: 11,
            exact: true,
            ..Default::default()
        };
        let text = benchmark(&response);
        assert!(text.contains("exact network counts"), "{text}");
        assert!(!text.contains("lower bound"), "{text}");
        assert!(
            text.contains("HAI                      withheld: fewer than 5 facilities contributed"),
            "{text}"
        );
        let falls = text.lines().find(|l| l.contains("FALL")).unwrap();
        assert_eq!(falls.split_whitespace().last(), Some("6"), "{falls}");
        response.exact = false;
        let text = benchmark(&response);
        assert!(text.contains("lower bound"), "{text}");
        let falls = text.lines().find(|l| l.contains("FALL")).unwrap();
        assert_eq!(falls.split_whitespace().last(), Some("0"), "{falls}");
    }

    #[test]
    fn a_chart_table_names_withheld_months_and_signals() {
        let chart = pb::ControlChart {
            centre: 3.0,
            sigma_z: 1.0,
            points: vec![
                pb::ChartPoint {
                    month: "2025-01".into(),
                    released: true,
                    events: 30,
                    exposure: 10_000.0,
                    rate: 3.0,
                    lower: 1.4,
                    upper: 4.6,
                    contributing_facilities: 1,
                    ..Default::default()
                },
                pb::ChartPoint {
                    month: "2025-02".into(),
                    withheld_reason: "too few".into(),
                    ..Default::default()
                },
            ],
            signals: vec![pb::ChartSignal {
                rule: pb::SignalRule::Shift as i32,
                upward: true,
                first_month: "2025-01".into(),
                last_month: "2025-08".into(),
            }],
        };
        let text = control_chart(&chart);
        assert!(
            text.contains("2025-02") && text.contains("withheld: too few"),
            "{text}"
        );
        assert!(
            text.contains("signal: upward shift from 2025-01 to 2025-08"),
            "{text}"
        );
    }
}
