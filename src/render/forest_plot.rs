//! The forest plot of a practice effect: each facility's rate ratio with its 95% interval (the
//! square's size its weight), the adopters' and non-adopters' pooled ratios as diamonds, and
//! the line of no effect — on a log axis, where ratios of 0.5 and 2 are equally far from 1.

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use psonet_core::pb;
use std::path::Path;

const ADOPTER: RGBColor = RGBColor(30, 80, 180);
const OTHER: RGBColor = RGBColor(120, 120, 120);
const POOLED: RGBColor = RGBColor(200, 30, 30);

fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

/// One row of the plot: label, ratio, interval, weight (0 for a pooled row), colour.
struct Row {
    label: String,
    ratio: f64,
    interval: pb::Interval,
    weight: f64,
    color: RGBColor,
}

fn rows(r: &pb::PracticeEffectResponse) -> Vec<Row> {
    let mut out = Vec::new();
    for (pool, name, color) in [
        (&r.adopters, "adopters", ADOPTER),
        (&r.non_adopters, "non-adopters", OTHER),
    ] {
        let Some(p) = pool else { continue };
        for s in &p.studies {
            out.push(Row {
                label: format!("{} ({name})", s.facility),
                ratio: s.ratio,
                interval: s.interval.unwrap_or_default(),
                weight: s.weight,
                color,
            });
        }
        out.push(Row {
            label: format!("pooled {name} (HK 95%)"),
            ratio: p.ratio,
            interval: p.interval.unwrap_or_default(),
            weight: 0.0,
            color: POOLED,
        });
    }
    out
}

/// Draws the forest plot of `r` for `practice` into `path`.
pub fn forest(r: &pb::PracticeEffectResponse, practice: &str, path: &Path) -> Result<()> {
    let svg = forest_svg(r, practice)?;
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

/// The forest plot of `r` for `practice` as SVG text, with a `<title>` and a `<desc>` for
/// screen readers (the report inlines it).
pub fn forest_svg(r: &pb::PracticeEffectResponse, practice: &str) -> Result<String> {
    let mut svg = String::new();
    draw(r, practice, SVGBackend::with_string(&mut svg, size(r)))?;
    let metric = r.metric.clone().unwrap_or_default();
    let title = format!("{practice}: {} rate ratio after vs before", metric.name);
    let desc = match (&r.adopters, &r.non_adopters) {
        (Some(a), Some(n)) => format!(
            "Each facility's rate ratio after/before with its 95% interval; adopters pooled {:.2} \
             ({:.2} to {:.2}), non-adopters pooled {:.2} ({:.2} to {:.2}).",
            a.ratio,
            a.interval.unwrap_or_default().lower,
            a.interval.unwrap_or_default().upper,
            n.ratio,
            n.interval.unwrap_or_default().lower,
            n.interval.unwrap_or_default().upper
        ),
        (Some(a), None) => format!(
            "Each adopter's rate ratio after/before with its 95% interval; pooled {:.2} ({:.2} to \
             {:.2}).",
            a.ratio,
            a.interval.unwrap_or_default().lower,
            a.interval.unwrap_or_default().upper
        ),
        _ => "Each facility's rate ratio after/before with its 95% interval.".into(),
    };
    Ok(crate::render::plot::titled(svg, &title, &desc))
}

/// The plot's size: room for every row.
fn size(r: &pb::PracticeEffectResponse) -> (u32, u32) {
    (1000, 160 + 30 * rows(r).len() as u32)
}

/// Draws the plot of `r` on `backend`.
fn draw<DB: DrawingBackend>(
    r: &pb::PracticeEffectResponse,
    practice: &str,
    backend: DB,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let rows = rows(r);
    if rows.is_empty() {
        return Err(anyhow!("nothing to draw"));
    }
    let metric = r.metric.clone().unwrap_or_default();
    let (lo, hi) = rows.iter().fold((1.0f64, 1.0f64), |(lo, hi), row| {
        (lo.min(row.interval.lower), hi.max(row.interval.upper))
    });
    let (lo, hi) = ((lo * 0.9).max(1e-3).ln(), (hi * 1.1).ln());
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let n = rows.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{practice}: {} rate ratio after vs before", metric.name),
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(260)
        .build_cartesian_2d(lo..hi, -0.5..n - 0.5)
        .map_err(plot_error)?;
    let labels: Vec<String> = rows.iter().rev().map(|r| r.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows.len())
        .y_label_formatter(&move |y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|x| format!("{:.2}", x.exp()))
        .x_desc(format!(
            "rate ratio after/before ({}, log scale)",
            metric.unit
        ))
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, -0.5), (0.0, n - 0.5)],
            BLACK.stroke_width(1),
        ))
        .map_err(plot_error)?
        .label("no effect (1.0)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    for (i, row) in rows.iter().enumerate() {
        let y = n - 1.0 - i as f64;
        let (l, u) = (row.interval.lower.max(1e-3).ln(), row.interval.upper.ln());
        chart
            .draw_series(LineSeries::new([(l, y), (u, y)], row.color.stroke_width(2)))
            .map_err(plot_error)?;
        let x = row.ratio.ln();
        if row.weight > 0.0 {
            let size = (4.0 + 10.0 * row.weight.sqrt()) as i32;
            chart
                .draw_series([EmptyElement::at((x, y))
                    + Rectangle::new([(-size, -size), (size, size)], row.color.filled())])
                .map_err(plot_error)?;
        } else {
            chart
                .draw_series([EmptyElement::at((x, y))
                    + Polygon::new(vec![(-12, 0), (0, -8), (12, 0), (0, 8)], POOLED.filled())])
                .map_err(plot_error)?;
        }
    }
    for (label, color) in [
        ("adopter (square: weight)", ADOPTER),
        ("non-adopter", OTHER),
    ] {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(plot_error)?
            .label(label)
            .legend(move |(x, y)| {
                Rectangle::new([(x + 4, y - 5), (x + 14, y + 5)], color.filled())
            });
    }
    chart
        .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
        .map_err(plot_error)?
        .label("pooled (diamond), Hartung-Knapp 95%")
        .legend(|(x, y)| {
            Polygon::new(
                vec![(x, y), (x + 8, y - 6), (x + 16, y), (x + 8, y + 6)],
                POOLED.filled(),
            )
        });
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}
