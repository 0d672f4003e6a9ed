//! The cover page: whose report it is, the network, the period, the facilities covered, and the
//! coverage of every call the report made (how many facilities answered each, and how each
//! call ended), then the contents. The network report gives coverage as counts only: it names
//! no facility.

use super::enum_words;
use super::figures::position_words;
use crate::report::calls::{Answered, Failure, Gathered, MetricCalls, Missing, Outcome, Plan};
use crate::report::html::{Table, esc};
use crate::report::reader::Reader;
use crate::report::redact::Redactor;
use psonet_core::month::Month;
use psonet_core::pb::{self, CoverageStatus};
use std::collections::{BTreeMap, BTreeSet};

/// The cover page of a report of `gathered`, made as `generated` (a UTC timestamp).
pub fn render(plan: &Plan, gathered: &Gathered, generated: &str, redactor: &Redactor) -> String {
    let network = plan.reader.network();
    let mut out = format!(
        "<header class=\"cover\"><p class=\"kicker\">{} · patient safety benchmarks</p>\
         <h1>Patient safety benchmarks, {}</h1>",
        esc(network),
        esc(&period_words(&plan.month_from, &plan.month_to))
    );
    out += &match &plan.reader {
        Reader::Network { principal, .. } => format!(
            "<p class=\"for\">Network report for {}. Facilities appear only as pseudonyms, drawn \
             afresh for every figure.</p>",
            esc(principal)
        ),
        Reader::Facility { id, .. } => format!(
            "<p class=\"for\">Report for facility <strong>{}</strong>: your figures named, \
             your peers anonymous.</p>",
            esc(id)
        ),
    };
    let facts = [
        ("Network", network.to_string()),
        (
            "Period",
            format!("{} to {}", plan.month_from, plan.month_to),
        ),
        ("Facilities compared", peer_group_words(plan)),
        ("Facilities covered", covered(plan, gathered)),
        (
            "Metrics",
            format!("{} from the gateway's catalogue", gathered.metrics.len()),
        ),
        ("Generated", generated.to_string()),
    ];
    out += "<dl class=\"facts\">";
    for (term, value) in facts {
        out += &format!("<dt>{}</dt><dd>{}</dd>", esc(term), esc(&value));
    }
    out += "</dl>";
    out += "</header><section class=\"coverage\"><h2>Coverage of each call</h2>";
    out += &match plan.reader {
        Reader::Network { .. } => network_coverage(gathered, redactor),
        Reader::Facility { .. } => facility_coverage(gathered),
    };
    out += "</section>";
    if !gathered.metrics.is_empty() {
        out += "<nav class=\"contents\"><h2>Contents</h2><ol>";
        for m in &gathered.metrics {
            out += &format!(
                "<li><a href=\"#metric-{}\">{}</a></li>",
                esc(&m.metric.id),
                esc(&m.metric.name)
            );
        }
        if gathered.learning.is_some() {
            out += "<li><a href=\"#learning\">Guidance and practice effects</a></li>";
        }
        out += "<li><a href=\"#methods\">Methods</a></li></ol></nav>";
    }
    out
}

/// A range of months for people: "January to December 2025", "November 2024 to March 2025".
pub fn period_words(from: &str, to: &str) -> String {
    let words = |month: &str| -> Option<(String, String)> {
        let month: Month = month.parse().ok()?;
        let name = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ]
        .get(month.month() as usize - 1)?;
        Some((name.to_string(), month.year().to_string()))
    };
    match (words(from), words(to)) {
        (Some((fm, fy)), Some(_)) if from == to => format!("{fm} {fy}"),
        (Some((fm, fy)), Some((tm, ty))) if fy == ty => format!("{fm} to {tm} {ty}"),
        (Some((fm, fy)), Some((tm, ty))) => format!("{fm} {fy} to {tm} {ty}"),
        _ => format!("{from} to {to}"),
    }
}

/// The peer group in words.
fn peer_group_words(plan: &Plan) -> String {
    let Some(group) = &plan.peer_group else {
        return "the whole network".into();
    };
    let parts: Vec<String> = [
        (
            "bed size",
            enum_words(&group.bed_size_bands, "BED_SIZE_BAND_", |v| {
                pb::BedSizeBand::try_from(v).ok().map(|e| e.as_str_name())
            }),
        ),
        (
            "teaching status",
            enum_words(&group.teaching, "TEACHING_STATUS_", |v| {
                pb::TeachingStatus::try_from(v)
                    .ok()
                    .map(|e| e.as_str_name())
            }),
        ),
        (
            "facility type",
            enum_words(&group.facility_types, "FACILITY_TYPE_", |v| {
                pb::FacilityType::try_from(v).ok().map(|e| e.as_str_name())
            }),
        ),
        (
            "region",
            enum_words(&group.regions, "CENSUS_REGION_", |v| {
                pb::CensusRegion::try_from(v).ok().map(|e| e.as_str_name())
            }),
        ),
        (
            "location",
            enum_words(&group.urbanicity, "URBANICITY_", |v| {
                pb::Urbanicity::try_from(v).ok().map(|e| e.as_str_name())
            }),
        ),
    ]
    .into_iter()
    .filter(|(_, words)| !words.is_empty())
    .map(|(what, words)| format!("{what} {}", words.join(" or ")))
    .collect();
    format!("peer group: {}", parts.join("; "))
}

