//! `psonet demo`: a whole network on loopback, with nothing to prepare.
//!
//! Issues an ephemeral PKI, starts six facility nodes and a gateway in this process (each with
//! its own mTLS listeners and sled store in a temporary directory), loads a year of synthetic
//! reports and exposure into each node through its local listener, then asks the gateway for a
//! network benchmark as a partner would, and prints it with the falls funnel (drawn to an SVG in
//! the temporary directory).

use crate::pki::{self, InitOptions};
use crate::{client, submit, synth, table};
use anyhow::{Context, Result};
use psonet_core::month::Month;
use psonet_core::pb::{self, EventCategory, benchmark_service_client::BenchmarkServiceClient};
use psonet_gateway::{GatewayConfig, RunningGateway};
use psonet_node::{NodeConfig, RunningNode};
use std::io::Write;
use std::time::Instant;

/// Demo facilities: id, staffed beds and reports per bed-year (lakeside reports, and falls,
/// far more than its peers: the funnel plot should single it out).
const FACILITIES: &[(&str, u32, usize)] = &[
    ("st-marys", 320, 4),
    ("county-general", 450, 4),
    ("lakeside", 180, 8),
    ("riverside", 260, 4),
    ("mercy", 210, 4),
    ("valley", 380, 5),
];

/// Asks for the falls benchmark over the year, prints it and draws its funnel plot.
async fn funnel(
    out: &mut impl Write,
    gateway: &str,
    identity: &std::path::Path,
    last_month: Month,
) -> Result<()> {
    let request = pb::NetworkBenchmarkRequest {
        month_from: last_month.minus(11).to_string(),
        month_to: last_month.to_string(),
        metric: "falls".into(),
        ..Default::default()
    };
    let mut client = BenchmarkServiceClient::new(client::channel(gateway, identity)?);
    let response = match client.network_benchmark(request).await {
        Ok(response) => response.into_inner(),
        Err(s) => {
            let peer = format!("the gateway at {gateway}");
            return Err(client::explain(s, gateway, &peer, identity).await);
        }
    };
    writeln!(
        out,
        "\nNetworkBenchmark(metric = falls) over the last 12 months:\n"
    )?;
    write!(out, "{}", table::metric_benchmark(&response))?;
    let path = std::env::temp_dir().join("psonet-demo-funnel.svg");
    if let Some(bench) = &response.metric {
        crate::plot::funnel(bench, &path)?;
        writeln!(out, "funnel plot: {}", path.display())?;
    }
    Ok(())
}

/// Runs the demo, writing progress and the benchmark table to `out`.
pub async fn run(out: &mut impl Write) -> Result<()> {
    let started = Instant::now();
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let layout = pki::init(&InitOptions {
        network: "demo".into(),
        out: dir.path().join("pki"),
        facilities: FACILITIES.iter().map(|(id, ..)| id.to_string()).collect(),
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
        .map(|(i, ((facility, node), (_, beds, per_bed)))| {
            let options = synth::SynthOptions {
                events: *beds as usize * per_bed,
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
        ..Default::default()
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
    funnel(out, &gateway_addr, &layout.partner_identity, last_month).await?;

    gateway.shutdown().await?;
    for node in nodes {
        node.shutdown().await?;
    }
    writeln!(out, "\ndone in {:.1} s", started.elapsed().as_secs_f64())?;
    Ok(())
}
