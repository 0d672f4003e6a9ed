//! A server in the foreground: the line it prints once it listens, and the signal that stops it.
//!
//! `psonet node` and `psonet gateway` print one *ready line* on standard output when every
//! listener is bound — `psonet node ready facility=… local=… [federation=…] [metrics=…]` (no
//! `federation` for a node that only dials out to the gateway) or
//! `psonet gateway ready listen=… [links=…] [metrics=…]` — with the real addresses, since a
//! config may ask for port 0. Operators see it in the journal; `network::ServerProcess` waits for it and reads
//! the addresses from it. Both sides of that contract live here.

use anyhow::Result;
use std::net::SocketAddr;

/// The `key=value` fields of a ready line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyLine {
    fields: Vec<(String, String)>,
}

impl ReadyLine {
    /// The line `psonet node` prints once its listeners are bound.
    pub fn node(
        facility: &str,
        local: SocketAddr,
        federation: Option<SocketAddr>,
        metrics: Option<SocketAddr>,
    ) -> String {
        format!(
            "psonet node ready facility={facility} local={local}{}{}",
            field("federation", federation),
            field("metrics", metrics)
        )
    }

    /// The line `psonet gateway` prints once its listeners are bound.
    pub fn gateway(
        listen: SocketAddr,
        links: Option<SocketAddr>,
        metrics: Option<SocketAddr>,
    ) -> String {
        format!(
            "psonet gateway ready listen={listen}{}{}",
            field("links", links),
            field("metrics", metrics)
        )
    }

    /// Reads a ready line; `None` for any other line the server prints.
    pub fn parse(line: &str) -> Option<Self> {
        if !line.contains(" ready ") {
            return None;
        }
        let fields = line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Self { fields })
    }

    /// The address under `key` (`local`, `federation`, `listen`, `links`, `metrics`), if the
    /// line has it.
    pub fn addr(&self, key: &str) -> Option<SocketAddr> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
    }
}

/// ` key=ADDR` when there is an address, else nothing.
fn field(key: &str, addr: Option<SocketAddr>) -> String {
    addr.map(|a| format!(" {key}={a}")).unwrap_or_default()
}

/// Waits for SIGTERM (systemd, Kubernetes, `kill`) or Ctrl-C.
pub async fn stop_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_line_reads_back_the_addresses_it_was_written_with() {
        let local: SocketAddr = "127.0.0.1:7111".parse().unwrap();
        let federation: SocketAddr = "127.0.0.1:7112".parse().unwrap();
        let line = ReadyLine::node("st-marys", local, Some(federation), None);
        let ready = ReadyLine::parse(&line).unwrap();
        assert_eq!(ready.addr("local"), Some(local));
        assert_eq!(ready.addr("federation"), Some(federation));
        assert_eq!(ready.addr("metrics"), None);
        let linked = ReadyLine::node("st-marys", local, None, None);
        assert_eq!(ReadyLine::parse(&linked).unwrap().addr("federation"), None);

        let metrics: SocketAddr = "127.0.0.1:9100".parse().unwrap();
        let line = ReadyLine::gateway(local, Some(federation), Some(metrics));
        let ready = ReadyLine::parse(&line).unwrap();
        assert_eq!(ready.addr("metrics"), Some(metrics));
        assert_eq!(ready.addr("links"), Some(federation));
        assert_eq!(ReadyLine::parse("psonet node starting"), None);
    }
}
