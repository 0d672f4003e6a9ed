//! A metric's network benchmark (`NetworkBenchmark` with a metric): the pooled rate with its
//! exact interval, the distribution of facility rates, and the funnel plot.

use super::figures::{self, amount, rate};
use super::withheld;
use crate::render::thousands;
use crate::report::html::esc;
use crate::report::redact::Redactor;
use psonet_core::pb;
use psonet_gateway::metric::catalogue::denominator_label;

/// The benchmark part of a metric's page.
pub fn render(response: &pb::NetworkBenchmarkResponse, redactor: &Redactor) -> String {
    let mut out = String::from("<h3>Pooled rate</h3>");
    let Some(bench) = &response.metric else {
        return out + "<p class=\"note\">The gateway answered without the metric's benchmark.</p>";
    };
    if !bench.released {
        out += &withheld("The network figures are", &bench.withheld_reason, redactor);
        return out + &figures::excluded(bench, redactor);
    }
    let metric = bench.metric.clone().unwrap_or_default();
    let ci = bench.pooled_interval_95.unwrap_or_default();
    out += &format!(
        "<p class=\"headline\"><span class=\"figure\">{}</span> {} <span class=\"interval\">(exact \
         95% confidence interval {} to {})</span></p>",
        rate(bench.pooled_rate),
        esc(&metric.unit),
        rate(ci.lower),
        rate(ci.upper)
    );
    out += &format!(
        "<p>{} events over {} {} at {} facilities, {} to {}: the pooled rate is all events over \
         all exposure, not an average of facility rates.</p>",
        thousands(bench.events),
        amount(bench.exposure),
        esc(&denominator_label(&metric)),
        bench.contributing_facilities,
        esc(&bench.month_from),
        esc(&bench.month_to)
    );
    out += &figures::excluded(bench, redactor);
    out += "<h3>Distribution of facility rates</h3>";
    out += &figures::distribution(bench);
    out += "<h3>Funnel plot</h3>";
    out += &figures::funnel(bench);
    out
}
