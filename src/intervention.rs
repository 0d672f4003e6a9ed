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
use crate::render::intervention_table::{effect_csv, effect_table, list_table, one_line};
use crate::render::{effect_plot, export};
use anyhow::{Context, Result, anyhow};
use psonet_core::pb::{
    self, benchmark_service_client::BenchmarkServiceClient,
    intervention_service_client::InterventionServiceClient,
};
use psonet_gateway::metric::catalogue::{MetricCatalogue, enum_value};
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