/// Every coverage list the network report's calls returned.
fn coverages(gathered: &Gathered) -> Vec<(&str, &[pb::FacilityCoverage])> {
    let mut out = Vec::new();
    for m in &gathered.metrics {
        if let MetricCalls::Network { benchmark, trend } = &m.calls {
            if let Ok(a) = benchmark {
                out.push((m.metric.id.as_str(), &a.response.coverage[..]));
            }
            if let Ok(a) = trend {
                out.push((m.metric.id.as_str(), &a.response.coverage[..]));
            }
        }
    }
    out
}

/// Every facility id in the network report's coverage, for redaction.
pub fn facility_ids(gathered: &Gathered) -> Vec<String> {
    coverages(gathered)
        .into_iter()
        .flat_map(|(_, c)| c.iter().map(|c| c.facility_id.clone()))
        .collect()
}

/// Which facilities the figures cover, in counts.
fn covered(plan: &Plan, gathered: &Gathered) -> String {
    match plan.reader {
        Reader::Network { .. } => {
            let lists = coverages(gathered);
            if lists.is_empty() {
                return "unknown: no benchmark call answered".into();
            }
            let in_scope: BTreeSet<&str> = lists
                .iter()
                .flat_map(|(_, c)| c.iter().map(|c| c.facility_id.as_str()))
                .collect();
            let missed: BTreeSet<&str> = lists
                .iter()
                .flat_map(|(_, c)| c.iter())
                .filter(|c| c.status != CoverageStatus::Ok as i32)
                .map(|c| c.facility_id.as_str())
                .collect();
            format!(
                "{} facilities in scope; {} answered every call{}",
                in_scope.len(),
                in_scope.len() - missed.len(),
                if missed.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {} missed at least one (see the coverage below)",
                        missed.len()
                    )
                }
            )
        }
        Reader::Facility { ref id, .. } => {
            let most = gathered
                .metrics
                .iter()
                .filter_map(|m| match &m.calls {
                    MetricCalls::Facility { scorecard: Ok(a) } => a.response.peers.as_ref(),
                    _ => None,
                })
                .filter(|p| p.released)
                .map(|p| p.contributing_facilities)
                .max();
            match most {
                Some(n) => format!(
                    "{id} against up to {} peer facilities ({n} with you; each metric's count \
                     is below)",
                    n.saturating_sub(1)
                ),
                None => format!("{id}; no peer comparison was released"),
            }
        }
    }
}

/// How a call ended, in a word or two.
fn ended<T>(outcome: &Outcome<T>, answered: impl Fn(&T) -> String) -> (String, String) {
    match outcome {
        Ok(a) => (answered(&a.response), seconds(a)),
        Err(Missing::Withheld { reason, .. }) => (format!("withheld: {reason}"), String::new()),
        Err(Missing::Failed(f)) => (format!("failed: {}", f.why), String::new()),
    }
}

fn seconds<T>(a: &Answered<T>) -> String {
    format!("{:.2}", a.elapsed.as_secs_f64())
}

/// "8 of 8": facilities that answered a call, of those in scope ("–" without an answer).
fn answered_of(coverage: Option<&[pb::FacilityCoverage]>) -> String {
    coverage.map_or("–".into(), |c| {
        let ok = c
            .iter()
            .filter(|c| c.status == CoverageStatus::Ok as i32)
            .count();
        format!("{ok} of {}", c.len())
    })
}

/// Counts why facilities did not answer `call` into `details`, naming none of them.
fn count_missing(
    call: &str,
    coverage: Option<&[pb::FacilityCoverage]>,
    details: &mut BTreeMap<String, usize>,
    redactor: &Redactor,
) {
    for c in coverage
        .unwrap_or_default()
        .iter()
        .filter(|c| c.status != CoverageStatus::Ok as i32)
    {
        let status = CoverageStatus::try_from(c.status)
            .map_or("?", |s| s.as_str_name())
            .trim_start_matches("COVERAGE_STATUS_")
            .to_lowercase()
            .replace('_', " ");
        let detail = format!("{call}: {status}: {}", redactor.clean(&c.detail));
        *details.entry(detail).or_default() += 1;
    }
}

