//! The SVG chart of a facility's before/after: its monthly rate, the interrupted time series'
//! fitted segments, the counterfactual the pre-start trend projects, and the start month
//! marked — so the level change can be seen, not only read.

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use psonet_core::pb;
use std::path::Path;

const SIZE: (u32, u32) = (1000, 640);
const POINT: RGBColor = RGBColor(30, 80, 180);
const FIT: RGBColor = RGBColor(200, 30, 30);
const COUNTERFACTUAL: RGBColor = RGBColor(120, 120, 120);

fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

/// The monthly rate of a series month, per the metric's multiplier.
fn rate(m: &pb::EffectMonth, multiplier: f64) -> f64 {
    if m.exposure == 0 {
        0.0
    } else {
        m.events as f64 / m.exposure as f64 * multiplier
    }
}

/// Draws `r` into `path`.
pub fn effect(r: &pb::InterventionEffectResponse, path: &Path) -> Result<()> {
    let metric = r.metric.clone().unwrap_or_default();
    let intervention = r.intervention.clone().unwrap_or_default();
    if r.series.is_empty() {
        return Err(anyhow!("no month with exposure to draw"));
    }
    let months: Vec<&str> = r.series.iter().map(|m| m.month.as_str()).collect();
    let start = months
        .iter()
        .position(|m| *m == intervention.start_month)
        .map_or(0.0, |i| i as f64);
    let rates: Vec<f64> = r
        .series
        .iter()
        .map(|m| rate(m, metric.multiplier))
        .collect();
    let top = r
        .series
        .iter()
        .map(|m| m.fitted_rate.max(m.counterfactual_rate))
        .chain(rates.iter().copied())
        .fold(0.0, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let title = format!(
        "{}: {} before and after {} ({})",
        intervention.intervention_id,
        metric.name,
        intervention.practice_code,
        intervention.start_month
    );
    let last = (months.len().max(2) - 1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..last + 0.5, 0.0..top.max(1e-9))
        .map_err(plot_error)?;
    let labels: Vec<String> = months.iter().map(|m| m.to_string()).collect();
    chart
        .configure_mesh()
        .x_labels(labels.len().min(13))
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("month")
        .y_desc(format!("{} {}", metric.name, metric.unit))
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(LineSeries::new(
            [(start, 0.0), (start, top)],
            BLACK.stroke_width(1),
        ))
        .map_err(plot_error)?
        .label(format!("start month {}", intervention.start_month))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    chart
        .draw_series(
            rates
                .iter()
                .enumerate()
                .map(|(i, v)| Circle::new((i as f64, *v), 4, POINT.filled())),
        )
        .map_err(plot_error)?
        .label("monthly rate")
        .legend(|(x, y)| Circle::new((x + 10, y), 4, POINT.filled()));
    if r.its.is_some() {
        let segment = |before: bool| -> Vec<(f64, f64)> {
            r.series
                .iter()
                .enumerate()
                .filter(|(i, _)| ((*i as f64) < start) == before)
                .map(|(i, m)| (i as f64, m.fitted_rate))
                .collect()
        };
        chart
            .draw_series(LineSeries::new(segment(true), FIT.stroke_width(2)))
            .map_err(plot_error)?
            .label("fitted segments (segmented Poisson)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], FIT.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(segment(false), FIT.stroke_width(2)))
            .map_err(plot_error)?;
        let counterfactual: Vec<(f64, f64)> = r
            .series
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as f64 >= start)
            .map(|(i, m)| (i as f64, m.counterfactual_rate))
            .collect();
        chart
            .draw_series(DashedLineSeries::new(
                counterfactual,
                8,
                4,
                COUNTERFACTUAL.stroke_width(2),
            ))
            .map_err(plot_error)?
            .label("pre-start trend continued")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], COUNTERFACTUAL.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present()
        .map_err(plot_error)
        .with_context(|| format!("writing {}", path.display()))
}
