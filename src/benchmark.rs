//! `psonet benchmark`: asks the gateway for a benchmark and prints it for people (tables) or
//! programs (JSON, CSV), and draws its funnel plot or control chart as SVG.
//!
//! Without `--metric` it prints the category rows it always did; with `--metric` the metric's
//! network benchmark (pooled rate, distribution, funnel), with `--trend` the network u-chart,
//! with `--scorecard` the calling facility's scorecard (its identity must be a facility's).

use crate::client;
use crate::render::{export, plot, table};
use anyhow::{Context, Result, anyhow, bail};
use psonet_core::month::{Month, MonthRange};
use psonet_core::pb::{self, benchmark_service_client::BenchmarkServiceClient};
use psonet_gateway::metric::catalogue::enum_value;
use psonet_gateway::peer_group::add_attribute;
use std::io::Write;
use std::path::{Path, PathBuf};
use tonic::transport::Channel;

/// How to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable tables.
    Table,
    /// The whole response as JSON (proto field names, enum names).
    Json,
    /// One CSV row per facility (funnel), month (trend) or category row.
    Csv,
}

/// Which gateway to ask, as whom, about which months and which facilities: the flags every
/// client of the benchmark service shares (`psonet benchmark`, `psonet report`).
#[derive(Debug, Clone, clap::Args)]
pub struct Query {
    /// The gateway, e.g. 127.0.0.1:7100.
    #[arg(long)]
    pub gateway: String,
    /// Identity directory of a partner or facility client (a facility gets its own figures).
    #[arg(long)]
    pub identity: PathBuf,
    /// First month, YYYY-MM (default: 11 months before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// Last month, YYYY-MM (default: this month).
    #[arg(long)]
    pub to: Option<String>,
    /// Peer group filter KEY=VALUE (repeatable): bed_size_band=100_to_199, teaching=major,
    /// facility_type=critical_access, region=midwest, urbanicity=rural.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
}

impl Query {
    /// The months asked for (see [`period`]).
    pub fn months(&self) -> Result<MonthRange> {
        period(self.from.as_deref(), self.to.as_deref())
    }

    /// The peer group asked for (see [`peer_group`]).
    pub fn peer_group(&self) -> Result<Option<pb::PeerGroup>> {
        peer_group(&self.peers)
    }
}

/// Arguments of `psonet benchmark`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Gateway, identity, months and peers.
    #[command(flatten)]
    pub query: Query,
    /// Categories to show without --metric, e.g. FALL (repeatable; default all).
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// A metric from --list-metrics, e.g. falls.
    #[arg(long)]
    pub metric: Option<String>,
    /// Show the metric's monthly network control chart.
    #[arg(long, conflicts_with = "scorecard")]
    pub trend: bool,
    /// Show the calling facility's scorecard for the metric.
    #[arg(long)]
    pub scorecard: bool,
    /// Laney-adjusted limits for --trend.
    #[arg(long)]
    pub laney: bool,
    /// List the metric catalogue and exit.
    #[arg(long)]
    pub list_metrics: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Draw the funnel plot (--metric, --scorecard) or control chart (--trend) into this SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// A gateway answer of any kind.
enum Answer {
    Metrics(pb::ListMetricsResponse),
    Network(pb::NetworkBenchmarkResponse),
    Trend(pb::TrendResponse),
    Scorecard(pb::FacilityScorecardResponse),
}

