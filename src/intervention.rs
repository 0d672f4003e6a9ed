//! `psonet intervention`: a facility records the practices it puts in place and asks whether
//! its own rates changed after them, on its node's local listener (with its own identity).
//!
//! `record`, `amend`, `end` and `list` keep the register; `effect` prints the facility's own
//! before/after for one intervention and metric — the exact rate ratio and the interrupted time
//! series — as a table, JSON or CSV, and draws the series with its fitted segments as SVG. The
//! metric's definition is taken from the built-in catalogue (the one a gateway starts with).

use crate::benchmark::Format;
use crate::client;
use crate::intervention_comparison::compare;
use crate::render::{effect_plot, export};
use anyhow::{Context, Result, anyhow};
use psonet_core::pb::{
    self, benchmark_service_client::BenchmarkServiceClient,
    intervention_service_client::InterventionServiceClient,
};
use psonet_gateway::metric::catalogue::{MetricCatalogue, enum_value};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use tonic::transport::Channel;

/// Arguments of `psonet intervention`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The node's local listener, e.g. 127.0.0.1:7111.
    #[arg(long)]
    pub node: String,
    /// Identity directory of the facility's own client (e.g. pki/facility-1/client).
    #[arg(long)]
    pub identity: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// What `psonet intervention` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Record an intervention (recording the same id and content again changes nothing).
    Record(Definition),
    /// Correct a recorded intervention, with a reason.
    Amend {
        /// The corrected intervention.
        #[command(flatten)]
        definition: Definition,
        /// Why it was corrected.
        #[arg(long)]
        reason: String,
    },
    /// End an intervention in a month (its last month in force).
    End {
        /// The intervention's id.
        #[arg(long)]
        intervention: String,
        /// Its last month in force, YYYY-MM.
        #[arg(long)]
        month: String,
    },
    /// List the recorded interventions.
    List {
        /// Only this practice.
        #[arg(long)]
        practice: Option<String>,
        /// Output format (table or json).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The facility's own before/after for an intervention and a metric.
    Effect {
        /// The intervention's id.
        #[arg(long)]
        intervention: String,
        /// A built-in metric, e.g. falls.
        #[arg(long)]
        metric: String,
        /// Months on each side of the start month (2 to 60).
        #[arg(long, default_value_t = 12)]
        window: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Draw the series, the fitted segments and the start month into this SVG.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Compare with the network's change over the same months, asked of this gateway
        /// (with the same facility identity): the ratio of rate ratios, in the table.
        #[arg(long)]
        gateway: Option<String>,
    },
}

/// An intervention as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct Definition {
    /// The facility's id for it.
    #[arg(long = "id")]
    pub id: String,
    /// The practice code, e.g. fall-bundle.
    #[arg(long)]
    pub practice: String,
    /// A short title.
    #[arg(long)]
    pub title: String,
    /// First month in force, YYYY-MM.
    #[arg(long)]
    pub start: String,
    /// Last month in force, YYYY-MM.
    #[arg(long)]
    pub end: Option<String>,
    /// A unit type it covers, e.g. MED_SURG (repeatable; default every unit).
    #[arg(long = "unit")]
    pub units: Vec<String>,
    /// A metric it targets, e.g. falls (repeatable; default any).
    #[arg(long = "target-metric")]
    pub metrics: Vec<String>,
    /// Notes for the facility's own staff (never leave the node).
    #[arg(long, default_value = "")]
    pub narrative: String,
}

impl Definition {
    fn to_wire(&self) -> Result<pb::Intervention> {
        let unit_types = self
            .units
            .iter()
            .map(|u| {
                enum_value(u, "UNIT_TYPE_", |s| {
                    pb::UnitType::from_str_name(s).map(|v| v as i32)
                })
                .with_context(|| format!("--unit {u}: unknown unit type"))
            })
            .collect::<Result<_>>()?;
        Ok(pb::Intervention {
            intervention_id: self.id.clone(),
            practice_code: self.practice.clone(),
            title: self.title.clone(),
            start_month: self.start.clone(),
            end_month: self.end.clone().unwrap_or_default(),
            unit_types,
            target_metric_ids: self.metrics.clone(),
            narrative: self.narrative.clone(),
            revision: 0,
        })
    }
}

