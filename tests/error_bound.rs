//! One bound for every error a server sends (issue 12, item 2): every input of the fuzz corpus
//! and every bad input the review found, sent to real node and gateway processes; the largest
//! error that comes back is printed and must stay under 8 KB, with the code the caller should
//! see (a standard client drops an error whose headers pass 16 KB, and reports
//! RESOURCE_EXHAUSTED instead).

mod common;

use bytes::Bytes;
use common::raw;
use common::*;
use futures::StreamExt;
use prost::Message;
use psonet_core::month::Month;
use psonet_core::pb::{self, EventCategory, HarmLevel};
use std::path::Path;
use tonic::Code;
use tonic::transport::Channel;

/// The bound: an error's headers together, well under the 16 KB standard clients accept.
const MAX_ERROR_BYTES: usize = 8 * 1024;

/// The bytes `status` takes as headers on the wire, every name and value as tonic writes them.
fn wire_size(status: &tonic::Status) -> usize {
    let mut headers = tonic::codegen::http::HeaderMap::new();
    status.add_header(&mut headers).unwrap();
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

/// Where a method is served and who may call it.
#[derive(Clone, Copy)]
enum Listener {
    Local,
    Federation,
    Gateway,
    GatewayAsFacility,
}

/// A method: its path, its listener, and whether the client streams.
type Method = (&'static str, Listener, bool);

/// Every unary (or client-streaming) method of every listener.
const METHODS: &[Method] = &[
    (
        "/psonet.v1.ReportingService/SubmitEvent",
        Listener::Local,
        false,
    ),
    (
        "/psonet.v1.ReportingService/SubmitEvents",
        Listener::Local,
        true,
    ),
    (
        "/psonet.v1.ReportingService/GetEvent",
        Listener::Local,
        false,
    ),
    (
        "/psonet.v1.ReportingService/AmendEvent",
        Listener::Local,
        false,
    ),
    (
        "/psonet.v1.ReportingService/RecordExposure",
        Listener::Local,
        false,
    ),
    (
        "/psonet.v1.AggregateService/Aggregate",
        Listener::Federation,
        false,
    ),
    (
        "/psonet.v1.BenchmarkService/NetworkBenchmark",
        Listener::Gateway,
        false,
    ),
    (
        "/psonet.v1.BenchmarkService/Trend",
        Listener::Gateway,
        false,
    ),
    (
        "/psonet.v1.BenchmarkService/FacilityScorecard",
        Listener::GatewayAsFacility,
        false,
    ),
];

/// The channels of a network, one per listener and caller.
struct Channels {
    local: Channel,
    federation: Channel,
    gateway: Channel,
    gateway_as_facility: Channel,
}

impl Channels {
    fn new(net: &Network) -> Self {
        let node = &net.nodes[0];
        let gateway = net.gateway_addr().unwrap();
        Self {
            local: channel(&node.local(), &node.client_identity),
            federation: channel(
                &node.federation().expect("it listens"),
                &net.gateway_identity(),
            ),
            gateway: channel(&gateway, &net.layout.partner_identity),
            gateway_as_facility: channel(&gateway, &node.client_identity),
        }
    }

    fn get(&self, listener: Listener) -> &Channel {
        match listener {
            Listener::Local => &self.local,
            Listener::Federation => &self.federation,
            Listener::Gateway => &self.gateway,
            Listener::GatewayAsFacility => &self.gateway_as_facility,
        }
    }
}

/// The largest error seen so far, and what provoked it.
#[derive(Default)]
struct Largest {
    bytes: usize,
    what: String,
    errors: usize,
}

impl Largest {
    fn see(&mut self, what: impl FnOnce() -> String, status: &tonic::Status) {
        self.errors += 1;
        let bytes = wire_size(status);
        if bytes > self.bytes {
            self.bytes = bytes;
            self.what = format!("{} ({:?})", what(), status.code());
        }
    }
}

/// One call; a refusal is measured, an answer ignored.
async fn send(
    channels: &Channels,
    (method, listener, streaming): Method,
    message: Bytes,
) -> Option<tonic::Status> {
    raw::call(channels.get(listener), method, streaming, message)
        .await
        .err()
}

/// A fuzz corpus entry as the fuzz target reads it — the first byte picks the message the rest
/// decodes as — sent to every method whose request carries that message.
fn as_the_fuzz_target_reads_it(data: &[u8]) -> Vec<(Method, Bytes)> {
    let Some((&selector, bytes)) = data.split_first() else {
        return Vec::new();
    };
    let bytes = Bytes::copy_from_slice(bytes);
    match selector % 3 {
        // An Event, as field 1 of SubmitEventRequest and of AmendEventRequest.
        0 => {
            let mut wrapped = Vec::with_capacity(bytes.len() + 8);
            prost::encoding::bytes::encode(1, &bytes.to_vec(), &mut wrapped);
            let wrapped = Bytes::from(wrapped);
            vec![(METHODS[0], wrapped.clone()), (METHODS[3], wrapped)]
        }
        1 => vec![(METHODS[1], bytes)],
        // An AggregateRequest: its range and categories are also those of a benchmark or trend.
        _ => vec![
            (METHODS[5], bytes.clone()),
            (METHODS[6], bytes.clone()),
            (METHODS[7], bytes),
        ],
    }
}

/// The bad inputs of the review and of the other tests, each with the code it must get.
fn bad_inputs() -> Vec<(&'static str, Method, Bytes, Code)> {
    let month = Month::current().minus(1).to_string();
    let three_mb = "m".repeat(3 << 20);
    let mut duplicate_categories = event("dup", &month, EventCategory::Fall, HarmLevel::Mild);
    duplicate_categories.categories = vec![EventCategory::Fall as i32; 1000];
    let mut huge_key = event("k", &month, EventCategory::Fall, HarmLevel::Mild);
    huge_key.idempotency_key = "k".repeat(3 << 20);
    let exposure = pb::RecordExposureRequest {
        records: (0..10_001)
            .map(|i| pb::ExposureRecord {
                month: format!("bad-month-{i}"),
                ..Default::default()
            })
            .collect(),
    };
    let benchmark = |edit: &dyn Fn(&mut pb::NetworkBenchmarkRequest)| {
        let mut request = this_month_benchmark();
        edit(&mut request);
        Bytes::from(request.encode_to_vec())
    };
    let aggregate = pb::AggregateRequest {
        month_from: month.clone(),
        month_to: month.clone(),
        group_by: vec![pb::Dimension::Category as i32; 1000],
        ..Default::default()
    };
    let trend = pb::TrendRequest {
        metric: three_mb.clone(),
        month_from: month.clone(),
        month_to: month.clone(),
        ..Default::default()
    };
    let scorecard = pb::FacilityScorecardRequest {
        metric: three_mb.clone(),
        month_from: month.clone(),
        month_to: month,
        ..Default::default()
    };
    let submit = |event: pb::Event| {
        Bytes::from(pb::SubmitEventRequest { event: Some(event) }.encode_to_vec())
    };
    vec![
        (
            "a 3 MB metric",
            METHODS[6],
            benchmark(&|r| r.metric = three_mb.clone()),
            Code::InvalidArgument,
        ),
        (
            "1,000 duplicate categories in an event",
            METHODS[0],
            submit(duplicate_categories),
            Code::InvalidArgument,
        ),
        (
            "1,000 duplicate categories in a benchmark",
            METHODS[6],
            benchmark(&|r| r.categories = vec![EventCategory::Fall as i32; 1000]),
            Code::InvalidArgument,
        ),
        (
            "10,001 exposure records",
            METHODS[4],
            Bytes::from(exposure.encode_to_vec()),
            Code::InvalidArgument,
        ),
        (
            "a 3 MB idempotency key",
            METHODS[0],
            submit(huge_key),
            Code::InvalidArgument,
        ),
        (
            "1,000 duplicate group_by dimensions",
            METHODS[5],
            Bytes::from(aggregate.encode_to_vec()),
            Code::InvalidArgument,
        ),
        (
            "a 3 MB metric in a trend",
            METHODS[7],
            Bytes::from(trend.encode_to_vec()),
            Code::InvalidArgument,
        ),
        (
            "a 3 MB metric in a scorecard",
            METHODS[8],
            Bytes::from(scorecard.encode_to_vec()),
            Code::InvalidArgument,
        ),
        (
            "bytes that are no message",
            METHODS[0],
            Bytes::from_static(&[0xff; 64]),
            Code::Internal,
        ),
        (
            "a 5 MB message",
            METHODS[0],
            Bytes::from(vec![0u8; 5 << 20]),
            Code::ResourceExhausted,
        ),
    ]
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/front_door");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_error_any_server_sends_is_under_8_kb() {
    psonet_serve::tls::install_crypto_provider();
    let mut net = network(1).start().await.unwrap();
    net.start_gateway(|_| {}).await.unwrap();
    let channels = Channels::new(&net);
    let mut largest = Largest::default();

    // The review's bad inputs: each gets its code, within the bound.
    for (what, method, message, code) in bad_inputs() {
        let status = send(&channels, method, message)
            .await
            .unwrap_or_else(|| panic!("{what}: answered instead of refused"));
        println!(
            "{what} -> {:?}, {} bytes of error",
            status.code(),
            wire_size(&status)
        );
        assert_eq!(status.code(), code, "{what}: {}", status.message());
        assert!(
            wire_size(&status) < MAX_ERROR_BYTES,
            "{what}: a {} byte error",
            wire_size(&status)
        );
        largest.see(|| what.to_string(), &status);
    }

    // Every corpus entry, to every method that reads its message.
    let corpus = corpus();
    assert!(
        corpus.len() > 1000,
        "the corpus has {} entries",
        corpus.len()
    );
    let calls = corpus.iter().flat_map(|(name, data)| {
        as_the_fuzz_target_reads_it(data)
            .into_iter()
            .map(move |(method, message)| {
                (format!("corpus {name} to {}", method.0), method, message)
            })
    });
    let mut results = futures::stream::iter(calls.map(|(what, method, message)| {
        let channels = &channels;
        async move { (what, send(channels, method, message).await) }
    }))
    .buffer_unordered(16);
    let mut sent = 0;
    while let Some((what, status)) = results.next().await {
        sent += 1;
        if let Some(status) = status {
            assert_ne!(
                status.code(),
                Code::Unavailable,
                "{what}: the server stopped answering: {}",
                status.message()
            );
            largest.see(|| what, &status);
        }
    }
    println!(
        "largest error of every server ({} calls, {} refused): {} bytes, from {}",
        sent + bad_inputs().len(),
        largest.errors,
        largest.bytes,
        largest.what
    );
    assert!(
        largest.bytes < MAX_ERROR_BYTES,
        "{} bytes from {}",
        largest.bytes,
        largest.what
    );
}