/// Runs `psonet benchmark`, writing the answer to `out`.
pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let args = &args;
    let query = &args.query;
    let months = query.months()?;
    let (from, to) = (months.from().to_string(), months.to().to_string());
    let mut client = BenchmarkServiceClient::new(client::channel(&query.gateway, &query.identity)?);
    let answer = match ask(&mut client, args, from, to).await {
        Ok(answer) => answer,
        Err(Ask::Usage(e)) => return Err(e),
        Err(Ask::Call(s)) => {
            let peer = format!("the gateway at {}", query.gateway);
            return Err(client::explain(s, &query.gateway, &peer, &query.identity).await);
        }
    };
    if let Some(path) = &args.plot {
        answer.draw(path)?;
    }
    let text = match args.format {
        Format::Table => answer.table(),
        Format::Json => answer.json()?,
        Format::Csv => answer.csv()?,
    };
    out.write_all(text.as_bytes())?;
    if let Some(path) = &args.plot {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `--from` and `--to` as a range of months: `--to` defaults to this month and `--from` to 11
/// months before `--to` (a year), so a bare command asks for the last twelve months.
pub fn period(from: Option<&str>, to: Option<&str>) -> Result<MonthRange> {
    let to = match to {
        Some(to) => to.parse::<Month>().context("--to")?,
        None => Month::current(),
    };
    let from = match from {
        Some(from) => from.parse::<Month>().context("--from")?,
        None => to.minus(11),
    };
    MonthRange::new(from, to).context("--from and --to")
}

enum Ask {
    Usage(anyhow::Error),
    Call(tonic::Status),
}

async fn ask(
    client: &mut BenchmarkServiceClient<Channel>,
    args: &Args,
    month_from: String,
    month_to: String,
) -> Result<Answer, Ask> {
    if args.list_metrics {
        let r = client.list_metrics(pb::ListMetricsRequest {}).await;
        return r
            .map(|r| Answer::Metrics(r.into_inner()))
            .map_err(Ask::Call);
    }
    let peer_group = args.query.peer_group().map_err(Ask::Usage)?;
    let metric = args.metric.clone().unwrap_or_default();
    if (args.trend || args.scorecard) && metric.is_empty() {
        return Err(Ask::Usage(anyhow::anyhow!(
            "--trend and --scorecard need --metric (see --list-metrics)"
        )));
    }
    if args.trend {
        let req = pb::TrendRequest {
            metric,
            month_from,
            month_to,
            peer_group,
            laney: args.laney,
        };
        let r = client.trend(req).await;
        return r.map(|r| Answer::Trend(r.into_inner())).map_err(Ask::Call);
    }
    if args.scorecard {
        let req = pb::FacilityScorecardRequest {
            metric,
            month_from,
            month_to,
            peer_group,
        };
        let r = client.facility_scorecard(req).await;
        return r
            .map(|r| Answer::Scorecard(r.into_inner()))
            .map_err(Ask::Call);
    }
    let categories = categories(&args.categories).map_err(Ask::Usage)?;
    let req = pb::NetworkBenchmarkRequest {
        month_from,
        month_to,
        categories,
        metric,
        peer_group,
    };
    let r = client.network_benchmark(req).await;
    r.map(|r| Answer::Network(r.into_inner()))
        .map_err(Ask::Call)
}

fn categories(names: &[String]) -> Result<Vec<i32>> {
    names
        .iter()
        .map(|c| {
            enum_value(c, "EVENT_CATEGORY_", |s| {
                pb::EventCategory::from_str_name(s).map(|v| v as i32)
            })
            .with_context(|| format!("--category {c}: unknown category"))
        })
        .collect()
}

/// `--peer KEY=VALUE` flags as a peer group (`None` when there are none).
pub fn peer_group(flags: &[String]) -> Result<Option<pb::PeerGroup>> {
    if flags.is_empty() {
        return Ok(None);
    }
    let mut group = pb::PeerGroup::default();
    for flag in flags {
        let (key, value) = flag
            .split_once('=')
            .with_context(|| format!("--peer {flag}: expected KEY=VALUE"))?;
        add_attribute(&mut group, key, value).map_err(|why| anyhow!("--peer {flag}: {why}"))?;
    }
    Ok(Some(group))
}

impl Answer {
    /// Draws the answer's funnel plot or control chart into `path`.
    fn draw(&self, path: &Path) -> Result<()> {
        match self {
            Answer::Network(r) => match &r.metric {
                Some(b) => plot::funnel(b, path),
                None => bail!("--plot needs --metric (a funnel) or --trend (a control chart)"),
            },
            Answer::Scorecard(card) => plot::funnel(&card.peers.clone().unwrap_or_default(), path),
            Answer::Trend(t) => {
                let metric = t.metric.clone().unwrap_or_default();
                let title = format!("{}: network u-chart", metric.name);
                plot::control_chart(&title, &metric, &t.chart.clone().unwrap_or_default(), path)
            }
            Answer::Metrics(_) => bail!("--plot does not apply to --list-metrics"),
        }
    }

    /// The answer as readable tables.
    fn table(&self) -> String {
        match self {
            Answer::Metrics(m) => table::metrics(m),
            Answer::Network(r) if r.metric.is_some() => table::metric_benchmark(r),
            Answer::Network(r) => table::benchmark(r),
            Answer::Trend(t) => table::trend(t),
            Answer::Scorecard(c) => table::scorecard(c),
        }
    }

    /// The whole answer as JSON.
    fn json(&self) -> Result<String> {
        match self {
            Answer::Metrics(m) => export::json(m, "ListMetricsResponse"),
            Answer::Network(r) => export::json(r, "NetworkBenchmarkResponse"),
            Answer::Trend(t) => export::json(t, "TrendResponse"),
            Answer::Scorecard(c) => export::json(c, "FacilityScorecardResponse"),
        }
    }

    /// The answer's rows as CSV.
    fn csv(&self) -> Result<String> {
        match self {
            Answer::Metrics(m) => export::metrics_csv(m),
            Answer::Network(r) => match &r.metric {
                Some(b) => export::funnel_csv(b),
                None => export::category_rows_csv(r),
            },
            Answer::Trend(t) => export::control_chart_csv(&t.chart.clone().unwrap_or_default()),
            Answer::Scorecard(c) => export::funnel_csv(&c.peers.clone().unwrap_or_default()),
        }
    }
}
