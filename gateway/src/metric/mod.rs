//! Metric figures: a named rate (numerator filter, denominator, multiplier) benchmarked across
//! the network, followed month by month, and scored for one facility against its peers.
//!
//! The pipeline, in the order a request runs it:
//!
//! 1. [`catalogue`]: which metrics exist and what each one counts;
//! 2. [`fetch`]: ask the nodes in the peer group for the metric in the shape a figure needs
//!    (whole range, months, or unit types), each answer checked once by [`crate::answer`];
//! 3. [`benchmark`], [`trend`], [`scorecard`]: the statistics — pooled rate, funnel,
//!    over-dispersion, u-charts, observed/expected — each released under the network rule,
//!    with other facilities' funnel points shown as [`peer_points`] says.

pub mod benchmark;
pub mod catalogue;
pub mod fetch;
pub mod peer_points;
pub mod scorecard;
pub mod secure_sum;
pub mod trend;
