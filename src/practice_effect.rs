//! `psonet practice-effect`: which practices work, network-wide — the gateway's pooled
//! before/after of every facility that adopted a practice, against the facilities that did
//! not, as a table or JSON, and a forest plot as SVG.

use crate::benchmark::Format;
use crate::client;
use crate::render::{export, forest_plot};
use anyhow::Result;
use psonet_core::pb::{self, practice_effect_service_client::PracticeEffectServiceClient};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

/// The τ² estimator of the meta-analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tau2 {
    /// Restricted maximum likelihood.
    Reml,
    /// DerSimonian–Laird.
    Dl,
}

/// Arguments of `psonet practice-effect`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The gateway, e.g. 127.0.0.1:7100.
    #[arg(long)]
    pub gateway: String,
    /// Identity directory of a partner or facility client.
    #[arg(long)]
    pub identity: PathBuf,
    /// The practice code, e.g. fall-bundle.
    #[arg(long)]
    pub practice: String,
    /// A metric from `psonet benchmark --list-metrics`, e.g. falls.
    #[arg(long)]
    pub metric: String,
    /// Months on each side of each adopter's start month: 6, 12, 18 or 24.
    #[arg(long, default_value_t = 12)]
    pub window: u32,
    /// How the between-facility variance is estimated.
    #[arg(long, value_enum, default_value_t = Tau2::Reml)]
    pub tau2: Tau2,
    /// Output format (table or json).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Draw the forest plot into this SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Runs `psonet practice-effect`, writing the answer to `out`.
pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let channel = client::channel(&args.gateway, &args.identity)?;
    let request = pb::PracticeEffectRequest {
        practice_code: args.practice.clone(),
        metric: args.metric.clone(),
        window_months: args.window,
        heterogeneity_estimator: match args.tau2 {
            Tau2::Reml => pb::HeterogeneityEstimator::Reml,
            Tau2::Dl => pb::HeterogeneityEstimator::DersimonianLaird,
        } as i32,
    };
    let answer = match PracticeEffectServiceClient::new(channel)
        .practice_effect(request)
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) => {
            let peer = format!("the gateway at {}", args.gateway);
            return Err(client::explain(s, &args.gateway, &peer, &args.identity).await);
        }
    };
    if let Some(path) = &args.plot {
        forest_plot::forest(&answer, &args.practice, path)?;
        eprintln!("wrote {}", path.display());
    }
    let text = match args.format {
        Format::Json => export::json(&answer, "PracticeEffectResponse")?,
        _ => table(&answer, &args.practice),
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

fn pooled_line(out: &mut String, label: &str, p: &pb::PooledRateRatio) {
    let i = p.interval.unwrap_or_default();
    let prediction = p.prediction.map_or(String::new(), |x| {
        format!(", prediction {:.3} to {:.3}", x.lower, x.upper)
    });
    let _ = writeln!(
        out,
        "{label:<13} {:>2} facilities  RR {:.3} (95% HK {:.3} to {:.3}){prediction}, tau2 {:.4}, I2 {:.0}%",
        p.facilities,
        p.ratio,
        i.lower,
        i.upper,
        p.tau2,
        p.i2 * 100.0
    );
}

fn study_lines(out: &mut String, p: &pb::PooledRateRatio) {
    for s in &p.studies {
        let c = s.counts.unwrap_or_default();
        let i = s.interval.unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<14} {:<8} {:>6} -> {:>6} events  RR {:.3} ({:.3} to {:.3})  weight {:.0}%",
            s.facility,
            s.start_month,
            c.before_events,
            c.after_events,
            s.ratio,
            i.lower,
            i.upper,
            s.weight * 100.0
        );
    }
}

/// The practice effect for people.
pub fn table(r: &pb::PracticeEffectResponse, practice: &str) -> String {
    let metric = r.metric.clone().unwrap_or_default();
    let mut out = format!(
        "{practice}: {} after vs before, {} months each side of each adopter's start month\n\n",
        metric.name, r.window_months
    );
    if let Some(a) = &r.adopters {
        pooled_line(&mut out, "adopters", a);
        study_lines(&mut out, a);
    }
    match &r.non_adopters {
        Some(n) => {
            pooled_line(&mut out, "non-adopters", n);
            study_lines(&mut out, n);
            let i = r.ratio_of_rate_ratios_interval.unwrap_or_default();
            let _ = writeln!(
                out,
                "\nadopters' change relative to non-adopters': {:.3} (95% {:.3} to {:.3})",
                r.ratio_of_rate_ratios, i.lower, i.upper
            );
        }
        None => out.push_str("non-adopters: too few with usable monthly counts to pool\n"),
    }
    for e in &r.excluded {
        let _ = writeln!(out, "excluded: {e}");
    }
    out
}
