//! `psonet demo`: a whole network on loopback, with nothing to prepare.
//!
//! Issues an ephemeral PKI, starts five facility nodes and a gateway in this process (each with
//! its own mTLS listeners and sled store in a temporary directory), loads a year of synthetic
//! reports and exposure into each node through its local listener, then asks the gateway for a
//! network benchmark as a partner would, and prints it.

use crate::pki::{self, InitOptions};
use crate::{client, submit, synth, table};
use anyhow::{Context, Result};
use psonet_core::month::Month;
use psonet_core::pb::{self, EventCategory, benchmark_service_client::BenchmarkServiceClient};
use psonet_gateway::{GatewayConfig, RunningGateway};
use psonet_node::{NodeConfig, RunningNode};
use std::io::Write;
use std::time::Instant;

/// Demo facilities: id and staffed beds.
/// Five: a network figure needs at least five contributing facilities.
const FACILITIES: &[(&str, u32)] = &[
    ("st-marys", 320),
    ("county-general", 450),
    ("lakeside", 180),
    ("riverside", 260),
    ("mercy-north", 210),
];
/// Synthetic events per facility.
const EVENTS_PER_FACILITY: usize = 4_000;

/// Runs the demo, writing progress and the benchmark table to `out`.
pub async fn run(out: &mut impl Write) -> Result<()> {
    let started = Instant::now();
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let layout = pki::init(&InitOptions {
        network: "demo".into(),
        out: dir.path().join("pki"),
        facilities: FACILITIES.iter().map(|(id, _)| id.to_string()).collect(),
        hosts: Vec::new(),
        base_port: None,
        years: 1,
    })?;
    writeln!(
        out,
        "issued a CA and certificates for a gateway, {} facilities and a partner",
        FACILITIES.len()
    )?;

    let mut nodes = Vec::new();
    for facility in &layout.facilities {
        let node = RunningNode::start(NodeConfig::load(&facility.node_config)?).await?;
        writeln!(
            out,
            "node {:<15} local {}  federation {}",
            facility.id, node.local_addr, node.federation_addr
        )?;
        nodes.push(node);
    }
    let mut gateway_config = GatewayConfig::load(&layout.gateway_config)?;
    for (entry, node) in gateway_config.config.facilities.iter_mut().zip(&nodes) {
        entry.endpoint = format!("https://127.0.0.1:{}", node.federation_addr.port());
    }
    let gateway = RunningGateway::start(gateway_config).await?;
    writeln!(out, "gateway                  {}", gateway.addr)?;

    let last_month = Month::current();
    let loads = layout
        .facilities
        .iter()
        .zip(&nodes)
        .zip(FACILITIES)
        .enumerate()
        .map(|(i, ((facility, node), (_, beds)))| {
            let options = synth::SynthOptions {
                events: EVENTS_PER_FACILITY,
                months: 12,
                last_month,
                key_prefix: facility.id.clone(),
                beds: *beds,
                seed: i as u64 + 1,
            };
            let addr = node.local_addr.to_string();
            let identity = facility.client_identity.clone();
            async move {
                let summary = submit::events(&addr, &identity, synth::events(&options)).await?;
                submit::exposure(&addr, &identity, synth::exposure(&options)).await?;
                anyhow::Ok(summary)
            }
        });
    for (facility, summary) in layout
        .facilities
        .iter()
        .zip(futures::future::try_join_all(loads).await?)
    {
        writeln!(
            out,
            "loaded {:>5} events and 12 months of patient days into {}",
            summary.accepted, facility.id
        )?;
    }

    let request = pb::NetworkBenchmarkRequest {
        month_from: last_month.minus(5).to_string(),
        month_to: last_month.to_string(),
        categories: [
            EventCategory::Fall,
            EventCategory::Medication,
            EventCategory::PressureInjury,
        ]
        .map(|c| c as i32)
        .to_vec(),
    };
    let gateway_addr = gateway.addr.to_string();
    let response = match BenchmarkServiceClient::new(client::channel(
        &gateway_addr,
        &layout.partner_identity,
    )?)
    .network_benchmark(request.clone())
    .await
    {
        Ok(response) => response.into_inner(),
        Err(s) => {
            let peer = format!("the gateway at {gateway_addr}");
            return Err(client::explain(s, &gateway_addr, &peer, &layout.partner_identity).await);
        }
    };
    writeln!(
        out,
        "\nNetworkBenchmark over mTLS as spiffe://demo/partner/analyst, {} to {}:\n",
        request.month_from, request.month_to
    )?;
    write!(out, "{}", table::benchmark(&response))?;

    gateway.shutdown().await?;
    for node in nodes {
        node.shutdown().await?;
    }
    writeln!(out, "\ndone in {:.1} s", started.elapsed().as_secs_f64())?;
    Ok(())
}