/// The catalogue call in a sentence (it fans out to no facility).
fn catalogue_sentence(gathered: &Gathered, redactor: &Redactor) -> String {
    let (answer, time) = ended(&gathered.catalogue, |r| {
        format!("answered with {} metrics", r.metrics.len())
    });
    let time = if time.is_empty() {
        String::new()
    } else {
        format!(" in {time} s")
    };
    format!(
        "<p>The catalogue (ListMetrics) {}{}; then each metric's calls:</p>",
        esc(&redactor.clean(&answer)),
        esc(&time)
    )
}

fn network_coverage(gathered: &Gathered, redactor: &Redactor) -> String {
    let mut table = Table::new("Each metric's calls and the facilities that answered them")
        .text("Metric")
        .text("NetworkBenchmark")
        .number("Answered")
        .text("Trend")
        .number("Answered")
        .number("Seconds");
    let mut details: BTreeMap<String, usize> = BTreeMap::new();
    for m in &gathered.metrics {
        let MetricCalls::Network { benchmark, trend } = &m.calls else {
            continue;
        };
        let (bench_answer, bench_time) = ended(benchmark, |r| match &r.metric {
            Some(b) if b.released => "released".into(),
            Some(_) => "withheld".into(),
            None => "no benchmark".into(),
        });
        let (trend_answer, trend_time) = ended(trend, |r| {
            let points = r.chart.as_ref().map_or(&[][..], |c| &c.points[..]);
            let released = points.iter().filter(|p| p.released).count();
            format!("{released} of {} months released", points.len())
        });
        let bench_coverage = benchmark.as_ref().ok().map(|a| &a.response.coverage[..]);
        let trend_coverage = trend.as_ref().ok().map(|a| &a.response.coverage[..]);
        count_missing(
            &format!("NetworkBenchmark({})", m.metric.id),
            bench_coverage,
            &mut details,
            redactor,
        );
        count_missing(
            &format!("Trend({})", m.metric.id),
            trend_coverage,
            &mut details,
            redactor,
        );
        let seconds: f64 = [
            benchmark.as_ref().ok().map(|a| a.elapsed),
            trend.as_ref().ok().map(|a| a.elapsed),
        ]
        .into_iter()
        .flatten()
        .map(|d| d.as_secs_f64())
        .sum();
        let seconds = if bench_time.is_empty() && trend_time.is_empty() {
            String::new()
        } else {
            format!("{seconds:.2}")
        };
        table.row(vec![
            m.metric.name.clone(),
            redactor.clean(&bench_answer),
            answered_of(bench_coverage),
            redactor.clean(&trend_answer),
            answered_of(trend_coverage),
            seconds,
        ]);
    }
    let mut out = catalogue_sentence(gathered, redactor) + &table.html("coverage-table");
    if !details.is_empty() {
        out += "<p>Facilities that did not answer, and why:</p><ul class=\"coverage-details\">";
        for (detail, n) in details {
            let who = if n == 1 {
                "1 facility".to_string()
            } else {
                format!("{n} facilities")
            };
            out += &format!("<li>{}: {}</li>", esc(&who), esc(&detail));
        }
        out += "</ul>";
    }
    out
}

fn facility_coverage(gathered: &Gathered) -> String {
    let mut table = Table::new("Each metric's scorecard")
        .text("Metric")
        .text("FacilityScorecard")
        .number("Facilities compared")
        .number("Left out")
        .number("Seconds");
    for m in &gathered.metrics {
        let MetricCalls::Facility { scorecard } = &m.calls else {
            continue;
        };
        let (answer, time) = ended(scorecard, |r| match &r.peers {
            Some(p) if p.released => format!("you are {}", position_words(r.funnel_position)),
            _ => "peer comparison withheld".into(),
        });
        let peers = scorecard
            .as_ref()
            .ok()
            .and_then(|a| a.response.peers.as_ref());
        table.row(vec![
            m.metric.name.clone(),
            answer,
            peers.map_or("–".into(), |p| p.contributing_facilities.to_string()),
            peers.map_or("–".into(), |p| p.excluded.len().to_string()),
            time,
        ]);
    }
    catalogue_sentence(gathered, &Redactor::default()) + &table.html("coverage-table")
}

/// The banner of a partial report: what failed and why.
pub fn banner(failures: &[&Failure], calls: usize, redactor: &Redactor) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "<div class=\"banner\" role=\"alert\"><p><strong>Partial report: {} of {calls} calls \
         failed.</strong> The parts they feed say so where they would be; everything else is \
         complete.</p><ul>",
        failures.len()
    );
    for f in failures {
        out += &format!(
            "<li>{}: {}</li>",
            esc(&f.call),
            esc(&redactor.clean(&f.why))
        );
    }
    out + "</ul></div>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_as_months_and_years() {
        assert_eq!(
            period_words("2025-01", "2025-12"),
            "January to December 2025"
        );
        assert_eq!(
            period_words("2024-11", "2025-03"),
            "November 2024 to March 2025"
        );
        assert_eq!(period_words("2025-06", "2025-06"), "June 2025");
        assert_eq!(period_words("bad", "2025-06"), "bad to 2025-06");
    }
}
