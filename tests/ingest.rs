//! Ingest at a node: malformed events are refused and leave nothing (8c), idempotency keys
//! store an event once (8d), and acknowledged events survive a crash (8e).

mod common;

use common::*;
use futures::future::join_all;
use psonet_core::month::Month;
use psonet_core::pb::{self, EventCategory, HarmLevel};
use tonic::Code;
use tonic_types::StatusExt;

fn month() -> String {
    Month::current().minus(1).to_string()
}

/// The fields a refusal's `BadRequest` details name, in order.
fn violated_fields(status: &tonic::Status) -> Vec<String> {
    let details = status
        .get_details_bad_request()
        .expect("BadRequest details");
    details
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

fn by_key(key: &str) -> pb::GetEventRequest {
    pb::GetEventRequest {
        key: Some(pb::get_event_request::Key::IdempotencyKey(key.into())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_refused_naming_the_field_and_nothing_is_stored() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).start().await.unwrap();
    let mut client = net.nodes[0].reporting().unwrap();
    let valid = event("ok-1", &month(), EventCategory::Fall, HarmLevel::Mild);
    let cases: Vec<(pb::Event, &str)> = vec![
        (
            pb::Event {
                idempotency_key: String::new(),
                ..valid.clone()
            },
            "event.idempotency_key",
        ),
        (
            pb::Event {
                categories: vec![],
                ..valid.clone()
            },
            "event.categories",
        ),
        (
            pb::Event {
                categories: vec![3, 99],
                ..valid.clone()
            },
            "event.categories[1]",
        ),
        (
            pb::Event {
                harm: 0,
                ..valid.clone()
            },
            "event.harm",
        ),
        (
            pb::Event {
                event_type: pb::EventType::NearMiss as i32,
                ..valid.clone()
            },
            "event.harm",
        ),
        (
            pb::Event {
                discovery_month: "2026-13".into(),
                ..valid.clone()
            },
            "event.discovery_month",
        ),
        (
            pb::Event {
                discovery_month: "2026-01-15".into(),
                ..valid.clone()
            },
            "event.discovery_month",
        ),
        (
            pb::Event {
                discovery_month: Month::current().next().to_string(),
                ..valid.clone()
            },
            "event.discovery_month",
        ),
        (
            pb::Event {
                unit_type: 0,
                ..valid.clone()
            },
            "event.unit_type",
        ),
        (
            pb::Event {
                event_type: 7,
                ..valid.clone()
            },
            "event.event_type",
        ),
    ];
    for (i, (bad, field)) in cases.into_iter().enumerate() {
        let bad = pb::Event {
            idempotency_key: if bad.idempotency_key.is_empty() {
                String::new()
            } else {
                format!("bad-{i}")
            },
            ..bad
        };
        let status = client
            .submit_event(pb::SubmitEventRequest { event: Some(bad) })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "case {i}: {status:?}");
        assert_eq!(violated_fields(&status), [field], "case {i}");
        if i > 0 {
            let missing = client
                .get_event(by_key(&format!("bad-{i}")))
                .await
                .unwrap_err();
            assert_eq!(missing.code(), Code::NotFound, "case {i} was stored");
        }
    }
    let missing = client
        .submit_event(pb::SubmitEventRequest { event: None })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);

    // In a stream, the bad events are listed and the good ones stored.
    let mut stream = vec![valid.clone()];
    stream.push(pb::Event {
        idempotency_key: "bad-stream".into(),
        categories: vec![],
        ..valid.clone()
    });
    let summary = submit_all(&mut client, stream).await;
    assert_eq!((summary.accepted, summary.rejected), (1, 1));
    assert_eq!(summary.rejections[0].index, 1);
    assert_eq!(
        summary.rejections[0].violations[0].field,
        "event.categories"
    );
    assert_eq!(
        client
            .get_event(by_key("bad-stream"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // The counters hold the one valid event: too few for any query over it to be answered
    // (the query-set minimum), and nothing else was counted.
    let refused = net
        .aggregate_client(0)
        .await
        .unwrap()
        .aggregate(aggregate_request(&month(), &month()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("fewer than 11 events"),
        "{refused:?}"
    );

    // Exposure is all or nothing.
    let status = client
        .record_exposure(pb::RecordExposureRequest {
            records: vec![
                pb::ExposureRecord {
                    month: month(),
                    unit_type: pb::UnitType::Medical as i32,
                    denominator: 1,
                    value: 100,
                },
                pb::ExposureRecord {
                    month: month(),
                    unit_type: 0,
                    denominator: 1,
                    value: 100,
                },
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["records[1].unit_type"]);
    // Near misses select no event, so the query is answered, with the month's exposure.
    let near_misses = pb::AggregateRequest {
        filter: Some(pb::AggregateFilter {
            event_types: vec![pb::EventType::NearMiss as i32],
            ..Default::default()
        }),
        ..aggregate_request(&month(), &month())
    };
    let aggregate = net
        .aggregate_client(0)
        .await
        .unwrap()
        .aggregate(near_misses)
        .await
        .unwrap()
        .into_inner();
    assert!(aggregate.cells.is_empty());
    assert!(aggregate.exposure.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_is_stored_once() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).start().await.unwrap();
    let mut client = net.nodes[0].reporting().unwrap();
    let e = event(
        "IR-42",
        &month(),
        EventCategory::Medication,
        HarmLevel::NoHarm,
    );
    let first = client
        .submit_event(pb::SubmitEventRequest {
            event: Some(e.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    let again = client
        .submit_event(pb::SubmitEventRequest {
            event: Some(e.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(first.event_id, again.event_id);

    // Eleven more with distinct keys, then a stream that repeats keys, also within itself.
    let others: Vec<pb::Event> = (0..11)
        .map(|i| {
            event(
                &format!("IR-{i}"),
                &month(),
                EventCategory::Medication,
                HarmLevel::NoHarm,
            )
        })
        .collect();
    let summary = submit_all(&mut client, others.clone()).await;
    assert_eq!((summary.accepted, summary.duplicates), (11, 0));
    let mut replay = others.clone();
    replay.push(e.clone());
    replay.push(others[0].clone());
    let summary = submit_all(&mut client, replay).await;
    assert_eq!((summary.accepted, summary.duplicates), (0, 13));

    // Concurrent retries of one new key: exactly one is stored.
    let fresh = event(
        "IR-race",
        &month(),
        EventCategory::Medication,
        HarmLevel::NoHarm,
    );
    let calls = (0..8).map(|_| {
        let mut c = client.clone();
        let fresh = fresh.clone();
        async move {
            c.submit_event(pb::SubmitEventRequest { event: Some(fresh) })
                .await
                .unwrap()
                .into_inner()
        }
    });
    let answers = join_all(calls).await;
    assert_eq!(answers.iter().filter(|a| !a.duplicate).count(), 1);
    assert!(answers.iter().all(|a| a.event_id == answers[0].event_id));

    // 1 + 11 + 1 events: one released cell of 13.
    let aggregate = net
        .aggregate_client(0)
        .await
        .unwrap()
        .aggregate(aggregate_request(&month(), &month()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(released_total(&aggregate), (13, 0));
    let stored = client
        .get_event(by_key("IR-42"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.event_id, first.event_id);
    assert_eq!(stored.event.unwrap().narrative, e.narrative);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_a_crash_and_restart() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(1).start().await.unwrap();
    let mut client = net.nodes[0].reporting().unwrap();
    // Unary submits from concurrent clients, each acknowledged…
    let calls = (0..40).map(|i| {
        let mut c = client.clone();
        async move {
            let e = event(
                &format!("unary-{i}"),
                &month(),
                EventCategory::Fall,
                HarmLevel::Mild,
            );
            c.submit_event(pb::SubmitEventRequest { event: Some(e) })
                .await
                .unwrap()
                .into_inner()
        }
    });
    let acks = join_all(calls).await;
    // …and a stream whose summary acknowledges it.
    let streamed: Vec<pb::Event> = (0..500)
        .map(|i| {
            event(
                &format!("stream-{i}"),
                &month(),
                EventCategory::Medication,
                HarmLevel::NoHarm,
            )
        })
        .collect();
    assert_eq!(submit_all(&mut client, streamed).await.accepted, 500);
    client
        .record_exposure(pb::RecordExposureRequest {
            records: vec![pb::ExposureRecord {
                month: month(),
                unit_type: pb::UnitType::Medical as i32,
                denominator: 1,
                value: 777,
            }],
        })
        .await
        .unwrap();

    // A crash: SIGKILL, no shutdown, no flush on exit.
    net.nodes[0].kill();
    net.nodes[0].start().await.unwrap();
    let mut client = net.nodes[0].reporting().unwrap();
    for (i, ack) in acks.iter().enumerate() {
        let stored = client
            .get_event(by_key(&format!("unary-{i}")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stored.event_id, ack.event_id);
    }
    for i in 0..500 {
        client
            .get_event(by_key(&format!("stream-{i}")))
            .await
            .unwrap();
    }
    let aggregate = net
        .aggregate_client(0)
        .await
        .unwrap()
        .aggregate(aggregate_request(&month(), &month()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(released_total(&aggregate), (540, 0));
    assert_eq!(aggregate.exposure[0].value, 777);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amendments_move_counts_and_keep_history_over_grpc() {
    psonet_serve::tls::install_crypto_provider();
    let net = network(1).start().await.unwrap();
    let mut client = net.nodes[0].reporting().unwrap();
    let events: Vec<pb::Event> = (0..12)
        .map(|i| {
            event(
                &format!("A-{i}"),
                &month(),
                EventCategory::Fall,
                HarmLevel::NoHarm,
            )
        })
        .collect();
    submit_all(&mut client, events.clone()).await;
    let by_harm = || pb::AggregateRequest {
        month_from: month(),
        month_to: month(),
        group_by: vec![pb::Dimension::Harm as i32],
        ..Default::default()
    };
    let before = net
        .aggregate_client(0)
        .await
        .unwrap()
        .aggregate(by_harm())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before.cells.len(), 1);
    assert_eq!(
        (before.cells[0].harm, before.cells[0].count),
        (HarmLevel::NoHarm as i32, 12)
    );

    // Harm reassessed for one event: the no-harm cell drops to 11, the mild one holds 1.
    let corrected = pb::Event {
        harm: HarmLevel::Mild as i32,
        ..events[0].clone()
    };
    let amend = |event: pb::Event, reason: &str| pb::AmendEventRequest {
        event: Some(event),
        reason: reason.into(),
    };
    let answer = client
        .amend_event(amend(corrected.clone(), "harm reassessed at 72 h"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.revision, answer.unchanged), (1, false));
    let retried = client
        .amend_event(amend(corrected.clone(), "retry"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((retried.revision, retried.unchanged), (1, true));
    let after = net
        .aggregate_client(0)
        .await
        .unwrap()
        .aggregate(by_harm())
        .await
        .unwrap()
        .into_inner();
    let cells = harm_cells(&after);
    assert_eq!(
        cells,
        [
            (HarmLevel::NoHarm as i32, 11, false),
            (HarmLevel::Mild as i32, 0, true)
        ]
    );
    let stored = client.get_event(by_key("A-0")).await.unwrap().into_inner();
    assert_eq!(stored.history[0].reason, "harm reassessed at 72 h");
    assert_eq!(
        stored.history[0].event.as_ref().unwrap().harm,
        HarmLevel::NoHarm as i32
    );

    // Refusals: no reason, an unknown key, an invalid correction.
    let status = client
        .amend_event(amend(corrected.clone(), " "))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let unknown = pb::Event {
        idempotency_key: "nope".into(),
        ..corrected.clone()
    };
    assert_eq!(
        client
            .amend_event(amend(unknown, "x"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let invalid = pb::Event {
        harm: 0,
        ..corrected
    };
    let status = client.amend_event(amend(invalid, "x")).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["event.harm"]);
}
