//! One execution of secure aggregation, round by round: the cohort's keys, round 1 (every
//! member's masked vector and sealed shares), round 2 (the survivors' unmasking material), then
//! the sum opened by [`super::unmask`].
//!
//! Time: the whole execution ends by the context's deadline. Round 1 may use two thirds of the
//! time left when it starts — it is the round that reads the counters — and round 2, which only
//! opens shares, the rest. A member that fails round 1 (or whose answer does not fit the query)
//! is *dropped*: the survivors reveal their pairwise keys with it. A member that fails round 2
//! is still in the sum while its seed can be rebuilt from the other survivors' shares — which
//! needs that no member was dropped in round 1 (see `psonet_core::secagg::protocol`).
//!
//! A node that refuses round 1 because the cohort carries an old key of its own (it restarted)
//! or a key it does not trust gets its key fetched again and the round is run once more, under
//! a new query id, with the cohort's current keys.

use super::node_call::{CallFailure, SecureReply, SecureRequest, call_each};
use super::{NodeCost, SecureContext, SecureSum, unmask};
use crate::client::registry::Facility;
use psonet_core::pb::{self, CoverageStatus};
use psonet_core::query::AggregateQuery;
use psonet_core::secagg::cohort::{Cohort, Member};
use psonet_core::secagg::field::FieldElement;
use psonet_core::secagg::lanes::{self, LaneDomain, LaneLayout};
use psonet_core::secagg::mask::{MaskKey, QueryId};
use psonet_core::secagg::masking_key::Epoch;
use psonet_core::secagg::protocol::{DroppedKey, Round2Answer, SeedShare, min_threshold};
use psonet_core::secagg::share_box::SEALED_LEN;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::Status;

/// ErrorInfo reasons after which a member's key is fetched again and round 1 rerun.
const REFETCH_REASONS: [&str; 2] = ["STALE_MASKING_KEY", "UNTRUSTED_MASKING_KEY"];
/// ErrorInfo reason of a member that does not hold the cohort named by its hash: it is sent the
/// keys, under the same query id.
const UNKNOWN_COHORT: &str = "UNKNOWN_COHORT";

/// A member's round-1 answer, checked against the query's layout.
struct Masked {
    lanes: Vec<u32>,
    shares: Vec<u8>,
    noise_variance: f64,
    cpu_micros: u64,
    masking_cpu_micros: u64,
}

/// Where one asked facility stands.
struct Standing {
    facility: String,
    /// `None` while it is in the run; otherwise why it is not in the sum.
    out: Option<CallFailure>,
    latency: Duration,
    /// Round 2 did not come back (the member is still in the sum while its seed opens).
    round2_failure: Option<CallFailure>,
    round2_cpu_micros: Option<u64>,
}

/// An execution after round 1: what round 2 and the unmask need.
pub struct SecureRun<'a> {
    query_id: QueryId,
    domain: LaneDomain,
    layout: LaneLayout,
    /// Round-1 members in cohort order, with their answers (`None`: dropped).
    members: Vec<(&'a Facility, Option<Masked>)>,
    cohort: Cohort,
    threshold: usize,
    standings: Vec<Standing>,
    until: Instant,
}

fn failure(status: CoverageStatus, detail: String) -> CallFailure {
    CallFailure {
        status,
        detail,
        reason: None,
        about: None,
    }
}

/// The status of an execution that cannot produce a sum: `headline`, then every facility
/// that failed and why. FAILED_PRECONDITION when a member refused, else `otherwise`.
fn refusal<'s>(
    headline: &str,
    failures: impl Iterator<Item = (&'s str, &'s CallFailure)>,
    otherwise: tonic::Code,
) -> Status {
    let mut refused = false;
    let why: Vec<String> = failures
        .map(|(facility, f)| {
            refused |= f.status == CoverageStatus::Refused;
            format!("{facility}: {}", f.detail)
        })
        .collect();
    let message = if why.is_empty() {
        headline.to_string()
    } else {
        format!("{headline} ({})", why.join("; "))
    };
    let code = if refused {
        tonic::Code::FailedPrecondition
    } else {
        otherwise
    };
    Status::new(code, message)
}

