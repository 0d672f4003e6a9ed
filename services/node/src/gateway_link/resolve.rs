//! Where the gateway is: every address the link endpoint's host name resolves to.
//!
//! With several gateway replicas behind one name (a Kubernetes headless Service, or DNS with
//! one record per replica), each address is one replica, and the node keeps a link to each so
//! that whichever replica a benchmark lands on can ask this node. A hosts file, in the
//! `/etc/hosts` format, is read first at every resolution, so a site can pin addresses without
//! DNS and a test can move them.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// Every address of `host` on `port`: the host itself when it is an IP address, else the lines
/// of `hosts_file` that name it, else what the system resolver says.
pub async fn resolve(
    host: &str,
    port: u16,
    hosts_file: Option<&Path>,
) -> io::Result<BTreeSet<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(BTreeSet::from([SocketAddr::new(ip, port)]));
    }
    if let Some(path) = hosts_file {
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", path.display())))?;
        let listed = hosts_entries(&text, host);
        if !listed.is_empty() {
            return Ok(listed
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect());
        }
    }
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

/// The addresses `text` (in `/etc/hosts` format: an address, then names; `#` comments) gives
/// `host`.
fn hosts_entries(text: &str, host: &str) -> BTreeSet<IpAddr> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let ip = fields.next()?.parse::<IpAddr>().ok()?;
            fields
                .any(|name| name.eq_ignore_ascii_case(host))
                .then_some(ip)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hosts_file_lists_every_replica_and_ip_literals_resolve_to_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(
            &path,
            "# gateway replicas\n127.0.0.2 gateway.test other\n127.0.0.3\tGATEWAY.test # b\n\
             not-an-address gateway.test\n::1 elsewhere\n",
        )
        .unwrap();
        let found = resolve("gateway.test", 7443, Some(&path)).await.unwrap();
        let want: BTreeSet<SocketAddr> = ["127.0.0.2:7443", "127.0.0.3:7443"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(found, want);
        let literal = resolve("127.0.0.9", 1, Some(&path)).await.unwrap();
        assert_eq!(literal.len(), 1);
        // A name the file does not list goes to the system resolver.
        let localhost = resolve("localhost", 7443, Some(&path)).await.unwrap();
        assert!(
            localhost.iter().all(|a| a.ip().is_loopback()),
            "{localhost:?}"
        );
    }
}
