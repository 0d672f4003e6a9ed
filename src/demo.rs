//! `psonet demo`: a whole network on loopback, with nothing to prepare.
//!
//! Issues an ephemeral PKI, starts six facility nodes and a gateway in this process (each with
//! its own mTLS listeners and sled store in a temporary directory), loads a year of synthetic
//! reports and exposure into each node through its local listener, then asks the gateway as a
//! partner would for the network's category table (exact counts, opened by secure aggregation),
//! the network trend of falls with injury, and the falls benchmark with its funnel (drawn to an
//! SVG in the temporary directory).

use crate::network::{Network, Servers};
use crate::render::{plot, table};
use crate::{client, synth};
use anyhow::Result;
use psonet_core::month::Month;
use psonet_core::pb::{self, EventCategory, benchmark_service_client::BenchmarkServiceClient};
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

/// Runs the demo, writing progress and the benchmark tables to `out`.
pub async fn run(out: &mut impl Write) -> Result<()> {
    let started = Instant::now();
    let mut net = Network::builder("demo")
        .facility_ids(FACILITIES.iter().map(|(id, ..)| *id))
        .servers(Servers::InProcess)
        .start()
        .await?;
    writeln!(
        out,
        "issued a CA and certificates for a gateway, {} facilities and a partner",
        FACILITIES.len()
    )?;
    for node in &net.nodes {
        let federation = node
            .federation()
            .map_or_else(|| "none (dials out)".to_string(), |a| a.to_string());
        writeln!(
            out,
            "node {:<15} local {}  federation {federation}",
            node.id,
            node.local(),
        )?;
    }
    net.start_gateway(|_| {}).await?;
    writeln!(out, "gateway                  {}", net.gateway_addr()?)?;

    let last_month = Month::current();
    let summaries = net
        .load_synthetic(|i, node| {
            let (_, beds, per_bed) = FACILITIES[i];
            synth::SynthOptions {
                events: beds as usize * per_bed,
                months: 12,
                last_month,
                key_prefix: node.id.clone(),
                beds,
                seed: i as u64 + 1,
            }
        })
        .await?;
    for (node, summary) in net.nodes.iter().zip(summaries) {
        writeln!(
            out,
            "loaded {:>5} events and 12 months of patient days into {}",
            summary.accepted, node.id
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
    let response = benchmark(&net, request.clone()).await?;
    writeln!(
        out,
        "\nNetworkBenchmark over mTLS as spiffe://demo/partner/analyst, {} to {}:\n",
        request.month_from, request.month_to
    )?;
    write!(out, "{}", table::benchmark(&response))?;
    injurious_falls(out, &net, last_month).await?;
    funnel(out, &net, last_month).await?;

    net.shutdown().await?;
    writeln!(out, "\ndone in {:.1} s", started.elapsed().as_secs_f64())?;
    Ok(())
}

/// Asks for the network trend of falls with injury over the year — a rare harm, a few a month
/// at each facility — and prints it.
async fn injurious_falls(out: &mut impl Write, net: &Network, last_month: Month) -> Result<()> {
    let gateway = net.gateway_addr()?.to_string();
    let identity = &net.layout.partner_identity;
    let request = pb::TrendRequest {
        metric: "falls-with-injury".into(),
        month_from: last_month.minus(11).to_string(),
        month_to: last_month.to_string(),
        ..Default::default()
    };
    let response = match BenchmarkServiceClient::new(client::channel(&gateway, identity)?)
        .trend(request)
        .await
    {
        Ok(response) => response.into_inner(),
        Err(s) => {
            let peer = format!("the gateway at {gateway}");
            return Err(client::explain(s, &gateway, &peer, identity).await);
        }
    };
    writeln!(
        out,
        "\nTrend(metric = falls-with-injury) over the last 12 months:\n"
    )?;
    write!(out, "{}", table::trend(&response))?;
    Ok(())
}

/// Asks for the falls benchmark over the year, prints it and draws its funnel plot.
async fn funnel(out: &mut impl Write, net: &Network, last_month: Month) -> Result<()> {
    let request = pb::NetworkBenchmarkRequest {
        month_from: last_month.minus(11).to_string(),
        month_to: last_month.to_string(),
        metric: "falls".into(),
        ..Default::default()
    };
    let response = benchmark(net, request).await?;
    writeln!(
        out,
        "\nNetworkBenchmark(metric = falls) over the last 12 months:\n"
    )?;
    write!(out, "{}", table::metric_benchmark(&response))?;
    let path = std::env::temp_dir().join("psonet-demo-funnel.svg");
    if let Some(bench) = &response.metric {
        plot::funnel(bench, &path)?;
        writeln!(out, "funnel plot: {}", path.display())?;
    }
    Ok(())
}

/// Asks the gateway for `request` as the partner; a failure says why in plain words.
async fn benchmark(
    net: &Network,
    request: pb::NetworkBenchmarkRequest,
) -> Result<pb::NetworkBenchmarkResponse> {
    let gateway = net.gateway_addr()?.to_string();
    let identity = &net.layout.partner_identity;
    match BenchmarkServiceClient::new(client::channel(&gateway, identity)?)
        .network_benchmark(request)
        .await
    {
        Ok(response) => Ok(response.into_inner()),
        Err(s) => {
            let peer = format!("the gateway at {gateway}");
            Err(client::explain(s, &gateway, &peer, identity).await)
        }
    }
}
