//! Outbound links with real processes: nodes that dial out to the gateway and open no inbound
//! port, gateways that crash and come back, nodes that freeze, refused certificates, and two
//! gateway replicas behind one name.

mod common;

use common::*;
use psonet::network::Reach;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_dial_out_answer_a_benchmark() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(3).reach(Reach::DialsOut).start().await.unwrap();
    net.start_gateway(release_with_three_facilities)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let response = benchmark_this_month(&net).await;
    assert!(all_ok(&response.coverage), "{:?}", response.coverage);
}
