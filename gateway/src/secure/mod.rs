//! Secure aggregation, the gateway's side: network figures as the exact sum over a cohort of
//! facilities, opened from masked vectors so that no facility's own figures are ever seen here
//! (issue 11; `reference/privacy.md` §2.2 Variant A, §5).
//!
//! [`aggregate`] runs one execution over a cohort (the whole registry or a peer group) and
//! returns a [`SecureSum`]: every lane of the query's canonical domain summed over the
//! survivors, with per lane the number of facilities that contributed — the figure disclosure
//! control is applied to. The pieces, in the order an execution meets them:
//! - [`key_cache`]: the members' signed masking keys, fetched once per epoch and checked against
//!   the network CA;
//! - [`node_call`]: each call through the node's client stack (the same layers and limits as an
//!   aggregate call), fanned out to the cohort;
//! - [`rounds`]: round 1 (masked vectors, sealed shares) and round 2 (unmasking material), with
//!   the deadline split between them and every member's coverage;
//! - [`unmask`]: the sum opened and checked, never handed out wrong.
//!
//! CPU: the hot path touches lanes only as `u32` slices decoded straight from the bytes the
//! nodes sent, and shares as fixed-size byte runs; there is one message per node and round, not
//! one per cell or per share.

pub mod key_cache;
pub mod node_call;
pub mod rounds;
pub mod unmask;

use crate::client::registry::Registry;
use key_cache::KeyCache;
use psonet_core::pb;
use psonet_core::secagg::lanes::{LaneDomain, LaneSums};
use psonet_core::secagg::masking_key::{MaskingKeyError, MaskingKeyVerifier};
pub use rounds::SecureRun;
use std::time::Duration;
use tonic::Status;

/// What the gateway keeps between executions: the members' verified masking keys.
pub struct SecureAggregation {
    keys: KeyCache,
}

impl SecureAggregation {
    /// For `network`, checking keys against the CA certificates in `ca_pem` (the network CA
    /// the gateway's `tls.ca` names).
    pub fn new(network: &str, ca_pem: &[u8]) -> Result<Self, MaskingKeyError> {
        Ok(Self {
            keys: KeyCache::new(MaskingKeyVerifier::from_pem(network, ca_pem)?),
        })
    }
}

/// Where an execution runs and under which limits.
pub struct SecureContext<'a> {
    /// The facilities, with their client stacks.
    pub registry: &'a Registry,
    /// The whole execution — keys, round 1, round 2 — ends by then.
    pub deadline: Duration,
    /// The keys kept between executions.
    pub secure: &'a SecureAggregation,
    /// The fewest members (and survivors) the gateway runs an execution with; nodes enforce
    /// their own minimum too.
    pub min_cohort: usize,
}

/// What one member's answers cost it, as it reported them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCost {
    /// The facility.
    pub facility: String,
    /// CPU time of its round-1 answer, µs.
    pub round1_cpu_micros: u64,
    /// Of that, masks, keys and shares, µs.
    pub masking_cpu_micros: u64,
    /// CPU time of its round-2 answer, µs, when it answered round 2.
    pub round2_cpu_micros: Option<u64>,
}

/// One secure aggregation over a cohort: the network sum of every lane, and who is in it.
#[derive(Debug)]
pub struct SecureSum {
    /// The lanes' cells, built from the query exactly as the nodes build them.
    pub domain: LaneDomain,
    /// The opened sums with per-lane contributor counts.
    pub sums: LaneSums,
    /// Facilities whose vectors are in the sum (the survivors), sorted.
    pub survivors: Vec<String>,
    /// One coverage row per cohort member, sorted by facility: OK for survivors; for the
    /// others why they are not in the sum (no usable masking key, did not answer round 1 in
    /// time, refused with the node's reason, …).
    pub coverage: Vec<pb::FacilityCoverage>,
    /// Variance of the differential-privacy noise in each count and total lane of the sum (the
    /// survivors' shares added up); 0 when no member added noise.
    pub noise_variance: f64,
    /// What each survivor's answers cost it.
    pub nodes: Vec<NodeCost>,
    /// The execution's query id (hex), as the nodes' audit trails record it.
    pub query_id: String,
}

/// Runs both rounds over `cohort` (registry facility ids; whole network or a peer group) for
/// `query` (its `querier` set by the caller) and opens the sum; Err when fewer than the minimum
/// survive, with a status that says why (FAILED_PRECONDITION when members refused,
/// UNAVAILABLE when they did not answer), never a wrong sum.
pub async fn aggregate(
    ctx: &SecureContext<'_>,
    cohort: &[String],
    query: pb::AggregateRequest,
) -> Result<SecureSum, Status> {
    SecureRun::round_one(ctx, cohort, query)
        .await?
        .finish()
        .await
}
