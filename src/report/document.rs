//! The report as one HTML document: the banner when calls failed, the cover, one `<section>`
//! per catalogue metric (each a page when printed), and the methods appendix, with the
//! stylesheet inline. The document refers to nothing outside itself, and its
//! Content-Security-Policy forbids fetching anything, so a browser opening it from an email
//! attachment makes no request at all.

use super::Paper;
use super::calls::{Gathered, MetricCalls, Outcome, Plan};
use super::html::esc;
use super::reader::Reader;
use super::redact::Redactor;
use super::sections::{self, cover, methods, metric_benchmark, scorecard, trend};
use crate::render::palette;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a report is made of.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// What was asked.
    pub plan: &'a Plan,
    /// What the gateway answered.
    pub gathered: &'a Gathered,
    /// The paper it is laid out for.
    pub paper: Paper,
    /// When it was made, e.g. `2026-06-30 14:05 UTC`.
    pub generated: String,
}

const STYLE: &str = include_str!("report.css");

/// The whole document.
pub fn render(report: &Report) -> String {
    let gathered = report.gathered;
    let plan = report.plan;
    let redactor = match plan.reader {
        Reader::Network { .. } => Redactor::new(cover::facility_ids(gathered)),
        Reader::Facility { .. } => Redactor::default(),
    };
    let failures = gathered.failures();
    let mut body = cover::banner(&failures, gathered.calls(), &redactor);
    body += &cover::render(plan, gathered, &report.generated, &redactor);
    for m in &gathered.metrics {
        body += &format!(
            "<section class=\"metric\" id=\"metric-{id}\" data-metric=\"{id}\"><h2>{}</h2>\
             <p class=\"definition\">{} Rates are {}.</p>",
            esc(&m.metric.name),
            esc(&m.metric.description),
            esc(&m.metric.unit),
            id = esc(&m.metric.id)
        );
        body += &match &m.calls {
            MetricCalls::Network { benchmark, trend } => {
                part(benchmark, "Pooled rate", &redactor, |r| {
                    metric_benchmark::render(r, &redactor)
                }) + &part(trend, "Monthly trend", &redactor, |r| {
                    trend::render(r, &redactor)
                })
            }
            MetricCalls::Facility { scorecard } => part(scorecard, "Your rate", &redactor, |r| {
                scorecard::render(r, &redactor)
            }),
        };
        body += "</section>";
    }
    if let Some(learning) = &gathered.learning {
        body += &sections::learning::render(learning, &redactor);
    }
    let settings = methods::Settings {
        plan,
        min_cell_count: min_cell_count(gathered),
        calls: (gathered.calls(), failures.len()),
    };
    body += &match &gathered.catalogue {
        Ok(catalogue) => methods::render(&catalogue.response, &settings),
        Err(missing) => format!(
            "<section class=\"methods\" id=\"methods\"><h2>Methods</h2>{}</section>",
            sections::missing(missing, &redactor)
        ),
    };
    let title = format!(
        "{}: patient safety benchmarks, {}",
        plan.reader.network(),
        cover::period_words(&plan.month_from, &plan.month_to)
    );
    let class = match plan.reader {
        Reader::Network { .. } => "network-report",
        Reader::Facility { .. } => "facility-report",
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"psonet {}\">\n<title>{}</title>\n\
         <style>\n{}{}</style>\n</head>\n<body class=\"{class}\">\n<main>\n{body}\n</main>\n\
         </body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&title),
        root_style(report.paper),
        STYLE
    )
}

/// A part made by `render` from a call's answer, or the reason it is missing under `heading`.
fn part<T>(
    outcome: &Outcome<T>,
    heading: &str,
    redactor: &Redactor,
    render: impl FnOnce(&T) -> String,
) -> String {
    match outcome {
        Ok(answer) => render(&answer.response),
        Err(missing) => format!(
            "<h3>{}</h3>{}",
            esc(heading),
            sections::missing(missing, redactor)
        ),
    }
}

/// The smallest released cell count, from the first benchmark that answered.
fn min_cell_count(gathered: &Gathered) -> Option<u32> {
    gathered.metrics.iter().find_map(|m| match &m.calls {
        MetricCalls::Network {
            benchmark: Ok(a), ..
        } if a.response.min_cell_count > 0 => Some(a.response.min_cell_count),
        _ => None,
    })
}

/// The palette as CSS variables and the page size.
fn root_style(paper: Paper) -> String {
    let vars = [
        ("ink", palette::INK),
        ("muted", palette::MUTED),
        ("paper", palette::PAPER),
        ("stripe", palette::STRIPE),
        ("alarm", palette::ALARM),
        ("alert", palette::ALERT),
        ("point", palette::POINT),
        ("grey", palette::GREY),
        ("banner", palette::BANNER),
        ("link", palette::LINK),
    ];
    let mut out = String::from(":root {");
    for (name, colour) in vars {
        out += &format!(" --{name}: {};", colour.hex());
    }
    let size = match paper {
        Paper::A4 => "A4",
        Paper::Letter => "letter",
    };
    out + &format!(" }}\n@page {{ size: {size}; margin: 14mm 14mm 16mm; }}\n")
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    minutes_utc(ms)
}

