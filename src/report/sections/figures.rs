//! The figures several sections show — a funnel, a distribution, a control chart — each as the
//! chart and the table of its numbers, so the network's page and a facility's scorecard draw
//! them the same way.

use crate::render::{plot, thousands};
use crate::report::html::{Table, esc, figure};
use crate::report::redact::Redactor;
use psonet_core::pb;
use psonet_core::stats::control_chart::{SHIFT_RUN, TREND_RUN};
use psonet_gateway::metric::catalogue::denominator_label;

/// A rate as printed: two decimals, three below 1 so small rates keep their digits.
pub fn rate(value: f64) -> String {
    if value.abs() < 1.0 {
        format!("{value:.3}")
    } else {
        format!("{value:.2}")
    }
}

/// An exposure or count, rounded, with thousands separators.
pub fn amount(value: f64) -> String {
    thousands(value.max(0.0).round() as u64)
}

/// Where a funnel position puts a facility, in words.
pub fn position_words(position: i32) -> &'static str {
    match pb::FunnelPosition::try_from(position) {
        Ok(pb::FunnelPosition::Within) => "within the 95% limits",
        Ok(pb::FunnelPosition::Above95) => "above the 95% limit",
        Ok(pb::FunnelPosition::Above998) => "above the 99.8% limit",
        Ok(pb::FunnelPosition::Below95) => "below the 95% limit",
        Ok(pb::FunnelPosition::Below998) => "below the 99.8% limit",
        _ => "not placed",
    }
}

/// A funnel point's name: a peer's pseudonym, or the reader's own id marked as such.
fn facility_name(p: &pb::FunnelPoint) -> String {
    if p.is_caller {
        format!("{} (you)", p.facility)
    } else {
        p.facility.clone()
    }
}

/// The funnel plot of a released benchmark and its table.
pub fn funnel(bench: &pb::MetricBenchmark) -> String {
    let metric = bench.metric.clone().unwrap_or_default();
    let mut table = Table::new(format!(
        "Funnel plot data: {} {}, by exposure",
        metric.name, metric.unit
    ))
    .text("Facility")
    .number("Events")
    .number(&format!("Exposure ({})", denominator_label(&metric)))
    .number("Rate")
    .number("99.8% lower")
    .number("95% lower")
    .number("95% upper")
    .number("99.8% upper")
    .text("Position")
    .text("Adjusted for over-dispersion");
    for p in &bench.funnel {
        let l = p.limits.unwrap_or_default();
        let cells = vec![
            facility_name(p),
            thousands(p.events),
            amount(p.exposure),
            rate(p.rate),
            rate(l.lower_998),
            rate(l.lower_95),
            rate(l.upper_95),
            rate(l.upper_998),
            position_words(p.position).into(),
            position_words(p.adjusted_position).into(),
        ];
        if p.is_caller {
            table.emphasised_row(cells);
        } else {
            table.row(cells);
        }
    }
    let caption = format!(
        "Each point is a facility ({}); the lines are the pooled rate and the exact Poisson 95% \
         and 99.8% limits for a facility of that exposure. A point outside them differs from \
         the pooled rate by more than chance would usually explain.",
        if bench.funnel.iter().any(|p| p.is_caller) {
            "yours named, peers anonymous"
        } else {
            "anonymous; pseudonyms are drawn afresh for every figure"
        }
    );
    figure(plot::funnel_svg(bench), &caption, &table)
}

/// The distribution of a released benchmark's facility rates and its table.
pub fn distribution(bench: &pb::MetricBenchmark) -> String {
    let metric = bench.metric.clone().unwrap_or_default();
    let d = bench.distribution.unwrap_or_default();
    let mut table = Table::new(format!("Facility rates, {}", metric.unit))
        .text("Statistic")
        .number("Value");
    for (name, value) in [
        ("Pooled rate", rate(bench.pooled_rate)),
        ("10th percentile", rate(d.p10)),
        ("25th percentile", rate(d.p25)),
        ("Median", rate(d.p50)),
        ("75th percentile", rate(d.p75)),
        ("90th percentile", rate(d.p90)),
        ("Facilities", bench.contributing_facilities.to_string()),
    ] {
        table.row(vec![name.into(), value]);
    }
    if let Some(o) = bench.overdispersion {
        table.row(vec![
            "Over-dispersion φ (1 = chance alone)".into(),
            format!("{:.2}", o.phi),
        ]);
        table.row(vec![
            "Between-facility variance τ² (square-root scale)".into(),
            format!("{:.2e}", o.tau2),
        ]);
    }
    let caption = "Each point is one facility's rate over the period, lowest first; the lines \
                   mark the percentiles of facility rates and the pooled rate (all events over \
                   all exposure).";
    figure(plot::distribution_svg(bench), caption, &table)
}