/// Who left the run in round 1 (or before it), and why.
fn round_one_failures(standings: &[Standing]) -> impl Iterator<Item = (&str, &CallFailure)> {
    standings
        .iter()
        .filter_map(|s| s.out.as_ref().map(|f| (s.facility.as_str(), f)))
}

impl<'a> SecureRun<'a> {
    /// Fetches the cohort's keys and runs round 1 (again once, with fresh keys, if a node says
    /// a key is stale or untrusted). Err when the cohort or the survivors are too few.
    pub async fn round_one(
        ctx: &SecureContext<'a>,
        cohort: &[String],
        query: pb::AggregateRequest,
    ) -> Result<SecureRun<'a>, Status> {
        let until = Instant::now() + ctx.deadline;
        let parsed = AggregateQuery::from_wire(&query)?;
        let domain =
            LaneDomain::of(&parsed).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let layout = domain.layout();
        let mut ids: Vec<&str> = cohort.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let facilities = ids
            .iter()
            .map(|id| {
                ctx.registry
                    .facilities()
                    .iter()
                    .find(|f| f.id == *id)
                    .ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "{id:?} is not a facility of the registry"
                        ))
                    })
            })
            .collect::<Result<Vec<&Facility>, Status>>()?;
        let min = ctx.min_cohort;
        if facilities.len() < min {
            return Err(Status::failed_precondition(format!(
                "a cohort of {} facilities; secure aggregation needs at least {min}",
                facilities.len()
            )));
        }
        let query = Arc::new(query);
        let mut attempt = 0;
        loop {
            let run =
                Self::attempt(ctx, &facilities, &query, domain.clone(), layout, until).await?;
            let stale: Vec<&str> = run
                .standings
                .iter()
                .filter_map(|s| s.out.as_ref())
                .filter(|f| {
                    f.reason
                        .as_deref()
                        .is_some_and(|r| REFETCH_REASONS.contains(&r))
                })
                .filter_map(|f| f.about.as_deref())
                .collect();
            if attempt == 0 && !stale.is_empty() {
                for facility in &stale {
                    ctx.secure.keys.forget(facility);
                }
                tracing::info!(facilities = ?stale, "masking keys refused by members: fetching them again");
                attempt += 1;
                continue;
            }
            let survivors = run.members.iter().filter(|(_, m)| m.is_some()).count();
            let need = run.threshold.max(min);
            if survivors < need {
                return Err(refusal(
                    &format!(
                        "secure aggregation refused: {survivors} of {} members answered round 1; at least {need} are needed",
                        run.members.len()
                    ),
                    round_one_failures(&run.standings),
                    tonic::Code::Unavailable,
                ));
            }
            return Ok(run);
        }
    }

    async fn attempt(
        ctx: &SecureContext<'a>,
        facilities: &[&'a Facility],
        query: &Arc<pb::AggregateRequest>,
        domain: LaneDomain,
        layout: LaneLayout,
        until: Instant,
    ) -> Result<SecureRun<'a>, Status> {
        let keys = ctx.secure.keys.keys(facilities, until).await;
        let mut standings = Vec::with_capacity(facilities.len());
        let mut members = Vec::new();
        let mut wire_keys = Vec::new();
        for (facility, key) in facilities.iter().zip(keys) {
            let out = match key {
                Ok(key) => {
                    members.push(*facility);
                    wire_keys.push(key);
                    None
                }
                Err(f) => Some(f),
            };
            standings.push(Standing {
                facility: facility.id.clone(),
                out,
                latency: Duration::ZERO,
                round2_failure: None,
                round2_cpu_micros: None,
            });
        }
        if members.len() < ctx.min_cohort {
            return Err(refusal(
                &format!(
                    "secure aggregation refused: {} members have a usable masking key; at least {} are needed",
                    members.len(),
                    ctx.min_cohort
                ),
                round_one_failures(&standings),
                tonic::Code::Unavailable,
            ));
        }
        let cohort = Cohort::restore(
            wire_keys
                .first()
                .map(|k| k.network.clone())
                .unwrap_or_default(),
            Epoch::from_u32(wire_keys.first().map_or(0, |k| k.epoch)),
            wire_keys
                .iter()
                .map(|k| Member {
                    facility: k.facility.clone(),
                    public_key: k.public_key.as_slice().try_into().unwrap_or([0; 32]),
                })
                .collect(),
        )
        .map_err(|e| Status::internal(format!("the cohort's keys do not make a cohort: {e}")))?;
        let threshold = min_threshold(members.len());
        let query_id = QueryId(rand::random());
        // A member that answered a round 1 with this cohort's keys holds them: it is sent the
        // cohort's hash; the others, and any that no longer hold it, the keys.
        let hash = cohort.hash().0;
        let full = SecureRequest::Masked(Arc::new(pb::MaskedRoundRequest {
            query_id: query_id.0.to_vec(),
            query: Some((**query).clone()),
            cohort: wire_keys,
            threshold: threshold as u32,
        }));
        let known =
            SecureRequest::MaskedOnKnownCohort(Arc::new(pb::MaskedRoundOnKnownCohortRequest {
                query_id: query_id.0.to_vec(),
                query: Some((**query).clone()),
                cohort_hash: hash.to_vec(),
                threshold: threshold as u32,
            }));
        let mut keys_sent: Vec<bool> = members
            .iter()
            .map(|f| !ctx.secure.keys.holds(&f.id, &hash))
            .collect();
        let requests = keys_sent
            .iter()
            .map(|&sent| if sent { full.clone() } else { known.clone() })
            .collect();
        let now = Instant::now();
        let round_one_until = now + until.saturating_duration_since(now) * 2 / 3;
        let mut answers = call_each(&members, requests, round_one_until, "masked_round").await;
        let unknown: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, called)| {
                matches!(&called.result, Err(f) if f.reason.as_deref() == Some(UNKNOWN_COHORT))
            })
            .map(|(i, _)| i)
            .collect();
        if !unknown.is_empty() {
            let again: Vec<&Facility> = unknown.iter().map(|&i| members[i]).collect();
            for facility in &again {
                ctx.secure.keys.set_held(&facility.id, &hash, false);
            }
            tracing::info!(
                members = again.len(),
                "members do not hold the cohort: sending its keys"
            );
            let resent = call_each(
                &again,
                vec![full.clone(); again.len()],
                round_one_until,
                "masked_round",
            )
            .await;
            for (&i, mut called) in unknown.iter().zip(resent) {
                called.latency += answers[i].latency;
                answers[i] = called;
                keys_sent[i] = true;
            }
        }
        let n = members.len();
        let mut run_members = Vec::with_capacity(n);
        for ((facility, called), sent_keys) in members.iter().zip(answers).zip(keys_sent) {
            let standing = standings
                .iter_mut()
                .find(|s| s.facility == facility.id)
                .ok_or_else(|| Status::internal("a member without a coverage row"))?;
            standing.latency = called.latency;
            let masked = called
                .result
                .and_then(|reply| check_round_one(reply, &layout, n));
            let status = masked
                .as_ref()
                .map_or_else(|f| f.status, |_| CoverageStatus::Ok);
            if masked.is_ok() && sent_keys {
                ctx.secure.keys.set_held(&facility.id, &hash, true);
            }
            ctx.registry.metrics().record(
                &facility.id,
                status.as_str_name().trim_start_matches("COVERAGE_STATUS_"),
                called.latency,
                0,
            );
            run_members.push((
                *facility,
                match masked {
                    Ok(m) => Some(m),
                    Err(f) => {
                        standing.out = Some(f);
                        None
                    }
                },
            ));
        }
        Ok(SecureRun {
            query_id,
            domain,
            layout,
            members: run_members,
            cohort,
            threshold,
            standings,
            until,
        })
    }

    /// The facilities whose round-1 answers are in the sum, in cohort order.
    pub fn survivors(&self) -> Vec<&str> {
        self.members
            .iter()
            .filter(|(_, m)| m.is_some())
            .map(|(f, _)| f.id.as_str())
            .collect()
    }

    /// The execution's query id (what the nodes' audit trails name it by).
    pub fn query_id(&self) -> QueryId {
        self.query_id
    }

    /// Round 2 and the unmask: the sum, or a refusal that says why — never a wrong sum.
    pub async fn finish(mut self) -> Result<SecureSum, Status> {
        let survivors: Vec<String> = self.survivors().into_iter().map(String::from).collect();
        let dropped: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.is_none())
            .map(|(f, _)| f.id.clone())
            .collect();
        // The shares each survivor sealed to member at position p, in cohort order.
        let relayed = |p: usize| -> Vec<u8> {
            self.members
                .iter()
                .filter_map(|(_, m)| m.as_ref())
                .flat_map(|m| {
                    m.shares[p * SEALED_LEN..(p + 1) * SEALED_LEN]
                        .iter()
                        .copied()
                })
                .collect()
        };
        let mut asked = Vec::with_capacity(survivors.len());
        let mut requests = Vec::with_capacity(survivors.len());
        for (p, (facility, masked)) in self.members.iter().enumerate() {
            if masked.is_some() {
                asked.push(*facility);
                requests.push(SecureRequest::Unmask(pb::UnmaskRoundRequest {
                    query_id: self.query_id.0.to_vec(),
                    survivors: survivors.clone(),
                    dropped: dropped.clone(),
                    shares: relayed(p),
                }));
            }
        }
        let answers = call_each(&asked, requests, self.until, "unmask_round").await;
        let mut round2: BTreeMap<String, Round2Answer> = BTreeMap::new();
        for (facility, called) in asked.iter().zip(answers) {
            let checked = called.result.and_then(|reply| {
                check_round_two(reply, &survivors, &dropped)
                    .map_err(|why| failure(CoverageStatus::Error, why))
            });
            let standing = self
                .standings
                .iter_mut()
                .find(|s| s.facility == facility.id);
            match checked {
                Ok((answer, cpu)) => {
                    round2.insert(facility.id.clone(), answer);
                    if let Some(s) = standing {
                        s.round2_cpu_micros = Some(cpu);
                    }
                }
                Err(why) => {
                    if let Some(s) = standing {
                        s.round2_failure = Some(why);
                    }
                }
            }
        }
        let masked: BTreeMap<String, Vec<u32>> = self
            .members
            .iter_mut()
            .filter_map(|(f, m)| {
                m.as_mut()
                    .map(|m| (f.id.clone(), std::mem::take(&mut m.lanes)))
            })
            .collect();
        let exact = self
            .members
            .iter()
            .filter_map(|(_, m)| m.as_ref())
            .all(|m| m.noise_variance == 0.0);
        let opened = unmask::open(
            &self.cohort,
            self.query_id,
            self.threshold,
            &self.layout,
            &masked,
            &round2,
            exact,
        );
        let sums = match opened {
            Ok(sums) => sums,
            Err(status) => {
                // Members that failed round 2 are why; those that refused it (e.g. by the
                // differencing rule) make it a refusal.
                let failures = self
                    .standings
                    .iter()
                    .filter_map(|s| s.round2_failure.as_ref().map(|f| (s.facility.as_str(), f)));
                return Err(refusal(status.message(), failures, status.code()));
            }
        };
        let noise_variance = self
            .members
            .iter()
            .filter_map(|(_, m)| m.as_ref())
            .map(|m| m.noise_variance)
            .sum();
        let nodes = self
            .members
            .iter()
            .filter_map(|(f, m)| {
                m.as_ref().map(|m| NodeCost {
                    facility: f.id.clone(),
                    round1_cpu_micros: m.cpu_micros,
                    masking_cpu_micros: m.masking_cpu_micros,
                    round2_cpu_micros: self
                        .standings
                        .iter()
                        .find(|s| s.facility == f.id)
                        .and_then(|s| s.round2_cpu_micros),
                })
            })
            .collect();
        let coverage = self.standings.iter().map(coverage_row).collect();
        Ok(SecureSum {
            domain: self.domain,
            sums,
            survivors,
            coverage,
            noise_variance,
            nodes,
            query_id: self.query_id.to_string(),
        })
    }
}

