//! psonet: the command-line front of the federated PSO network.
//!
//! Each subcommand is a module with its clap `Args` and a `run`: [`node`] and [`gateway`] run
//! the servers, [`pki`] issues certificates, [`import`], [`benchmark`], [`intervention`],
//! [`practice_effect`], [`guidance`], [`health`] and [`links`] are clients for people, [`report`]
//! writes the PSO's periodic report as one HTML file, [`synth`] writes synthetic data, [`demo`]
//! shows the whole path on one machine, and [`perf`] measures it (`bench`, `bench-load`,
//! `bench-fanout`). What they share:
//! [`network`] starts a network on loopback (the demo, the measurements and the end-to-end tests
//! all start theirs there), [`client`] connects and explains failures, [`render`] formats
//! answers, [`ndjson`] reads and writes event files, [`foreground`] is a server's ready line.

pub mod benchmark;
pub mod client;
pub mod demo;
pub mod foreground;
pub mod gateway;
pub mod guidance;
pub mod health;
pub mod import;
pub mod intervention;
pub mod intervention_comparison;
pub mod links;
pub mod ndjson;
pub mod network;
pub mod node;
pub mod perf;
pub mod pki;
pub mod practice_effect;
pub mod render;
pub mod report;
pub mod synth;