/// Facilities answered but left out of a benchmark, and why.
pub fn excluded(bench: &pb::MetricBenchmark, redactor: &Redactor) -> String {
    if bench.excluded.is_empty() {
        return String::new();
    }
    let mut out = String::from("<p>Left out of these figures:</p><ul class=\"excluded\">");
    for e in &bench.excluded {
        out += &format!(
            "<li>{}: {}</li>",
            esc(&redactor.clean(&e.facility)),
            esc(&redactor.clean(&e.reason))
        );
    }
    out + "</ul>"
}

/// A control chart titled `title`, its table and its signals. `facilities` adds the column of
/// facilities counted each month (a network chart; a facility's own chart has one).
pub fn control_chart(
    title: &str,
    metric: &pb::Metric,
    chart: &pb::ControlChart,
    facilities: bool,
    redactor: &Redactor,
) -> String {
    let signalled = |month: &str| {
        chart
            .signals
            .iter()
            .any(|s| s.first_month.as_str() <= month && month <= s.last_month.as_str())
    };
    let mut table = Table::new(format!("{title}: monthly figures, {}", metric.unit))
        .text("Month")
        .number("Events")
        .number(&format!("Exposure ({})", denominator_label(metric)))
        .number("Rate")
        .number("Lower limit")
        .number("Upper limit");
    if facilities {
        table = table.number("Facilities");
    }
    table = table.text("Note");
    for p in &chart.points {
        let mut cells = vec![p.month.clone()];
        if !p.released {
            cells.extend(std::iter::repeat_n(String::new(), 5));
            if facilities {
                cells.push(String::new());
            }
            cells.push(format!("withheld: {}", redactor.clean(&p.withheld_reason)));
            table.row(cells);
            continue;
        }
        let mut notes = Vec::new();
        if p.rate > p.upper {
            notes.push("above the upper limit");
        } else if p.rate < p.lower {
            notes.push("below the lower limit");
        }
        if signalled(&p.month) {
            notes.push("in a signal");
        }
        cells.extend([
            thousands(p.events),
            amount(p.exposure),
            rate(p.rate),
            rate(p.lower),
            rate(p.upper),
        ]);
        if facilities {
            cells.push(p.contributing_facilities.to_string());
        }
        cells.push(notes.join("; "));
        table.row(cells);
    }
    let caption = format!(
        "Monthly rate with the centre line (the period's pooled rate) and 3-sigma u-chart \
         limits{}; triangles mark months inside a special-cause signal, crosses at the foot \
         months withheld.",
        if chart.sigma_z != 1.0 && chart.sigma_z > 0.0 {
            format!(" widened by Laney's σz = {:.2}", chart.sigma_z)
        } else {
            String::new()
        }
    );
    let svg = plot::control_chart_svg(title, metric, chart);
    figure(svg, &caption, &table) + &signals(chart)
}

/// The special-cause signals of a chart, in words.
fn signals(chart: &pb::ControlChart) -> String {
    if chart.signals.is_empty() {
        return "<p class=\"signals\">No special-cause signal: the months vary as chance would \
                make them.</p>"
            .into();
    }
    let mut out = String::from("<p>Special-cause signals:</p><ul class=\"signals\">");
    for s in &chart.signals {
        let rule = match pb::SignalRule::try_from(s.rule) {
            Ok(pb::SignalRule::BeyondLimits) => "a month beyond a 3-sigma limit".to_string(),
            Ok(pb::SignalRule::Shift) => format!(
                "a shift: {SHIFT_RUN} or more consecutive months on one side of the centre line"
            ),
            Ok(pb::SignalRule::Trend) => {
                format!("a trend: {TREND_RUN} or more consecutive months each rising or falling")
            }
            _ => "an unnamed rule".to_string(),
        };
        let months = if s.first_month == s.last_month {
            s.first_month.clone()
        } else {
            format!("{} to {}", s.first_month, s.last_month)
        };
        out += &format!(
            "<li><strong>{}</strong>, {}: {}.</li>",
            if s.upward { "Upward" } else { "Downward" },
            esc(&months),
            esc(&rule)
        );
    }
    out + "</ul>"
}
