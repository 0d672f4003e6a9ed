//! SVG plots of benchmarks for people: a metric's funnel plot, the distribution of facility
//! rates, and a control chart.
//!
//! Each is drawn with plotters' SVG backend only (no fonts or bitmaps to ship) into a string, so
//! `psonet benchmark --plot` writes it to a file and `psonet report` inlines it. Every chart
//! stands on its own: a `<title>` and `<desc>` for screen readers, a caption, axes with units, a
//! legend, and series that differ by line style or marker shape as well as by colour, so a
//! black-and-white printout reads the same.

use super::palette::{ALARM, ALERT, Colour, GREY, INK, POINT};
use super::{escape, thousands};
use anyhow::{Context, Result, anyhow};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DynElement;
use plotters::prelude::*;
use psonet_core::pb;
use psonet_gateway::metric::catalogue::denominator_label;
use std::path::Path;

const SIZE: (u32, u32) = (900, 560);
const CAPTION: u32 = 22;
const LABEL: u32 = 15;
const POINT_LABEL: u32 = 13;
/// Room above the highest point or limit, so the legend in a top corner covers no data.
const HEADROOM: f64 = 1.5;

/// A rate axis label with its unit, e.g. "Falls per 1,000 patient days".
fn rate_label(metric: &pb::Metric) -> String {
    format!("{} {}", metric.name, metric.unit)
}

fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

/// A line's look: colour, width and dash pattern (dash, gap in pixels; `None` is solid).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Line {
    colour: Colour,
    width: u32,
    dash: Option<(u32, u32)>,
}

impl Line {
    const fn solid(colour: Colour, width: u32) -> Self {
        Self {
            colour,
            width,
            dash: None,
        }
    }

    const fn dashed(colour: Colour, width: u32, dash: u32, gap: u32) -> Self {
        Self {
            colour,
            width,
            dash: Some((dash, gap)),
        }
    }
}

const TARGET: Line = Line::solid(INK, 2);
const SERIES: Line = Line::solid(POINT, 2);
const LIMIT_95: Line = Line::dashed(ALERT, 2, 10, 6);
const LIMIT_998: Line = Line::dashed(ALARM, 3, 3, 4);
const ADJUSTED: Line = Line::dashed(GREY, 2, 18, 6);
const MEDIAN: Line = Line::dashed(POINT, 2, 14, 5);
const OUTER: Line = Line::dashed(GREY, 2, 3, 4);
const CONTROL_LIMIT: Line = Line::dashed(ALARM, 2, 10, 6);

/// Every dashed line style. Plotters draws a dashed series as one element per dash (hundreds
/// per curve), so a dashed line is drawn solid in a stand-in colour — `#0101NN`, its place in
/// this list — and [`dashes`] rewrites that stroke to the real colour with `stroke-dasharray`.
const DASHED: [Line; 6] = [LIMIT_95, LIMIT_998, ADJUSTED, MEDIAN, OUTER, CONTROL_LIMIT];

impl Line {
    /// The colour plotters draws it in: its own, or a dashed style's stand-in.
    fn drawn(self) -> plotters::style::RGBColor {
        match DASHED.iter().position(|d| *d == self) {
            Some(i) => plotters::style::RGBColor(1, 1, i as u8 + 1),
            None => self.colour.rgb(),
        }
    }
}

/// `svg` with each dashed style's stand-in stroke replaced by its colour and dash pattern.
fn dashes(svg: String) -> String {
    DASHED.iter().enumerate().fold(svg, |svg, (i, line)| {
        let (dash, gap) = line.dash.unwrap_or((1, 0));
        svg.replace(
            &format!("stroke=\"#0101{:02X}\"", i + 1),
            &format!(
                "stroke=\"{}\" stroke-dasharray=\"{dash} {gap}\"",
                line.colour.hex().to_uppercase()
            ),
        )
    })
}

/// A point's look; shapes differ so a printout without colour still tells them apart.
#[derive(Debug, Clone, Copy)]
enum Marker {
    /// A filled circle.
    Dot(Colour),
    /// A filled triangle.
    Triangle(Colour),
    /// A heavy cross.
    Cross(Colour),
    /// A hollow ring around another marker (the calling facility).
    Ring(Colour),
}

