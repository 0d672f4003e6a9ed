//! `psonet pki add-facility`: a facility joins an existing network with identities from the
//! network's CA, and its node is reachable by its own systems and by the network's gateway.

use psonet::pki::{self, AddFacilityOptions, InitOptions};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_facility_added_to_an_existing_network_serves_its_clients_and_the_gateway() {
    psonet_serve::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    pki::init(&InitOptions {
        network: "joinnet".into(),
        out: out.clone(),
        facilities: vec!["first".into()],
        hosts: Vec::new(),
        base_port: None,
        years: 1,
    })
    .unwrap();
    let options = AddFacilityOptions {
        ca_dir: out.clone(),
        network: "joinnet".into(),
        facility: "new-site".into(),
        hosts: Vec::new(),
        ports: (0, 0),
        link_port: 0,
        years: 1,
    };
    let added = pki::add_facility(&options).unwrap();

    let loaded = psonet_node::NodeConfig::load(&added.node_config).unwrap();
    assert_eq!(loaded.config.facility_id, "new-site");
    let node = psonet_node::RunningNode::start(loaded).await.unwrap();
    let wait = Duration::from_secs(5);
    // Its own systems reach the local listener; the gateway issued by `pki init` reaches the
    // federation listener: both trust the same CA and each other's principals.
    let local = node.local_addr.to_string();
    psonet::health::check(&local, &added.client_identity, "", wait)
        .await
        .unwrap();
    let federation = node.federation_addr.unwrap().to_string();
    psonet::health::check(&federation, &out.join("gateway"), "", wait)
        .await
        .unwrap();
    // Another facility's client is still refused on this facility's local listener.
    let other = out.join("first").join("client");
    assert!(
        psonet::health::check(&local, &other, "", wait)
            .await
            .is_err()
    );
    node.shutdown().await.unwrap();

    // Its identities are not issued twice.
    let again = pki::add_facility(&options).unwrap_err().to_string();
    assert!(again.contains("already exists"), "{again}");
    assert!(
        pki::registry_entry("new-site", "node.example.org", 7112)
            .contains("endpoint = \"https://node.example.org:7112\"")
    );
}