/// The built-in metric `id`.
pub fn builtin_metric(id: &str) -> Result<pb::Metric> {
    let catalogue = MetricCatalogue::default();
    catalogue
        .get(id)
        .cloned()
        .ok_or_else(|| anyhow!("--metric {id}: not a built-in metric ({})", catalogue.ids()))
}

/// Runs `psonet intervention`, writing the answer to `out`.
pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let mut client = InterventionServiceClient::new(client::channel(&args.node, &args.identity)?);
    let text = match act(&mut client, &args.action, &args.identity).await {
        Ok(text) => text,
        Err(Failure::Usage(e)) => return Err(e),
        Err(Failure::Call(s)) => {
            let peer = format!("the node at {}", args.node);
            return Err(client::explain(s, &args.node, &peer, &args.identity).await);
        }
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

enum Failure {
    Usage(anyhow::Error),
    Call(tonic::Status),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Usage(e)
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        Failure::Call(s)
    }
}

/// The network comparison as a line of the table (or why there is none).
async fn comparison_line(
    gateway: &str,
    identity: &std::path::Path,
    r: &pb::InterventionEffectResponse,
) -> String {
    let compared = async {
        let channel = client::channel(gateway, identity)?;
        compare(&mut BenchmarkServiceClient::new(channel), r).await
    }
    .await;
    match compared {
        Ok(c) => format!(
            "\nnetwork over the same months: {} -> {} events; this facility's rate ratio over \
             the network's: {:.3} (95% {:.3} to {:.3})\n",
            c.network.before.events,
            c.network.after.events,
            c.ratio.ratio,
            c.ratio.interval.lower,
            c.ratio.interval.upper
        ),
        Err(e) => format!("\nno network comparison: {e:#}\n"),
    }
}

async fn act(
    client: &mut InterventionServiceClient<Channel>,
    action: &Action,
    identity: &std::path::Path,
) -> Result<String, Failure> {
    Ok(match action {
        Action::Record(d) => {
            let intervention = Some(d.to_wire()?);
            let r = client
                .record_intervention(pb::RecordInterventionRequest { intervention })
                .await?
                .into_inner();
            let verb = if r.duplicate {
                "already recorded"
            } else {
                "recorded"
            };
            one_line(verb, r.intervention.unwrap_or_default())
        }
        Action::Amend { definition, reason } => {
            let r = client
                .amend_intervention(pb::AmendInterventionRequest {
                    intervention: Some(definition.to_wire()?),
                    reason: reason.clone(),
                })
                .await?
                .into_inner();
            let verb = if r.unchanged { "unchanged" } else { "amended" };
            one_line(verb, r.intervention.unwrap_or_default())
        }
        Action::End {
            intervention,
            month,
        } => {
            let r = client
                .end_intervention(pb::EndInterventionRequest {
                    intervention_id: intervention.clone(),
                    end_month: month.clone(),
                })
                .await?
                .into_inner();
            one_line("ended", r.intervention.unwrap_or_default())
        }
        Action::List { practice, format } => {
            let r = client
                .list_interventions(pb::ListInterventionsRequest {
                    practice_code: practice.clone().unwrap_or_default(),
                })
                .await?
                .into_inner();
            match format {
                Format::Json => export::json(&r, "ListInterventionsResponse")?,
                _ => list_table(&r),
            }
        }
        Action::Effect {
            intervention,
            metric,
            window,
            format,
            plot,
            gateway,
        } => {
            let r = client
                .intervention_effect(pb::InterventionEffectRequest {
                    intervention_id: intervention.clone(),
                    metric: Some(builtin_metric(metric)?),
                    window_months: *window,
                })
                .await?
                .into_inner();
            if let Some(path) = plot {
                effect_plot::effect(&r, path)?;
                eprintln!("wrote {}", path.display());
            }
            match format {
                Format::Table => {
                    let mut table = effect_table(&r);
                    if let Some(gateway) = gateway {
                        table.push_str(&comparison_line(gateway, identity, &r).await);
                    }
                    table
                }
                Format::Json => export::json(&r, "InterventionEffectResponse")?,
                Format::Csv => effect_csv(&r)?,
            }
        }
    })
}

