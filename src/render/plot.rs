//! SVG plots of benchmarks for people: the funnel plot of a metric and a control chart.
//!
//! Both are drawn with plotters' SVG backend only (no fonts or bitmaps to ship): a title, axes
//! with units, the target or centre line, the limit lines and labelled points, so a chart
//! stands on its own when pasted into a report.

use super::thousands;
use anyhow::{Context, Result, anyhow};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use psonet_core::pb;
use psonet_gateway::metric::catalogue::denominator_label;
use std::path::Path;

const SIZE: (u32, u32) = (1000, 640);
const ALERT: RGBColor = RGBColor(230, 140, 0);
const ALARM: RGBColor = RGBColor(200, 30, 30);
const POINT: RGBColor = RGBColor(30, 80, 180);

fn rate_label(metric: &pb::Metric) -> String {
    format!("{} {}", metric.name, metric.unit)
}

fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

/// Draws the funnel plot of `bench` into `path`.
pub fn funnel(bench: &pb::MetricBenchmark, path: &Path) -> Result<()> {
    let metric = bench.metric.clone().unwrap_or_default();
    if !bench.released {
        return Err(anyhow!("no funnel to draw: {}", bench.withheld_reason));
    }
    if bench.funnel.is_empty() {
        return Err(anyhow!(
            "no funnel to draw: {}",
            bench.facilities_withheld_reason
        ));
    }
    let max_x = bench.funnel_curve.last().map_or(10.0, |c| c.exposure);
    let limits = |c: &pb::FunnelCurvePoint| c.limits.unwrap_or_default();
    let top = bench
        .funnel
        .iter()
        .map(|p| p.rate.max(p.limits.unwrap_or_default().upper_998))
        .fold(bench.pooled_rate, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let title = format!(
        "Funnel plot: {} ({} to {}), {} facilities",
        metric.name,
        bench.month_from,
        bench.month_to,
        bench.funnel.len()
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max_x, 0.0..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_labels(10)
        .x_label_formatter(&|x| thousands(x.max(0.0).round() as u64))
        .x_desc(denominator_label(&metric))
        .y_desc(rate_label(&metric))
        .draw()
        .map_err(plot_error)?;
    let clamp = |v: f64| v.clamp(0.0, top);
    let curve = |pick: fn(&pb::FunnelLimits) -> f64| -> Vec<(f64, f64)> {
        bench
            .funnel_curve
            .iter()
            .map(|c| (c.exposure, clamp(pick(&limits(c)))))
            .collect()
    };
    chart
        .draw_series(LineSeries::new(
            [(0.0, bench.pooled_rate), (max_x, bench.pooled_rate)],
            BLACK.stroke_width(2),
        ))
        .map_err(plot_error)?
        .label(format!(
            "target: network pooled rate {:.2} ({} facilities)",
            bench.pooled_rate, bench.contributing_facilities
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    for (pick, color, label) in [
        (
            (|l: &pb::FunnelLimits| l.upper_95) as fn(&pb::FunnelLimits) -> f64,
            ALERT,
            "95% limits",
        ),
        (|l| l.lower_95, ALERT, ""),
        (|l| l.upper_998, ALARM, "99.8% limits"),
        (|l| l.lower_998, ALARM, ""),
    ] {
        let series = chart
            .draw_series(DashedLineSeries::new(
                curve(pick),
                8,
                4,
                color.stroke_width(2),
            ))
            .map_err(plot_error)?;
        if !label.is_empty() {
            series.label(label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    let tau2 = bench.overdispersion.map_or(0.0, |o| o.tau2);
    if tau2 > 0.0 {
        let adjusted = |pick: fn(&pb::FunnelLimits) -> f64| -> Vec<(f64, f64)> {
            bench
                .funnel_curve
                .iter()
                .map(|c| {
                    (
                        c.exposure,
                        clamp(pick(&c.adjusted_limits.unwrap_or_default())),
                    )
                })
                .collect()
        };
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(LineSeries::new(
                adjusted(|l| l.upper_998),
                grey.stroke_width(1),
            ))
            .map_err(plot_error)?
            .label("99.8% limits adjusted for over-dispersion (random effects)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1))
            });
        chart
            .draw_series(LineSeries::new(
                adjusted(|l| l.lower_998),
                grey.stroke_width(1),
            ))
            .map_err(plot_error)?;
    }
    chart
        .draw_series(bench.funnel.iter().map(|p| {
            let color = match pb::FunnelPosition::try_from(p.position) {
                Ok(pb::FunnelPosition::Above998 | pb::FunnelPosition::Below998) => ALARM,
                Ok(pb::FunnelPosition::Above95 | pb::FunnelPosition::Below95) => ALERT,
                _ => POINT,
            };
            EmptyElement::at((p.exposure, p.rate))
                + Circle::new((0, 0), 5, color.filled())
                + Text::new(p.facility.clone(), (7, -14), ("sans-serif", 13))
        }))
        .map_err(plot_error)?;
    finish(&mut chart, &root, SeriesLabelPosition::UpperRight, path)
}

/// Draws the control chart `chart` of `metric` titled `title` into `path`.
pub fn control_chart(
    title: &str,
    metric: &pb::Metric,
    chart_data: &pb::ControlChart,
    path: &Path,
) -> Result<()> {
    let points: Vec<(usize, &pb::ChartPoint)> = chart_data
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.released)
        .collect();
    if points.is_empty() {
        return Err(anyhow!("no released month to draw"));
    }
    let months: Vec<String> = chart_data.points.iter().map(|p| p.month.clone()).collect();
    let signalled = |month: &str| {
        chart_data
            .signals
            .iter()
            .any(|s| s.first_month.as_str() <= month && month <= s.last_month.as_str())
    };
    let top = points
        .iter()
        .map(|(_, p)| p.rate.max(p.upper))
        .fold(chart_data.centre, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let last = (months.len().max(2) - 1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..last + 0.5, 0.0..top)
        .map_err(plot_error)?;
    let label_months = months.clone();
    chart
        .configure_mesh()
        .x_labels(months.len().min(24))
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                label_months.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("month")
        .y_desc(rate_label(metric))
        .draw()
        .map_err(plot_error)?;
    let line = |pick: fn(&pb::ChartPoint) -> f64| -> Vec<(f64, f64)> {
        points.iter().map(|(i, p)| (*i as f64, pick(p))).collect()
    };
    chart
        .draw_series(LineSeries::new(
            [(0.0, chart_data.centre), (last, chart_data.centre)],
            BLACK.stroke_width(2),
        ))
        .map_err(plot_error)?
        .label(format!("centre {:.2}", chart_data.centre))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    chart
        .draw_series(DashedLineSeries::new(
            line(|p| p.upper),
            8,
            4,
            ALARM.stroke_width(2),
        ))
        .map_err(plot_error)?
        .label("3-sigma limits")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ALARM.stroke_width(2)));
    chart
        .draw_series(DashedLineSeries::new(
            line(|p| p.lower),
            8,
            4,
            ALARM.stroke_width(2),
        ))
        .map_err(plot_error)?;
    chart
        .draw_series(LineSeries::new(line(|p| p.rate), POINT.stroke_width(1)))
        .map_err(plot_error)?
        .label("rate (red: special-cause signal)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], POINT.stroke_width(2)));
    chart
        .draw_series(points.iter().map(|(i, p)| {
            let color = if signalled(&p.month) { ALARM } else { POINT };
            EmptyElement::at((*i as f64, p.rate))
                + Circle::new((0, 0), 5, color.filled())
                + Text::new(format!("{:.2}", p.rate), (6, -16), ("sans-serif", 12))
        }))
        .map_err(plot_error)?;
    finish(&mut chart, &root, SeriesLabelPosition::UpperLeft, path)
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws the legend at `position` and writes the file.
fn finish<'a>(
    chart: &mut Chart<'a, 'a>,
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    position: SeriesLabelPosition,
    path: &Path,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present()
        .map_err(plot_error)
        .with_context(|| format!("writing {}", path.display()))
}