impl Marker {
    fn legend<'b>(self, (x, y): (i32, i32)) -> DynElement<'static, SVGBackend<'b>, (i32, i32)> {
        let at = (x + 14, y);
        match self {
            Marker::Dot(c) => Circle::new(at, 5, c.rgb().filled()).into_dyn(),
            Marker::Triangle(c) => TriangleMarker::new(at, 7, c.rgb().filled()).into_dyn(),
            Marker::Cross(c) => Cross::new(at, 6, c.rgb().stroke_width(3)).into_dyn(),
            Marker::Ring(c) => Circle::new(at, 9, c.rgb().stroke_width(2)).into_dyn(),
        }
    }
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws `points` joined in `line`'s style, with a legend entry when `label` is given.
fn draw_line<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    line: Line,
    points: Vec<(f64, f64)>,
    label: Option<String>,
) -> Result<()> {
    let style = line.drawn().stroke_width(line.width);
    let anno = chart
        .draw_series(LineSeries::new(points, style))
        .map_err(plot_error)?;
    if let Some(label) = label {
        anno.label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 28, y)], style));
    }
    Ok(())
}

/// Draws a marker at each of `points`, with a legend entry when `label` is given and there is
/// a point to draw.
fn draw_markers<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    marker: Marker,
    points: &[(f64, f64)],
    label: Option<String>,
) -> Result<()> {
    if points.is_empty() {
        return Ok(());
    }
    let at = points.iter().copied();
    let anno = match marker {
        Marker::Dot(c) => chart.draw_series(at.map(|p| Circle::new(p, 5, c.rgb().filled()))),
        Marker::Triangle(c) => {
            chart.draw_series(at.map(|p| TriangleMarker::new(p, 7, c.rgb().filled())))
        }
        Marker::Cross(c) => {
            chart.draw_series(at.map(|p| Cross::new(p, 6, c.rgb().stroke_width(3))))
        }
        Marker::Ring(c) => {
            chart.draw_series(at.map(|p| Circle::new(p, 9, c.rgb().stroke_width(2))))
        }
    }
    .map_err(plot_error)?;
    if let Some(label) = label {
        anno.label(label).legend(move |p| marker.legend(p));
    }
    Ok(())
}

/// Writes `text` beside each point, `offset` pixels away.
fn draw_labels<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    labels: impl IntoIterator<Item = ((f64, f64), String)>,
    offset: (i32, i32),
) -> Result<()> {
    chart
        .draw_series(labels.into_iter().map(|(at, text)| {
            EmptyElement::at(at) + Text::new(text, offset, ("sans-serif", POINT_LABEL))
        }))
        .map_err(plot_error)?;
    Ok(())
}

/// Where a funnel position puts a point: inside, beyond the 95% limits, beyond 99.8%.
fn position_marker(position: i32) -> Marker {
    match pb::FunnelPosition::try_from(position) {
        Ok(pb::FunnelPosition::Above998 | pb::FunnelPosition::Below998) => Marker::Cross(ALARM),
        Ok(pb::FunnelPosition::Above95 | pb::FunnelPosition::Below95) => Marker::Triangle(ALERT),
        _ => Marker::Dot(POINT),
    }
}

/// A point's label: a peer's pseudonym, or the calling facility's id marked as such.
fn facility_label(p: &pb::FunnelPoint) -> String {
    if p.is_caller {
        format!("{} (you)", p.facility)
    } else {
        p.facility.clone()
    }
}

/// Draws the funnel plot of `bench` into `path`.
pub fn funnel(bench: &pb::MetricBenchmark, path: &Path) -> Result<()> {
    write(path, &funnel_svg(bench)?)
}