/// `ms` after the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
fn minutes_utc(ms: u64) -> String {
    let stamp = psonet_node::utc::format_ms(ms);
    format!(
        "{} UTC",
        stamp.get(..16).unwrap_or(&stamp).replace('T', " ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::calls::{Answered, Failure, Missing};
    use psonet_core::pb;
    use std::time::Duration;

    #[test]
    fn timestamps_are_civil_utc() {
        assert_eq!(minutes_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(minutes_utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(minutes_utc(1_767_225_599_999), "2025-12-31 23:59 UTC");
    }

    fn plan() -> Plan {
        Plan {
            reader: Reader::Network {
                network: "midwest".into(),
                principal: "spiffe://midwest/partner/analyst".into(),
            },
            month_from: "2025-01".into(),
            month_to: "2025-12".into(),
            peer_group: None,
            laney: false,
            timeout: Duration::from_secs(1),
        }
    }

    fn answered<T>(response: T) -> Outcome<T> {
        Ok(Answered {
            response,
            elapsed: Duration::from_millis(120),
        })
    }

    fn metric(id: &str) -> pb::Metric {
        pb::Metric {
            id: id.into(),
            version: 1,
            name: format!("Metric {id}"),
            unit: "per 1,000 patient days".into(),
            multiplier: 1000.0,
            denominator: pb::DenominatorType::PatientDays as i32,
            ..Default::default()
        }
    }

    fn coverage(ids: &[&str]) -> Vec<pb::FacilityCoverage> {
        ids.iter()
            .map(|id| pb::FacilityCoverage {
                facility_id: id.to_string(),
                status: if *id == "county-general" {
                    pb::CoverageStatus::TimedOut as i32
                } else {
                    pb::CoverageStatus::Ok as i32
                },
                detail: if *id == "county-general" {
                    "county-general did not answer within 2000 ms".into()
                } else {
                    String::new()
                },
                latency_ms: 10,
            })
            .collect()
    }

    /// Two metrics: the first withheld with its trend answered, the second's trend failed.
    fn gathered() -> Gathered {
        let ids = ["st-marys", "county-general", "lakeside"];
        let withheld = pb::NetworkBenchmarkResponse {
            coverage: coverage(&ids),
            min_cell_count: 11,
            metric: Some(pb::MetricBenchmark {
                metric: Some(metric("falls")),
                released: false,
                withheld_reason: "2 facilities contribute; a network figure needs at least 5"
                    .into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let trend = pb::TrendResponse {
            metric: Some(metric("falls")),
            chart: Some(pb::ControlChart {
                centre: 3.0,
                sigma_z: 1.0,
                points: vec![pb::ChartPoint {
                    month: "2025-01".into(),
                    withheld_reason: "lakeside holds 80% of the cell".into(),
                    ..Default::default()
                }],
                signals: vec![],
            }),
            coverage: coverage(&ids),
            ..Default::default()
        };
        let catalogue = pb::ListMetricsResponse {
            metrics: vec![metric("falls"), metric("surgical-events")],
        };
        Gathered {
            catalogue: answered(catalogue),
            metrics: vec![
                crate::report::calls::MetricAnswers {
                    metric: metric("falls"),
                    calls: MetricCalls::Network {
                        benchmark: answered(withheld.clone()),
                        trend: answered(trend),
                    },
                },
                crate::report::calls::MetricAnswers {
                    metric: metric("surgical-events"),
                    calls: MetricCalls::Network {
                        benchmark: answered(withheld),
                        trend: Err(Missing::Failed(Failure {
                            call: "Trend(surgical-events)".into(),
                            why: "the gateway at 127.0.0.1:7100 did not answer".into(),
                        })),
                    },
                },
            ],
            learning: None,
        }
    }

    fn document() -> String {
        let plan = plan();
        let gathered = gathered();
        render(&Report {
            plan: &plan,
            gathered: &gathered,
            paper: Paper::Letter,
            generated: "2026-01-05 09:00 UTC".into(),
        })
    }

    #[test]
    fn a_failed_call_makes_a_banner_and_a_note_where_its_part_would_be() {
        let html = document();
        let banner = html
            .find("<div class=\"banner\" role=\"alert\">")
            .expect("banner");
        assert!(
            banner < html.find("<h1>").unwrap(),
            "the banner comes first"
        );
        assert!(
            html.contains("Partial report: 1 of 5 calls failed."),
            "{html}"
        );
        assert!(html.contains(
            "<strong>Not available:</strong> the call Trend(surgical-events) failed: the gateway \
             at 127.0.0.1:7100 did not answer"
        ));
        assert_eq!(html.matches("<section class=\"metric\"").count(), 2);
        assert!(html.contains("@page { size: letter;"));
    }

    #[test]
    fn withheld_figures_say_why_and_no_facility_is_named() {
        let html = document();
        assert!(html.contains(
            "<strong>The network figures are withheld.</strong> 2 facilities contribute; a \
             network figure needs at least 5"
        ));
        for id in ["st-marys", "county-general", "lakeside"] {
            assert!(!html.contains(id), "{id} is named in the network report");
        }
        assert!(html.contains("withheld: a facility holds 80% of the cell"));
        assert!(html.contains("1 facility: Trend(falls): timed out: a facility did not answer"));
        assert!(html.contains("3 facilities in scope; 2 answered every call, 1 missed"));
    }

    #[test]
    fn headings_go_down_one_level_at_a_time() {
        let html = document();
        let mut last = 0;
        for (i, _) in html.match_indices("<h") {
            let Some(level) = html[i + 2..].chars().next().and_then(|c| c.to_digit(10)) else {
                continue;
            };
            assert!(
                level <= last + 1,
                "h{level} after h{last}: {}",
                &html[i..i + 60]
            );
            last = level;
        }
        assert_eq!(html.matches("<h1>").count(), 1);
    }

    #[test]
    fn the_document_refers_to_nothing_outside_itself() {
        let html = document();
        for needle in [
            "<script", "<link", "<img", "src=", "url(", "@import", "http://", "https://",
        ] {
            assert!(!html.contains(needle), "found {needle}");
        }
        for (i, _) in html.match_indices("href=\"") {
            assert!(html[i + 6..].starts_with('#'), "{}", &html[i..i + 40]);
        }
    }
}
