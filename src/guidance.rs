//! `psonet guidance`: the PSO's guidance — what is in force at the gateway and how widely it is
//! adopted (`list`, `adoption`, as a partner or facility), and at a facility's own node what it
//! pulled and the facility's acknowledgement and adoption (`facility`, `acknowledge`, with the
//! facility's client identity).

use crate::benchmark::Format;
use crate::client;
use crate::render::export;
use anyhow::Result;
use psonet_core::pb::{
    self, facility_guidance_service_client::FacilityGuidanceServiceClient,
    guidance_service_client::GuidanceServiceClient,
};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `psonet guidance`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// Where to ask and as whom.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The gateway (list, adoption) or the node's local listener (facility, acknowledge).
    #[arg(long)]
    pub at: String,
    /// Identity directory: a partner or facility client at the gateway, the facility's own
    /// client at its node.
    #[arg(long)]
    pub identity: PathBuf,
    /// Output format (table or json).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// What `psonet guidance` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// The guidance in force at the gateway.
    List(Target),
    /// How many facilities acknowledged and adopted each item (network counts).
    Adoption(Target),
    /// The guidance a facility's node holds, with the facility's status.
    Facility(Target),
    /// Acknowledge an item's current version at the facility's node, optionally adopting it.
    Acknowledge {
        /// Where and as whom.
        #[command(flatten)]
        target: Target,
        /// The guidance id.
        #[arg(long)]
        guidance: String,
        /// Record that the facility adopts it.
        #[arg(long)]
        adopt: bool,
    },
}

/// Runs `psonet guidance`, writing the answer to `out`.
pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let target = match &args.action {
        Action::List(t) | Action::Adoption(t) | Action::Facility(t) => t,
        Action::Acknowledge { target, .. } => target,
    };
    let channel = client::channel(&target.at, &target.identity)?;
    let json = target.format == Format::Json;
    let answer = match &args.action {
        Action::List(_) => GuidanceServiceClient::new(channel)
            .list_guidance(pb::ListGuidanceRequest {})
            .await
            .map(|r| render(&r.into_inner(), "ListGuidanceResponse", json, list_table)),
        Action::Adoption(_) => GuidanceServiceClient::new(channel)
            .guidance_adoption(pb::GuidanceAdoptionRequest {})
            .await
            .map(|r| {
                render(
                    &r.into_inner(),
                    "GuidanceAdoptionResponse",
                    json,
                    adoption_table,
                )
            }),
        Action::Facility(_) => FacilityGuidanceServiceClient::new(channel)
            .list_facility_guidance(pb::ListFacilityGuidanceRequest {})
            .await
            .map(|r| {
                render(
                    &r.into_inner(),
                    "ListFacilityGuidanceResponse",
                    json,
                    held_table,
                )
            }),
        Action::Acknowledge {
            guidance, adopt, ..
        } => FacilityGuidanceServiceClient::new(channel)
            .acknowledge_guidance(pb::AcknowledgeGuidanceRequest {
                guidance_id: guidance.clone(),
                adopt: *adopt,
            })
            .await
            .map(|r| {
                let held = pb::ListFacilityGuidanceResponse {
                    guidance: r.into_inner().guidance.into_iter().collect(),
                };
                render(&held, "ListFacilityGuidanceResponse", json, held_table)
            }),
    };
    let text = match answer {
        Ok(text) => text?,
        Err(status) => {
            let peer = format!("the server at {}", target.at);
            return Err(client::explain(status, &target.at, &peer, &target.identity).await);
        }
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

fn render<T: prost::Message>(
    message: &T,
    name: &str,
    json: bool,
    table: fn(&T) -> String,
) -> Result<String> {
    if json {
        export::json(message, name)
    } else {
        Ok(table(message))
    }
}

fn kind(k: i32) -> &'static str {
    match pb::GuidanceKind::try_from(k) {
        Ok(pb::GuidanceKind::SafetyAlert) => "alert",
        Ok(pb::GuidanceKind::BestPractice) => "practice",
        _ => "?",
    }
}

fn list_table(r: &pb::ListGuidanceResponse) -> String {
    let mut out = format!(
        "{:<24} {:>3} {:<9} {:<11} {:<16} title\n",
        "guidance", "ver", "kind", "published", "practice"
    );
    for i in &r.items {
        let _ = writeln!(
            out,
            "{:<24} {:>3} {:<9} {:<11} {:<16} {}",
            i.guidance_id,
            i.version,
            kind(i.kind),
            i.published,
            i.practice_code,
            i.title
        );
    }
    out
}

fn adoption_table(r: &pb::GuidanceAdoptionResponse) -> String {
    let mut out = format!(
        "{:<24} {:>3} {:>9} {:>12} {:>8}\n",
        "guidance", "ver", "answering", "acknowledged", "adopted"
    );
    for row in &r.rows {
        if row.withheld {
            let _ = writeln!(
                out,
                "{:<24} {:>3} {:>9}  withheld: {}",
                row.guidance_id, row.version, row.facilities_answering, row.withheld_reason
            );
        } else {
            let _ = writeln!(
                out,
                "{:<24} {:>3} {:>9} {:>12} {:>8}",
                row.guidance_id,
                row.version,
                row.facilities_answering,
                row.acknowledged,
                row.adopted
            );
        }
    }
    out
}

fn held_table(r: &pb::ListFacilityGuidanceResponse) -> String {
    let mut out = format!(
        "{:<24} {:>3} {:<9} {:>12} {:<7} title\n",
        "guidance", "ver", "kind", "acknowledged", "adopted"
    );
    for g in &r.guidance {
        let item = g.item.clone().unwrap_or_default();
        let acknowledged = match g.acknowledged_version {
            0 => "no".to_string(),
            v if v == item.version => "yes".to_string(),
            v => format!("v{v} only"),
        };
        let _ = writeln!(
            out,
            "{:<24} {:>3} {:<9} {:>12} {:<7} {}",
            item.guidance_id,
            item.version,
            kind(item.kind),
            acknowledged,
            if g.adopted { "yes" } else { "no" },
            if g.withdrawn {
                format!("{} (withdrawn)", item.title)
            } else {
                item.title
            }
        );
    }
    out
}
