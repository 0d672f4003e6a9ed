//! The methods appendix, generated from the catalogue (`ListMetrics`) and the report's settings
//! so it cannot drift from what the figures are: each metric's definition as the gateway holds
//! it, the statistics behind every figure, the release rules (with the thresholds the gateway
//! reported, and the code's defaults where it reports none), and the settings of this report.

use super::enum_words;
use crate::report::calls::Plan;
use crate::report::html::{Table, esc};
use crate::report::reader::Reader;
use psonet_core::disclosure::primary::DEFAULT_MIN_CELL_COUNT;
use psonet_core::network_release::{
    DEFAULT_MAX_SHARE, DEFAULT_MIN_FACILITIES, MIN_FACILITIES_FLOOR,
};
use psonet_core::pb;
use psonet_core::stats::control_chart::{SHIFT_RUN, TREND_RUN};
use psonet_gateway::metric::catalogue::denominator_label;

/// What the appendix says about this report's own settings.
#[derive(Debug, Clone)]
pub struct Settings<'a> {
    /// What was asked.
    pub plan: &'a Plan,
    /// The smallest released cell count the gateway reported, when a benchmark answered.
    pub min_cell_count: Option<u32>,
    /// Calls made and calls failed.
    pub calls: (usize, usize),
}

/// The methods appendix.
pub fn render(catalogue: &pb::ListMetricsResponse, settings: &Settings) -> String {
    let mut out = String::from(
        "<section class=\"methods\" id=\"methods\"><h2>Methods</h2><h3>Metric definitions</h3>",
    );
    let mut table = Table::new("The gateway's metric catalogue")
        .text("Metric")
        .text("Counts")
        .text("Per")
        .text("Better")
        .text("Definition");
    for m in &catalogue.metrics {
        table.row(vec![
            format!("{} ({} v{})", m.name, m.id, m.version),
            numerator_words(m.numerator.as_ref()),
            format!("{} × {}", denominator_label(m), m.multiplier),
            if m.higher_is_better {
                "higher"
            } else {
                "lower"
            }
            .into(),
            m.description.clone(),
        ]);
    }
    out += &table.html("definitions");
    out += &statistics(settings);
    out += &release_rules(settings);
    out += &report_settings(settings);
    out + "</section>"
}

/// The events a numerator filter counts, in words.
fn numerator_words(filter: Option<&pb::AggregateFilter>) -> String {
    let Some(f) = filter else {
        return "every report".into();
    };
    let parts: Vec<String> = [
        (
            "category",
            enum_words(&f.categories, "EVENT_CATEGORY_", |v| {
                pb::EventCategory::try_from(v).ok().map(|e| e.as_str_name())
            }),
        ),
        (
            "event type",
            enum_words(&f.event_types, "EVENT_TYPE_", |v| {
                pb::EventType::try_from(v).ok().map(|e| e.as_str_name())
            }),
        ),
        (
            "harm",
            enum_words(&f.harms, "HARM_LEVEL_", |v| {
                pb::HarmLevel::try_from(v).ok().map(|e| e.as_str_name())
            }),
        ),
        (
            "unit type",
            enum_words(&f.unit_types, "UNIT_TYPE_", |v| {
                pb::UnitType::try_from(v).ok().map(|e| e.as_str_name())
            }),
        ),
        (
            "NCC MERP category",
            enum_words(&f.ncc_merp, "NCC_MERP_CATEGORY_", |v| {
                pb::NccMerpCategory::try_from(v)
                    .ok()
                    .map(|e| e.as_str_name())
            }),
        ),
    ]
    .into_iter()
    .filter(|(_, words)| !words.is_empty())
    .map(|(what, words)| format!("{what} {}", words.join(", ")))
    .collect();
    if parts.is_empty() {
        "every report".into()
    } else {
        format!("reports with {}", parts.join("; "))
    }
}

