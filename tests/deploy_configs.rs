//! The configs shipped in `deploy/` are read by the same typed loaders the servers use
//! (unknown keys are errors), so an example can never drift from what `psonet` accepts.

use psonet_gateway::GatewayConfig;
use psonet_node::NodeConfig;
use std::path::Path;

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn node(path: &str) -> NodeConfig {
    toml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn gateway(path: &str) -> GatewayConfig {
    toml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_documented_node_toml_sets_every_key() {
    let config = node("deploy/node.toml");
    // Every key is written out, so none is left at a default the reader cannot see.
    let text = read("deploy/node.toml");
    for key in [
        "facility_id",
        "network",
        "data_dir",
        "[local]",
        "[local.tls]",
        "[federation]",
        "[federation.tls]",
        "[disclosure]",
        "min_cell_count",
        "[store]",
        "cache_capacity_mb",
        "[secure_aggregation]",
        "min_cohort",
    ] {
        assert!(
            text.contains(key),
            "deploy/node.toml does not document {key}"
        );
    }
    assert_eq!(config.data_dir, Path::new("/var/lib/psonet/store"));
    assert_eq!(config.local.listen.port(), 7111);
    assert_eq!(config.federation.listen.map(|a| a.port()), Some(7112));
}

#[test]
fn the_documented_dial_out_node_toml_sets_every_link_key_and_no_listener() {
    let config = node("deploy/node-dial-out.toml");
    let text = read("deploy/node-dial-out.toml");
    for key in [
        "[gateway_link]",
        "endpoint",
        "server_name",
        "reconnect_backoff_ms",
        "reconnect_backoff_max_ms",
        "connect_timeout_ms",
        "resolve_interval_s",
        "keepalive_interval_ms",
        "keepalive_timeout_ms",
    ] {
        assert!(
            text.contains(key),
            "deploy/node-dial-out.toml does not document {key}"
        );
    }
    assert_eq!(config.federation.listen, None);
    let link = config.gateway_link.expect("a [gateway_link]");
    assert_eq!(link.host_port().unwrap().1, 7443);
    // Every value is the default the code uses, so the documented numbers are the real ones.
    let defaults = psonet_node::config::GatewayLinkConfig {
        server_name: link.server_name.clone(),
        ..psonet_node::config::GatewayLinkConfig::new(&link.endpoint)
    };
    assert_eq!(link, defaults);
}

#[test]
fn compose_and_kubernetes_configs_load() {
    for i in 1..=3 {
        let config = node(&format!("deploy/compose/node-{i}.toml"));
        assert_eq!(config.facility_id, format!("facility-{i}"));
    }
    // The compose demo is a mixed network: node3 dials out.
    let linked = node("deploy/compose/node-3.toml");
    assert!(linked.federation.listen.is_none() && linked.gateway_link.is_some());
    let in_cluster = node("deploy/kubernetes/base/node.toml");
    assert!(in_cluster.federation.listen.is_none());
    for path in [
        "deploy/compose/gateway.toml",
        "deploy/kubernetes/base/gateway.toml",
        "deploy/kubernetes/overlays/example/gateway.toml",
    ] {
        let config = gateway(path);
        assert!(!config.facilities.is_empty(), "{path}: empty registry");
        assert_eq!(config.listen.port(), 7100, "{path}");
        // Each has a facility that dials out, so each listens for links.
        assert!(
            config.facilities.iter().any(|f| f.endpoint.is_none()),
            "{path}"
        );
        assert_eq!(config.link_listen.map(|a| a.port()), Some(7443), "{path}");
    }
}
