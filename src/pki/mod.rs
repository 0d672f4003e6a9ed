//! `psonet pki`: a development certificate authority and every identity a network needs.
//!
//! `psonet pki init` creates a CA and the identities and example configs of a whole network;
//! `psonet pki add-facility` issues one more facility's from the same CA. Production sites bring
//! their own CA; these certificates are for demos, tests and pilots.

mod authority;
mod example_config;
mod layout;

pub use authority::{Authority, IssuedIdentity, Usage};
pub use layout::{
    AddFacilityOptions, FacilityLayout, HostName, HostOwner, InitOptions, NetworkLayout,
    add_facility, init, registry_entry,
};

use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `psonet pki`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create a CA, certificates for a gateway, facilities and a partner, and example configs.
    Init(InitArgs),
    /// Issue a node and a client identity for one more facility from an existing CA, with its
    /// node.toml, under <CA DIR>/<FACILITY>; prints the gateway's registry entry.
    AddFacility(AddFacilityArgs),
}

/// Arguments of `psonet pki init`.
#[derive(Debug, clap::Args)]
struct InitArgs {
    /// Network name (the SPIFFE trust domain), e.g. midwest-pso.
    #[arg(long)]
    network: String,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Number of facilities, named facility-1.. (ignored when --facility is given). A network
    /// figure needs 5 facilities by default.
    #[arg(long, default_value_t = 5)]
    facilities: usize,
    /// A facility id (repeatable).
    #[arg(long = "facility")]
    facility_ids: Vec<String>,
    /// A host name or IP and the one server certificate it goes on, as OWNER=NAME: e.g.
    /// gateway=pso.example.org, facility-1=node1.example.org (repeatable). Every server
    /// certificate also names localhost and 127.0.0.1.
    #[arg(long = "host", value_name = "OWNER=NAME")]
    hosts: Vec<HostName>,
    /// First port of the example configs: gateway on it (its link listener on +43), facility i
    /// on +10i+1 and +10i+2.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// Years the certificates are valid.
    #[arg(long, default_value_t = 2)]
    years: i32,
    /// Do nothing (and succeed) when --out already holds a CA, e.g. on a restart.
    #[arg(long)]
    if_missing: bool,
}

/// Arguments of `psonet pki add-facility`.
#[derive(Debug, clap::Args)]
struct AddFacilityArgs {
    /// Directory holding the network's ca.pem and ca.key (e.g. the --out of pki init).
    #[arg(long)]
    ca: PathBuf,
    /// Network name (the SPIFFE trust domain), as in the CA's other certificates.
    #[arg(long)]
    network: String,
    /// The new facility's id.
    #[arg(long)]
    facility: String,
    /// Host name or IP the node is reached at (repeatable); the first goes into the
    /// registry entry.
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// Port of the node's local listener.
    #[arg(long, default_value_t = 7111)]
    local_port: u16,
    /// Port of the node's federation listener.
    #[arg(long, default_value_t = 7112)]
    federation_port: u16,
    /// Port of the gateway's link listener (for a node that dials out instead of listening).
    #[arg(long, default_value_t = 7100 + layout::LINK_OFFSET)]
    link_port: u16,
    /// Years the certificates are valid.
    #[arg(long, default_value_t = 2)]
    years: i32,
}

/// Runs `psonet pki …`, telling `out` what was written and what to run next.
pub fn run(args: Args, out: &mut impl Write) -> Result<()> {
    match args.command {
        Command::Init(args) => run_init(args, out),
        Command::AddFacility(args) => run_add_facility(args, out),
    }
}

fn run_init(args: InitArgs, out: &mut impl Write) -> Result<()> {
    if args.if_missing && args.out.join("ca.pem").exists() {
        writeln!(out, "{} already holds a CA; kept it", args.out.display())?;
        return Ok(());
    }
    let facilities = if args.facility_ids.is_empty() {
        (1..=args.facilities)
            .map(|i| format!("facility-{i}"))
            .collect()
    } else {
        args.facility_ids
    };
    let layout = init(&InitOptions {
        network: args.network,
        out: args.out,
        facilities,
        hosts: args.hosts,
        base_port: Some(args.base_port),
        years: args.years,
    })?;
    describe_layout(&layout, out)
}

fn run_add_facility(args: AddFacilityArgs, out: &mut impl Write) -> Result<()> {
    let host = args
        .hosts
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let added = add_facility(&AddFacilityOptions {
        ca_dir: args.ca,
        network: args.network,
        facility: args.facility,
        hosts: args.hosts,
        ports: (args.local_port, args.federation_port),
        link_port: args.link_port,
        years: args.years,
    })?;
    writeln!(
        out,
        "facility {}: psonet node --config {}\n  client identity {}\n\
         the example config listens on 127.0.0.1: change local.listen and \
         federation.listen for a real host.\nadd to the gateway's registry:\n{}",
        added.id,
        added.node_config.display(),
        added.client_identity.display(),
        registry_entry(&added.id, &host, args.federation_port)
    )?;
    Ok(())
}

/// What `pki init` wrote and the command that runs each server.
fn describe_layout(layout: &NetworkLayout, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "wrote a CA, certificates and configs to {}",
        layout.out.display()
    )?;
    writeln!(
        out,
        "  gateway:  psonet gateway --config {}",
        layout.gateway_config.display()
    )?;
    for f in &layout.facilities {
        writeln!(
            out,
            "  {:<9} psonet node --config {}",
            format!("{}:", f.id),
            f.node_config.display()
        )?;
        writeln!(
            out,
            "  {:<9} client identity {}",
            "",
            f.client_identity.display()
        )?;
    }
    writeln!(
        out,
        "  partner:  client identity {}",
        layout.partner_identity.display()
    )?;
    writeln!(
        out,
        "keep {} offline: it signs every identity of the network",
        layout.out.join("ca.key").display()
    )?;
    Ok(())
}
