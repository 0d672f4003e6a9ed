//! A metric's monthly network trend (`Trend`): the u-chart with its signals.

use super::figures;
use crate::report::redact::Redactor;
use psonet_core::pb;

/// The trend part of a metric's page.
pub fn render(response: &pb::TrendResponse, redactor: &Redactor) -> String {
    let metric = response.metric.clone().unwrap_or_default();
    let chart = response.chart.clone().unwrap_or_default();
    let title = format!("{}: monthly network rate", metric.name);
    format!(
        "<h3>Monthly trend</h3>{}",
        figures::control_chart(&title, &metric, &chart, true, redactor)
    )
}