/// The funnel plot of `bench` as an SVG document.
pub fn funnel_svg(bench: &pb::MetricBenchmark) -> Result<String> {
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
    let top = bench
        .funnel
        .iter()
        .map(|p| p.rate.max(p.limits.unwrap_or_default().upper_998))
        .fold(bench.pooled_rate, f64::max)
        * HEADROOM;
    let title = format!(
        "Funnel plot: {} ({} to {}), {} facilities",
        metric.name,
        bench.month_from,
        bench.month_to,
        bench.funnel.len()
    );
    let outside = bench
        .funnel
        .iter()
        .filter(|p| !matches!(position_marker(p.position), Marker::Dot(_)))
        .count();
    let desc = format!(
        "Each facility's rate against its exposure ({}), with the pooled rate {:.2} {} and exact \
         Poisson 95% and 99.8% limits; {outside} of {} facilities fall outside the 95% limits.",
        denominator_label(&metric),
        bench.pooled_rate,
        metric.unit,
        bench.funnel.len()
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", CAPTION))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(75)
            // Room on the right for the labels of the largest facilities.
            .build_cartesian_2d(0.0..max_x * 1.12, 0.0..top)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .max_light_lines(0)
            .x_labels(8)
            .x_label_formatter(&|x| thousands(x.max(0.0).round() as u64))
            .x_desc(format!("exposure ({})", denominator_label(&metric)))
            .y_desc(rate_label(&metric))
            .label_style(("sans-serif", LABEL))
            .axis_desc_style(("sans-serif", LABEL))
            .draw()
            .map_err(plot_error)?;
        let clamp = |v: f64| v.clamp(0.0, top);
        let curve = |adjusted: bool, pick: fn(&pb::FunnelLimits) -> f64| -> Vec<(f64, f64)> {
            bench
                .funnel_curve
                .iter()
                .map(|c| {
                    let limits = if adjusted {
                        c.adjusted_limits
                    } else {
                        c.limits
                    };
                    (c.exposure, clamp(pick(&limits.unwrap_or_default())))
                })
                .collect()
        };
        draw_line(
            &mut chart,
            TARGET,
            vec![(0.0, bench.pooled_rate), (max_x, bench.pooled_rate)],
            Some(format!(
                "target: network pooled rate {:.2} ({} facilities)",
                bench.pooled_rate, bench.contributing_facilities
            )),
        )?;
        draw_line(
            &mut chart,
            LIMIT_95,
            curve(false, |l| l.upper_95),
            Some("95% limits".into()),
        )?;
        draw_line(&mut chart, LIMIT_95, curve(false, |l| l.lower_95), None)?;
        draw_line(
            &mut chart,
            LIMIT_998,
            curve(false, |l| l.upper_998),
            Some("99.8% limits".into()),
        )?;
        draw_line(&mut chart, LIMIT_998, curve(false, |l| l.lower_998), None)?;
        if bench.overdispersion.is_some_and(|o| o.tau2 > 0.0) {
            draw_line(
                &mut chart,
                ADJUSTED,
                curve(true, |l| l.upper_998),
                Some("99.8% limits adjusted for over-dispersion".into()),
            )?;
            draw_line(&mut chart, ADJUSTED, curve(true, |l| l.lower_998), None)?;
        }
        for (marker, label) in [
            (Marker::Dot(POINT), "facility within the 95% limits"),
            (Marker::Triangle(ALERT), "beyond a 95% limit"),
            (Marker::Cross(ALARM), "beyond a 99.8% limit"),
        ] {
            let points: Vec<(f64, f64)> = bench
                .funnel
                .iter()
                .filter(|p| {
                    std::mem::discriminant(&position_marker(p.position))
                        == std::mem::discriminant(&marker)
                })
                .map(|p| (p.exposure, p.rate))
                .collect();
            draw_markers(&mut chart, marker, &points, Some(label.into()))?;
        }
        let callers: Vec<(f64, f64)> = bench
            .funnel
            .iter()
            .filter(|p| p.is_caller)
            .map(|p| (p.exposure, p.rate))
            .collect();
        draw_markers(
            &mut chart,
            Marker::Ring(INK),
            &callers,
            Some("your facility".into()),
        )?;
        if bench.funnel.len() <= 40 {
            let labels = bench
                .funnel
                .iter()
                .map(|p| ((p.exposure, p.rate), facility_label(p)));
            draw_labels(&mut chart, labels, (9, -16))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(plot_error)?;
    }
    Ok(titled(dashes(svg), &title, &desc))
}

/// The distribution of the facility rates in `bench` (one point per facility, ranked, with the
/// percentiles and the pooled rate as lines) as an SVG document.
pub fn distribution_svg(bench: &pb::MetricBenchmark) -> Result<String> {
    let metric = bench.metric.clone().unwrap_or_default();
    let Some(d) = bench.distribution.filter(|_| bench.released) else {
        return Err(anyhow!(
            "no distribution to draw: {}",
            bench.withheld_reason
        ));
    };
    let mut ranked: Vec<&pb::FunnelPoint> = bench.funnel.iter().collect();
    ranked.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let n = ranked.len().max(1);
    let right = ranked
        .iter()
        .map(|p| p.rate)
        .fold(d.p90.max(bench.pooled_rate), f64::max)
        * 1.15;
    let title = format!(
        "Facility rates: {} ({} to {}), {} facilities",
        metric.name, bench.month_from, bench.month_to, bench.contributing_facilities
    );
    let desc = format!(
        "Each facility's rate ({}), lowest first, with the 10th, 25th, 50th, 75th and 90th \
         percentiles ({:.2}, {:.2}, {:.2}, {:.2}, {:.2}) and the pooled rate {:.2}.",
        metric.unit, d.p10, d.p25, d.p50, d.p75, d.p90, bench.pooled_rate
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let top = n as f64 + 0.5;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", CAPTION))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d(0.0..right, 0.5..top)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .max_light_lines(0)
            .x_labels(8)
            .y_labels(n.min(20))
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 1e-6 && i >= 1.0 {
                    format!("{i}")
                } else {
                    String::new()
                }
            })
            .x_desc(rate_label(&metric))
            .y_desc("facilities, ranked by rate (1 = lowest)")
            .label_style(("sans-serif", LABEL))
            .axis_desc_style(("sans-serif", LABEL))
            .draw()
            .map_err(plot_error)?;
        let vertical = |x: f64| vec![(x, 0.5), (x, top)];
        draw_line(
            &mut chart,
            TARGET,
            vertical(bench.pooled_rate),
            Some(format!("pooled rate {:.2}", bench.pooled_rate)),
        )?;
        draw_line(
            &mut chart,
            MEDIAN,
            vertical(d.p50),
            Some(format!("median {:.2}", d.p50)),
        )?;
        draw_line(
            &mut chart,
            LIMIT_95,
            vertical(d.p25),
            Some(format!(
                "25th and 75th percentiles {:.2}, {:.2}",
                d.p25, d.p75
            )),
        )?;
        draw_line(&mut chart, LIMIT_95, vertical(d.p75), None)?;
        draw_line(
            &mut chart,
            OUTER,
            vertical(d.p10),
            Some(format!(
                "10th and 90th percentiles {:.2}, {:.2}",
                d.p10, d.p90
            )),
        )?;
        draw_line(&mut chart, OUTER, vertical(d.p90), None)?;
        let at = |i: usize, p: &pb::FunnelPoint| (p.rate, (i + 1) as f64);
        let points: Vec<(f64, f64)> = ranked.iter().enumerate().map(|(i, p)| at(i, p)).collect();
        draw_markers(
            &mut chart,
            Marker::Dot(POINT),
            &points,
            Some("a facility's rate".into()),
        )?;
        let callers: Vec<(f64, f64)> = ranked
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_caller)
            .map(|(i, p)| at(i, p))
            .collect();
        draw_markers(
            &mut chart,
            Marker::Ring(INK),
            &callers,
            Some("your facility".into()),
        )?;
        if ranked.len() <= 40 {
            let labels = ranked
                .iter()
                .enumerate()
                .map(|(i, p)| (at(i, p), facility_label(p)));
            draw_labels(&mut chart, labels, (9, -16))?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(plot_error)?;
    }
    Ok(titled(dashes(svg), &title, &desc))
}