fn one_line(verb: &str, i: pb::Intervention) -> String {
    format!(
        "{verb} {} (practice {}, from {}{}, revision {})\n",
        i.intervention_id,
        i.practice_code,
        i.start_month,
        if i.end_month.is_empty() {
            String::new()
        } else {
            format!(" to {}", i.end_month)
        },
        i.revision
    )
}

fn list_table(r: &pb::ListInterventionsResponse) -> String {
    let mut out = format!(
        "{:<20} {:<20} {:<8} {:<8} {:>3}  title\n",
        "intervention", "practice", "start", "end", "rev"
    );
    for i in &r.interventions {
        let _ = writeln!(
            out,
            "{:<20} {:<20} {:<8} {:<8} {:>3}  {}",
            i.intervention_id, i.practice_code, i.start_month, i.end_month, i.revision, i.title
        );
    }
    out
}

/// The before/after for people: counts, rate ratio, ITS and the monthly series.
pub fn effect_table(r: &pb::InterventionEffectResponse) -> String {
    let metric = r.metric.clone().unwrap_or_default();
    let i = r.intervention.clone().unwrap_or_default();
    let c = r.counts.unwrap_or_default();
    let per = |events: u64, exposure: u64| {
        if exposure == 0 {
            0.0
        } else {
            events as f64 / exposure as f64 * metric.multiplier
        }
    };
    let mut out = format!(
        "{} ({}) from {}, {} {}, {} months each side (start month left out)\n\n",
        i.intervention_id,
        i.practice_code,
        i.start_month,
        metric.name,
        metric.unit,
        r.window_months
    );
    let _ = writeln!(
        out,
        "before  {:>6} events  {:>10} exposure  {:>2} months  rate {:.2}",
        c.before_events,
        c.before_exposure,
        c.before_months,
        per(c.before_events, c.before_exposure)
    );
    let _ = writeln!(
        out,
        "after   {:>6} events  {:>10} exposure  {:>2} months  rate {:.2}",
        c.after_events,
        c.after_exposure,
        c.after_months,
        per(c.after_events, c.after_exposure)
    );
    if let Some(rr) = &r.rate_ratio {
        let e = rr.exact.unwrap_or_default();
        let _ = writeln!(
            out,
            "rate ratio after/before {:.3} (exact 95% {:.3} to {:.3}), mid-P p = {:.4}",
            rr.ratio, e.lower, e.upper, rr.mid_p_value
        );
    }
    match &r.its {
        Some(its) => {
            let l = its.level_change_interval.unwrap_or_default();
            let t = its.trend_change_interval.unwrap_or_default();
            let _ = writeln!(
                out,
                "interrupted time series: level change {:.3} (95% {:.3} to {:.3}), trend change \
                 {:.4}/month (95% {:.4} to {:.4}), dispersion {:.2}",
                its.level_change,
                l.lower,
                l.upper,
                its.trend_change,
                t.lower,
                t.upper,
                its.dispersion
            );
        }
        None => {
            let _ = writeln!(
                out,
                "interrupted time series not fitted: {}",
                r.its_not_fitted
            );
        }
    }
    let _ = writeln!(out, "\nmonth     events  exposure    rate  fitted");
    for m in &r.series {
        let _ = writeln!(
            out,
            "{:<8} {:>7} {:>9} {:>7.2} {:>7.2}",
            m.month,
            m.events,
            m.exposure,
            per(m.events, m.exposure),
            m.fitted_rate
        );
    }
    out
}

fn effect_csv(r: &pb::InterventionEffectResponse) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "month",
        "events",
        "exposure",
        "fitted_rate",
        "counterfactual_rate",
    ])?;
    for m in &r.series {
        w.serialize((
            &m.month,
            m.events,
            m.exposure,
            m.fitted_rate,
            m.counterfactual_rate,
        ))?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
