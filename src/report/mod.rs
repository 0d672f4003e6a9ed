//! `psonet report`: the PSO's periodic report as one self-contained HTML file — benchmarks people
//! read, not one terminal table per call.
//!
//! A partner or PSO analyst gets, for every metric in the gateway's catalogue, the pooled rate
//! with its exact interval, the distribution of facility rates, the funnel plot and the monthly
//! trend with its signals; a facility gets its own scorecard for every metric (its figures
//! named, peers anonymous). Who the report is for comes from the identity's certificate
//! ([`reader`]). The calls run one metric at a time with a progress line each on stderr
//! ([`calls`]); each part of the document is one function over one RPC's response
//! ([`sections`]), assembled with its cover, banner and methods appendix by [`document`]. The
//! file needs nothing else to be read: charts are inline SVG, the style is inline CSS, and there
//! is no script, font or image to fetch, so it opens offline and from an email attachment.
//! `--pdf` prints it with headless Chromium when one is installed ([`pdf`]).
//!
//! A failed call does not lose the report: the file is written with a banner that lists what
//! failed and why, the sections that call fed say so in place, and the command exits non-zero.

pub mod calls;
pub mod document;
mod html;
pub mod pdf;
pub mod reader;
mod redact;
pub mod sections;

use crate::benchmark;
use crate::client;
use anyhow::{Context, Result, bail};
use psonet_core::pb::benchmark_service_client::BenchmarkServiceClient;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Paper size the printed report is laid out for (CSS `@page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Paper {
    /// ISO A4, 210 × 297 mm.
    A4,
    /// US Letter, 8.5 × 11 in.
    Letter,
}

/// Arguments of `psonet report`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Gateway, identity (a partner's gets the network report, a facility client's that
    /// facility's report), months and peers, as for `psonet benchmark`.
    #[command(flatten)]
    pub query: benchmark::Query,
    /// Laney-adjusted limits on the network trend charts.
    #[arg(long)]
    pub laney: bool,
    /// Where to write the HTML report.
    #[arg(long)]
    pub out: PathBuf,
    /// Also print the report to this PDF with headless Chromium (must be installed).
    #[arg(long)]
    pub pdf: Option<PathBuf>,
    /// Paper size for printing.
    #[arg(long, value_enum, default_value_t = Paper::A4)]
    pub paper: Paper,
    /// Longest wait for one call to the gateway, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// Runs `psonet report`: the calls (progress on stderr), then the HTML file, then the PDF.
pub async fn run(args: Args) -> Result<()> {
    let query = &args.query;
    let reader = reader::Reader::from_identity(&query.identity)?;
    let months = query.months()?;
    let peer_group = query.peer_group()?;
    let channel = client::channel(&query.gateway, &query.identity)?;
    let plan = calls::Plan {
        reader: reader.clone(),
        month_from: months.from().to_string(),
        month_to: months.to().to_string(),
        peer_group,
        laney: args.laney,
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    let gateway = calls::Gateway {
        client: BenchmarkServiceClient::new(channel.clone()),
        channel,
        addr: query.gateway.clone(),
        identity: query.identity.clone(),
    };
    let stderr = &mut std::io::stderr();
    let gathered = calls::gather(gateway, &plan, stderr).await;
    let report = document::Report {
        plan: &plan,
        gathered: &gathered,
        paper: args.paper,
        generated: document::utc_now(),
    };
    let html = document::render(&report);
    std::fs::write(&args.out, &html).with_context(|| format!("writing {}", args.out.display()))?;
    let failed = gathered.failures().len();
    writeln!(
        stderr,
        "wrote {} ({} metrics, {} calls, {failed} failed)",
        args.out.display(),
        gathered.metrics.len(),
        gathered.calls()
    )?;
    if let Some(pdf) = &args.pdf {
        pdf::print(&args.out, pdf).await?;
        writeln!(stderr, "wrote {}", pdf.display())?;
    }
    if failed > 0 {
        bail!(
            "the report in {} is partial: {failed} of {} calls failed (its banner lists them)",
            args.out.display(),
            gathered.calls()
        );
    }
    Ok(())
}