/// Draws the control chart `chart` of `metric` titled `title` into `path`.
pub fn control_chart(
    title: &str,
    metric: &pb::Metric,
    chart_data: &pb::ControlChart,
    path: &Path,
) -> Result<()> {
    write(path, &control_chart_svg(title, metric, chart_data)?)
}

/// The control chart `chart_data` of `metric` titled `title` as an SVG document: the monthly
/// rates, the centre line, the 3-sigma limits, the months inside a special-cause signal and the
/// months withheld.
pub fn control_chart_svg(
    title: &str,
    metric: &pb::Metric,
    chart_data: &pb::ControlChart,
) -> Result<String> {
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
        * HEADROOM;
    let desc = format!(
        "Monthly rate ({}) of {} months with the centre line {:.2} and 3-sigma limits; {} months \
         withheld; {} special-cause signals.",
        metric.unit,
        months.len(),
        chart_data.centre,
        months.len() - points.len(),
        chart_data.signals.len()
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let last = (months.len().max(2) - 1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", CAPTION))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d(-0.5..last + 0.5, 0.0..top)
            .map_err(plot_error)?;
        let label_months = months.clone();
        chart
            .configure_mesh()
            .max_light_lines(0)
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
            .label_style(("sans-serif", LABEL))
            .axis_desc_style(("sans-serif", LABEL))
            .draw()
            .map_err(plot_error)?;
        let line = |pick: fn(&pb::ChartPoint) -> f64| -> Vec<(f64, f64)> {
            points.iter().map(|(i, p)| (*i as f64, pick(p))).collect()
        };
        draw_line(
            &mut chart,
            TARGET,
            vec![(0.0, chart_data.centre), (last, chart_data.centre)],
            Some(format!("centre line {:.2}", chart_data.centre)),
        )?;
        draw_line(
            &mut chart,
            CONTROL_LIMIT,
            line(|p| p.upper),
            Some("3-sigma limits".into()),
        )?;
        draw_line(&mut chart, CONTROL_LIMIT, line(|p| p.lower), None)?;
        draw_line(
            &mut chart,
            SERIES,
            line(|p| p.rate),
            Some("monthly rate".into()),
        )?;
        let (alarm, calm): (Vec<_>, Vec<_>) = points.iter().partition(|(_, p)| signalled(&p.month));
        let xy = |v: Vec<&(usize, &pb::ChartPoint)>| -> Vec<(f64, f64)> {
            v.into_iter().map(|(i, p)| (*i as f64, p.rate)).collect()
        };
        draw_markers(
            &mut chart,
            Marker::Dot(POINT),
            &xy(calm.iter().collect()),
            None,
        )?;
        draw_markers(
            &mut chart,
            Marker::Triangle(ALARM),
            &xy(alarm.iter().collect()),
            Some("month in a special-cause signal".into()),
        )?;
        let withheld: Vec<(f64, f64)> = chart_data
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.released)
            .map(|(i, _)| (i as f64, top * 0.03))
            .collect();
        draw_markers(
            &mut chart,
            Marker::Cross(GREY),
            &withheld,
            Some("month withheld (see the table)".into()),
        )?;
        if points.len() <= 36 {
            let labels = points
                .iter()
                .map(|(i, p)| ((*i as f64, p.rate), format!("{:.2}", p.rate)));
            draw_labels(&mut chart, labels, (6, -18))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        root.present().map_err(plot_error)?;
    }
    Ok(titled(dashes(svg), title, &desc))
}

/// Draws the legend at `position`.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, position: SeriesLabelPosition) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .legend_area_size(44)
        .label_font(("sans-serif", LABEL))
        .background_style(WHITE.mix(0.92))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)
}

