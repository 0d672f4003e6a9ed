//! Crash safety with real processes: a node SIGKILLed while a client streams events. After
//! each crash every acknowledged event is present, nothing unacknowledged is half-written
//! (events, keys and counters agree exactly), and the node serves again from the same data.

mod common;

use common::*;
use psonet_core::month::Month;
use psonet_core::pb::reporting_service_client::ReportingServiceClient;
use psonet_core::pb::{self, EventCategory, HarmLevel};
use psonet_node::store::Store;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::Channel;

/// Streams chunks of 250 events until the node dies; returns the keys of acknowledged chunks.
async fn stream_until_killed(
    mut client: ReportingServiceClient<Channel>,
    round: usize,
    acked: Arc<Mutex<Vec<String>>>,
) {
    let month = Month::current().minus(1).to_string();
    for chunk in 0.. {
        let keys: Vec<String> = (0..250).map(|i| format!("r{round}-c{chunk}-{i}")).collect();
        let events = keys.iter().map(|k| pb::SubmitEventsRequest {
            event: Some(event(k, &month, EventCategory::Fall, HarmLevel::Mild)),
        });
        match client
            .submit_events(tokio_stream::iter(events.collect::<Vec<_>>()))
            .await
        {
            Ok(summary) => {
                assert_eq!(summary.into_inner().accepted, 250);
                acked.lock().unwrap().extend(keys);
            }
            Err(_) => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_during_streaming() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(1).start().await.unwrap();
    let data_dir = net.layout.facilities[0]
        .node_config
        .parent()
        .unwrap()
        .join("data");
    let mut all_acked: Vec<String> = Vec::new();
    for (round, delay_ms) in [150u64, 400, 900].into_iter().enumerate() {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let streaming = tokio::spawn(stream_until_killed(
            net.nodes[0].reporting().unwrap(),
            round,
            acked.clone(),
        ));
        // The kill lands `delay_ms` after the first acknowledgement, so a slow start on a loaded
        // machine cannot turn the round into one that killed the node before anything was acked.
        let first_ack = tokio::time::Instant::now() + Duration::from_secs(30);
        while acked.lock().unwrap().is_empty() && tokio::time::Instant::now() < first_ack {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        assert!(!streaming.is_finished(), "the stream ended before the kill");
        net.nodes[0].kill();
        // Let the client see the broken connection.
        tokio::time::timeout(Duration::from_secs(10), streaming)
            .await
            .unwrap()
            .unwrap();
        let acked = acked.lock().unwrap().clone();
        assert!(
            !acked.is_empty(),
            "round {round}: nothing was acknowledged before the kill"
        );

        // The dead node's store, opened directly: consistent, and holding every ack.
        {
            let store = Store::open(&data_dir, 8 << 20).unwrap();
            let events = store.verify_counters().unwrap();
            all_acked.extend(acked);
            assert!(
                events >= all_acked.len() as u64,
                "round {round}: {events} events for {} acks",
                all_acked.len()
            );
            for key in &all_acked {
                assert!(
                    store.event_by_key(key).unwrap().is_some(),
                    "round {round}: acknowledged {key} lost"
                );
            }
        }
        net.nodes[0].start().await.unwrap();
    }
    // The restarted node serves them.
    let mut client = net.nodes[0].reporting().unwrap();
    for key in all_acked.iter().step_by(97) {
        let request = pb::GetEventRequest {
            key: Some(pb::get_event_request::Key::IdempotencyKey(key.clone())),
        };
        client.get_event(request).await.unwrap();
    }
}