/// The coverage row of one asked facility.
fn coverage_row(s: &Standing) -> pb::FacilityCoverage {
    let (status, detail) = match (&s.out, &s.round2_failure) {
        (Some(f), _) => (f.status, f.detail.clone()),
        (None, Some(f)) => (
            CoverageStatus::Ok,
            format!(
                "in the sum; round 2 not answered ({}), its seed rebuilt from the others' shares",
                f.detail
            ),
        ),
        (None, None) => (CoverageStatus::Ok, String::new()),
    };
    pb::FacilityCoverage {
        facility_id: s.facility.clone(),
        status: status as i32,
        detail,
        latency_ms: s.latency.as_millis().min(u128::from(u32::MAX)) as u32,
    }
}

/// A round-1 answer that fits the query's layout and a cohort of `n`, its lanes read from bytes.
fn check_round_one(
    reply: SecureReply,
    layout: &LaneLayout,
    n: usize,
) -> Result<Masked, CallFailure> {
    let unusable = |why: String| {
        failure(
            CoverageStatus::Error,
            format!("unusable round-1 answer: {why}"),
        )
    };
    let SecureReply::Masked(r) = reply else {
        return Err(unusable("the node answered another call".into()));
    };
    let shape = (
        r.lanes as usize,
        r.count_lanes as usize,
        r.total_lanes as usize,
        r.exposure_lanes as usize,
    );
    let expected = (layout.len(), layout.counts, layout.totals, layout.exposure);
    if shape != expected {
        return Err(unusable(format!(
            "lanes (all, counts, totals, exposure) {shape:?}; the query has {expected:?}"
        )));
    }
    let lanes = lanes::from_bytes(&r.masked).map_err(|e| unusable(e.to_string()))?;
    if lanes.len() != layout.len() {
        return Err(unusable(format!(
            "{} lanes sent; the query has {}",
            lanes.len(),
            layout.len()
        )));
    }
    if r.shares.len() != n * SEALED_LEN {
        return Err(unusable(format!(
            "{} bytes of shares; {n} members need {}",
            r.shares.len(),
            n * SEALED_LEN
        )));
    }
    if !(r.noise_variance.is_finite() && r.noise_variance >= 0.0) {
        return Err(unusable(format!("noise variance {}", r.noise_variance)));
    }
    Ok(Masked {
        lanes,
        shares: r.shares,
        noise_variance: r.noise_variance,
        cpu_micros: r.cpu_micros,
        masking_cpu_micros: r.masking_cpu_micros,
    })
}