/// `svg` with a `<title>` and `<desc>` as its first children and `role="img"`, so a screen
/// reader announces the chart by its title and reads the summary.
pub(crate) fn titled(svg: String, title: &str, desc: &str) -> String {
    let Some(open_end) = svg
        .find("<svg")
        .and_then(|s| svg[s..].find('>').map(|e| s + e))
    else {
        return svg;
    };
    let (head, rest) = svg.split_at(open_end);
    format!(
        "{head} role=\"img\"><title>{}</title><desc>{}</desc>{}",
        escape(title),
        escape(desc),
        &rest[1..]
    )
}

fn write(path: &Path, svg: &str) -> Result<()> {
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> pb::ControlChart {
        let point = |month: &str, rate: f64| pb::ChartPoint {
            month: month.into(),
            released: true,
            events: 30,
            exposure: 10_000.0,
            rate,
            lower: 1.4,
            upper: 4.6,
            contributing_facilities: 6,
            ..Default::default()
        };
        pb::ControlChart {
            centre: 3.0,
            sigma_z: 1.0,
            points: vec![
                point("2025-01", 3.1),
                pb::ChartPoint {
                    month: "2025-02".into(),
                    withheld_reason: "too few".into(),
                    ..Default::default()
                },
                point("2025-03", 5.0),
            ],
            signals: vec![pb::ChartSignal {
                rule: pb::SignalRule::BeyondLimits as i32,
                upward: true,
                first_month: "2025-03".into(),
                last_month: "2025-03".into(),
            }],
        }
    }

    #[test]
    fn a_chart_has_a_title_a_description_axis_units_and_a_legend() {
        let metric = pb::Metric {
            name: "Falls".into(),
            unit: "per 1,000 patient days".into(),
            ..Default::default()
        };
        let svg = control_chart_svg("Falls <network>", &metric, &chart()).unwrap();
        let open = svg.find("<svg").unwrap();
        let first_child = svg[open..].find('>').unwrap() + open + 1;
        assert!(
            svg[first_child..].starts_with("<title>Falls &lt;network&gt;</title><desc>"),
            "{}",
            &svg[..first_child + 80]
        );
        assert!(svg.contains("role=\"img\""));
        for text in [
            "Falls per 1,000 patient days",
            "month",
            "3-sigma limits",
            "month in a special-cause signal",
            "month withheld",
        ] {
            assert!(svg.contains(text), "missing {text:?}");
        }
    }
}