fn statistics(settings: &Settings) -> String {
    let mut items = vec![
        "<strong>Pooled rate.</strong> All events over all exposure of the facilities included, \
         times the metric's multiplier — never an average of facility rates. Its 95% interval is \
         exact (Garwood): the chi-square quantiles of a Poisson count."
            .to_string(),
        "<strong>Facility rates.</strong> Each facility's count over the whole period divided by \
         its exposure. Counts are asked per calendar year, so a facility whose count in any year \
         of the period is withheld by its node's small-cell rule is left out of every figure of \
         that metric and listed as left out."
            .to_string(),
        "<strong>Distribution.</strong> The 10th, 25th, 50th, 75th and 90th percentiles of the \
         facility rates (Hyndman–Fan type 7, as R and numpy compute them)."
            .to_string(),
        "<strong>Funnel plot.</strong> Exact Poisson 95% and 99.8% limits around the pooled rate \
         for every exposure (Spiegelhalter 2005): a facility outside them differs from the \
         pooled rate by more than chance would usually explain. Over-dispersion is measured by \
         φ from winsorized z-scores (10th and 90th percentiles) and by the between-facility \
         variance τ² (DerSimonian–Laird), both on the square-root scale; when τ² is above zero, \
         limits widened by that random effect are drawn too, and each facility's position \
         against them is given."
            .to_string(),
        format!(
            "<strong>Monthly trend.</strong> A u-chart: each month's rate with the period's \
             pooled rate as centre line and limits at three standard errors of a Poisson rate \
             for that month's exposure{}. Special-cause signals (Provost and Murray): a month \
             beyond a limit; a shift of {SHIFT_RUN} or more consecutive months on one side of \
             the centre line; a trend of {TREND_RUN} or more consecutive months each rising or \
             each falling.",
            if settings.plan.laney {
                ", widened by Laney's σz (the u′-chart) when monthly rates are over-dispersed"
            } else {
                ""
            }
        ),
    ];
    if let Reader::Facility { .. } = settings.plan.reader {
        items.push(
            "<strong>Percentile rank.</strong> The share of the peers (you included) doing worse \
             than you, ties counting half: 100 is best, whichever direction is better for the \
             metric."
                .into(),
        );
        items.push(
            "<strong>Observed / expected.</strong> Your events against those expected if each of \
             your unit types had your peers' rate for it (indirect standardisation), with the \
             exact mid-P 95% interval and two-sided test; not given when fewer than one event \
             is expected."
                .into(),
        );
    }
    let mut out = String::from("<h3>Statistics</h3><ul class=\"methods-list\">");
    for item in items {
        out += &format!("<li>{item}</li>");
    }
    out + "</ul>"
}

fn release_rules(settings: &Settings) -> String {
    let k = match settings.min_cell_count {
        Some(k) => format!("k = {k}, as the gateway reported"),
        None => format!("k is the network's threshold, {DEFAULT_MIN_CELL_COUNT} by default"),
    };
    let items = [
        format!(
            "<strong>At each facility.</strong> A node releases only counts: a cell of 1 to k − 1 \
             events is suppressed ({}), zero is released, and complementary cells are \
             suppressed so that no suppressed cell can be recovered from totals. Months are the \
             finest period released.",
            esc(&k)
        ),
        format!(
            "<strong>At the gateway.</strong> A network or peer-group figure is released only \
             when enough facilities contribute to it — {DEFAULT_MIN_FACILITIES} by default; a \
             network may require more, never fewer than {MIN_FACILITIES_FLOOR} — and no single \
             facility holds more than {:.0}% of it (the default share). A withheld figure says \
             which rule withheld it.",
            DEFAULT_MAX_SHARE * 100.0
        ),
        "<strong>Who is named.</strong> Facilities other than the reader appear only as \
         pseudonyms such as “peer-07”, drawn afresh for every figure: the same pseudonym in two \
         figures need not be the same facility. A facility's own figures name it only in its own \
         report."
            .to_string(),
    ];
    let mut out = String::from("<h3>Release rules</h3><ul class=\"methods-list\">");
    for item in items {
        out += &format!("<li>{item}</li>");
    }
    out + "</ul>"
}

fn report_settings(settings: &Settings) -> String {
    let plan = settings.plan;
    let mut table = Table::new("Settings of this report")
        .text("Setting")
        .text("Value");
    table.row(vec![
        "Reader".into(),
        match &plan.reader {
            Reader::Network { principal, .. } => format!("{principal} (network report)"),
            Reader::Facility { id, .. } => format!("facility {id} (facility report)"),
        },
    ]);
    table.row(vec![
        "Period".into(),
        format!("{} to {}", plan.month_from, plan.month_to),
    ]);
    table.row(vec![
        "Trend limits".into(),
        if plan.laney {
            "Laney-adjusted (u′-chart)".into()
        } else {
            "3-sigma Poisson (u-chart)".into()
        },
    ]);
    table.row(vec![
        "Small-cell threshold k".into(),
        settings
            .min_cell_count
            .map_or("not reported by any call of this report".into(), |k| {
                k.to_string()
            }),
    ]);
    table.row(vec![
        "Calls".into(),
        format!("{} made, {} failed", settings.calls.0, settings.calls.1),
    ]);
    table.row(vec![
        "Made by".into(),
        format!("psonet {}", env!("CARGO_PKG_VERSION")),
    ]);
    format!("<h3>This report</h3>{}", table.html("summary"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerators_read_as_words() {
        let filter = pb::AggregateFilter {
            categories: vec![pb::EventCategory::Medication as i32],
            ncc_merp: vec![pb::NccMerpCategory::E as i32, pb::NccMerpCategory::F as i32],
            ..Default::default()
        };
        assert_eq!(
            numerator_words(Some(&filter)),
            "reports with category medication; NCC MERP category E, F"
        );
        assert_eq!(
            numerator_words(Some(&pb::AggregateFilter::default())),
            "every report"
        );
    }
}
