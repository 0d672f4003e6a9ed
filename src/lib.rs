//! psonet: the command-line front of the federated PSO network.
//!
//! `psonet node` and `psonet gateway` run the servers; `psonet pki` issues certificates;
//! `psonet submit` and `psonet benchmark` are clients for people; `psonet demo` shows the whole
//! path on one machine. The library half is what the binary and the end-to-end tests share.

pub mod backup;
pub mod bench;
pub mod benchmark_cli;
pub mod client;
pub mod demo;
pub mod example_config;
pub mod health_probe;
pub mod import;
pub mod load;
pub mod ndjson;
pub mod pki;
pub mod plot;
pub mod submit;
pub mod synth;
pub mod table;
pub mod tls_probe;
