//! Graceful shutdown: on SIGTERM a node reports NOT_SERVING, stops accepting, lets the call in
//! flight finish (a client stream still sending when the signal arrives is taken in full),
//! flushes its store and exits 0; everything it acknowledged is there after a restart.

mod common;

use common::*;
use psonet_core::month::Month;
use psonet_core::pb::{self, EventCategory, HarmLevel};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_stream_in_flight_finish_and_keeps_what_it_acknowledged() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(1).start().await.unwrap();
    net.nodes[0].pin_ports().unwrap();
    let month = Month::current().to_string();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let mut client = net.nodes[0].reporting().unwrap();
    let call = tokio::spawn(async move {
        client
            .submit_events(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    let send = |i: usize| pb::SubmitEventsRequest {
        event: Some(event(
            &format!("graceful-{i}"),
            &month,
            EventCategory::Fall,
            HarmLevel::Mild,
        )),
    };
    for i in 0..20 {
        tx.send(send(i)).await.unwrap();
    }
    // Give the first events time to arrive, then ask the node to stop mid-stream.
    tokio::time::sleep(Duration::from_millis(200)).await;
    net.nodes[0].signal("TERM").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 20..40 {
        tx.send(send(i)).await.unwrap();
    }
    drop(tx);
    let summary = call
        .await
        .unwrap()
        .expect("the call in flight completes")
        .into_inner();
    assert_eq!((summary.accepted, summary.rejected), (40, 0));
    let mut process = net.nodes[0].take_process().unwrap();
    assert!(process.wait_success(), "the node exits 0 after SIGTERM");

    net.nodes[0].start().await.unwrap();
    let aggregate = net
        .aggregate_client(0)
        .await
        .unwrap()
        .aggregate(aggregate_request(
            &Month::current().to_string(),
            &Month::current().to_string(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(released_total(&aggregate).0, 40, "{aggregate:?}");
}