/// A round-2 answer with exactly one share per survivor and one key per dropped member, as
/// the protocol's types, with the node's CPU time.
fn check_round_two(
    reply: SecureReply,
    survivors: &[String],
    dropped: &[String],
) -> Result<(Round2Answer, u64), String> {
    let SecureReply::Unmask(r) = reply else {
        return Err("the node answered another call".into());
    };
    if r.seed_shares.len() != 16 * survivors.len() || r.dropped_keys.len() != 32 * dropped.len() {
        return Err(format!(
            "unusable round-2 answer: {} bytes of seed shares and {} of keys for {} survivors and {} dropped",
            r.seed_shares.len(),
            r.dropped_keys.len(),
            survivors.len(),
            dropped.len()
        ));
    }
    let seed_shares = survivors
        .iter()
        .zip(r.seed_shares.chunks_exact(16))
        .map(|(of, bytes)| {
            let mut b = [0u8; 16];
            b.copy_from_slice(bytes);
            FieldElement::from_bytes(b)
                .map(|share| SeedShare {
                    of: of.clone(),
                    share,
                })
                .map_err(|_| {
                    format!("unusable round-2 answer: the share of {of:?} is no field element")
                })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let dropped_keys = dropped
        .iter()
        .zip(r.dropped_keys.chunks_exact(32))
        .map(|(d, bytes)| {
            let mut b = [0u8; 32];
            b.copy_from_slice(bytes);
            DroppedKey {
                dropped: d.clone(),
                key: MaskKey::from_bytes(b),
            }
        })
        .collect();
    Ok((
        Round2Answer {
            seed_shares,
            dropped_keys,
        },
        r.cpu_micros,
    ))
}
