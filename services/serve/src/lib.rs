//! psonet-serve: the server plumbing a facility node and the PSO gateway share.
//!
//! Everything here is about *how* psonet talks, not *what* it computes: TLS material and
//! certificate rotation, principals read from certificates, the check that a peer is the one
//! meant ([`peer_identity`]) and the access rule every listener applies, binding listeners and
//! stopping them, outbound links a node dials to the gateway ([`link`]), health and
//! reflection, the security log of refusals, telemetry, metrics, the
//! plain-words diagnosis of failed calls, and reading configuration files. It is kept out of
//! `psonet-core` so that the domain (events, the cube, disclosure control, statistics) builds
//! without tonic's server extras, OpenTelemetry or tower — the fuzz target included.

pub mod auth;
pub mod bounded_errors;
pub mod config_file;
pub mod diagnose;
pub mod identity;
pub mod link;
pub mod listener;
pub mod metrics;
pub mod peer_identity;
pub mod presented_certificate;
pub mod private_files;
pub mod reflection_subset;
pub mod security_log;
pub mod telemetry;
pub mod tls;
