//! Asking the nodes one question, and accounting for every one of them.
//!
//! A benchmark never waits past its deadline and never hides who is missing: it is computed
//! from the answers that arrived and were usable, and it lists every facility asked with its
//! coverage — ok, timed out, unavailable, refused, or an error, which includes an answer that
//! arrived but failed the checks of [`crate::answer`]. Both pipelines (category rows and metric
//! figures) ask through [`AskContext::ask`], so coverage is written in one place; a figure made
//! of a secure sum and per-facility answers shows both through [`merge`].

use crate::answer::{FacilityAnswer, NodeQuery};
use crate::client::fanout::{NodeAnswer, fan_out};
use crate::client::registry::Registry;
use psonet_core::disclosure::primary::SmallCellRule;
use psonet_core::pb::{self, CoverageStatus};
use std::time::Duration;

/// Where a question goes, on whose behalf, and the rule its answers are checked against.
pub struct AskContext<'a> {
    /// The facilities.
    pub registry: &'a Registry,
    /// Per-node deadline.
    pub deadline: Duration,
    /// The gateway's small-cell re-check.
    pub small_cells: &'a SmallCellRule,
    /// The partner or facility asking, whose policy and budget the nodes apply.
    pub querier: &'a str,
}

/// The usable answers of the facilities asked, and the coverage of all of them.
#[derive(Debug)]
pub struct Answers {
    /// Checked answers, in registry order.
    pub usable: Vec<FacilityAnswer>,
    /// Every facility asked and whether its answer counts.
    pub coverage: Vec<pb::FacilityCoverage>,
}

impl AskContext<'_> {
    /// Asks `query` of the facilities `in_scope` admits (a facility outside it is not asked at
    /// all) and checks every answer once.
    pub async fn ask(
        &self,
        query: &NodeQuery,
        in_scope: &(dyn Fn(&str) -> bool + Sync),
    ) -> Answers {
        let request = query.request(self.querier);
        let answers = fan_out(self.registry, request, self.deadline, in_scope).await;
        let mut out = Answers {
            usable: Vec::with_capacity(answers.len()),
            coverage: Vec::with_capacity(answers.len()),
        };
        for answer in &answers {
            let checked = answer.response.as_ref().map(|response| {
                FacilityAnswer::check(&answer.facility_id, response, query, self.small_cells)
            });
            let usable = match checked {
                Some(Ok(checked)) => {
                    out.usable.push(checked);
                    Ok(())
                }
                Some(Err(why)) => Err(why),
                None => Ok(()),
            };
            out.coverage.push(coverage_row(answer, usable));
        }
        out
    }
}

/// The coverage row of one node answer; an answer that arrived but is not `usable` is an
/// error, with why.
fn coverage_row(answer: &NodeAnswer, usable: Result<(), String>) -> pb::FacilityCoverage {
    let (status, detail) = match usable {
        Ok(()) => (answer.status, answer.detail.clone()),
        Err(why) => (CoverageStatus::Error, format!("unusable answer: {why}")),
    };
    pb::FacilityCoverage {
        facility_id: answer.facility_id.clone(),
        status: status as i32,
        detail,
        latency_ms: answer.latency.as_millis().min(u128::from(u32::MAX)) as u32,
    }
}

/// One coverage row per facility for a figure made of two asks — the network sum (`secure`)
/// and the per-facility counts around it (`plain`): a facility missing from either is shown
/// with the first failure, saying which part it is missing from; one in both is OK.
pub fn merge(
    secure: Vec<pb::FacilityCoverage>,
    plain: Vec<pb::FacilityCoverage>,
) -> Vec<pb::FacilityCoverage> {
    let ok = CoverageStatus::Ok as i32;
    let mut rows = secure;
    for row in &mut rows {
        if row.status != ok {
            row.detail = format!("not in the network sum: {}", row.detail);
        }
    }
    for other in plain {
        match rows.iter_mut().find(|r| r.facility_id == other.facility_id) {
            Some(row) if row.status == ok && other.status != ok => {
                *row = pb::FacilityCoverage {
                    detail: format!("not on the funnel: {}", other.detail),
                    ..other
                };
            }
            Some(row) => row.latency_ms = row.latency_ms.max(other.latency_ms),
            None => rows.push(other),
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, status: CoverageStatus, detail: &str) -> pb::FacilityCoverage {
        pb::FacilityCoverage {
            facility_id: id.into(),
            status: status as i32,
            detail: detail.into(),
            latency_ms: 7,
        }
    }

    #[test]
    fn a_facility_missing_from_either_part_says_which() {
        use CoverageStatus::{Ok, TimedOut, Unavailable};
        let merged = merge(
            vec![
                row("a", Ok, ""),
                row("b", Unavailable, "connection refused"),
                row("c", Ok, ""),
            ],
            vec![
                row("a", Ok, ""),
                row("b", Unavailable, "connection refused"),
                row("c", TimedOut, "no answer within 2000 ms"),
            ],
        );
        let seen: Vec<(&str, i32, &str)> = merged
            .iter()
            .map(|r| (r.facility_id.as_str(), r.status, r.detail.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("a", Ok as i32, ""),
                (
                    "b",
                    Unavailable as i32,
                    "not in the network sum: connection refused"
                ),
                (
                    "c",
                    TimedOut as i32,
                    "not on the funnel: no answer within 2000 ms"
                ),
            ]
        );
    }
}
