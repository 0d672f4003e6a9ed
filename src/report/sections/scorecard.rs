//! A facility's scorecard for one metric (`FacilityScorecard`): its own rate with the exact
//! interval against its peers (percentile rank, observed/expected, funnel position, flags),
//! where it sits in the funnel and among the peers' rates, and its own monthly trend. The
//! facility is named; its peers appear only as the pseudonyms the gateway gave them.

use super::figures::{self, amount, position_words, rate};
use super::withheld;
use crate::render::thousands;
use crate::report::html::{Table, esc};
use crate::report::redact::Redactor;
use psonet_core::pb;
use psonet_gateway::metric::catalogue::denominator_label;

/// A facility's page for one metric.
pub fn render(card: &pb::FacilityScorecardResponse, redactor: &Redactor) -> String {
    let peers = card.peers.clone().unwrap_or_default();
    let metric = peers.metric.clone().unwrap_or_default();
    let ci = card.rate_interval_95.unwrap_or_default();
    let mut out = format!(
        "<h3>Your rate</h3><p class=\"headline\"><span class=\"figure\">{}</span> {} <span \
         class=\"interval\">(exact 95% confidence interval {} to {})</span></p><p>{} events \
         over {} {} at {}, {} to {}.</p>",
        rate(card.rate),
        esc(&metric.unit),
        rate(ci.lower),
        rate(ci.upper),
        thousands(card.events),
        amount(card.exposure),
        esc(&denominator_label(&metric)),
        esc(&card.facility_id),
        esc(&peers.month_from),
        esc(&peers.month_to)
    );
    if peers.released {
        let mut table = Table::new(format!("{}: you against your peers", metric.name))
            .text("Measure")
            .text("Value");
        table.row(vec![
            "Peers' pooled rate".into(),
            format!(
                "{} {} over {} facilities (you included)",
                rate(peers.pooled_rate),
                metric.unit,
                peers.contributing_facilities
            ),
        ]);
        table.row(vec![
            "Your percentile rank".into(),
            format!(
                "{:.0} of 100 (100 = best; {} is better for this metric)",
                card.percentile_rank,
                if metric.higher_is_better {
                    "higher"
                } else {
                    "lower"
                }
            ),
        ]);
        table.row(vec![
            "Your funnel position".into(),
            position_words(card.funnel_position).into(),
        ]);
        if let Some(oe) = &card.observed_expected {
            let i = oe.interval_95.unwrap_or_default();
            table.row(vec![
                "Observed / expected from your peers' rates by unit type".into(),
                format!(
                    "{} / {:.1} = {:.2} (mid-P 95% interval {:.2} to {:.2}, p = {:.3})",
                    oe.observed, oe.expected, oe.ratio, i.lower, i.upper, oe.p_value
                ),
            ]);
        }
        out += &table.html("summary");
    }
    if !card.flags.is_empty() {
        out += "<ul class=\"flags\">";
        for flag in &card.flags {
            out += &format!("<li>{}</li>", esc(&redactor.clean(flag)));
        }
        out += "</ul>";
    }
    if peers.released {
        out += "<h3>Where you sit in the funnel</h3>";
        out += &figures::funnel(&peers);
        out += "<h3>Your rate among your peers' rates</h3>";
        out += &figures::distribution(&peers);
    } else {
        out += &withheld("The peer comparison is", &peers.withheld_reason, redactor);
    }
    out += &figures::excluded(&peers, redactor);
    let trend = card.trend.clone().unwrap_or_default();
    let title = format!("{}: your monthly rate", metric.name);
    out += "<h3>Your monthly trend</h3>";
    out += &figures::control_chart(&title, &metric, &trend, false, redactor);
    out
}
