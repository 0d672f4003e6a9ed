//! `psonet import`: years of a facility's history in one command.
//!
//! Reads NDJSON or CSV, streams events to the node's local listener through `SubmitEvents` in
//! chunks (each chunk is durable when its summary arrives), sends exposure records through
//! `RecordExposure`, shows progress with rate and ETA, and reports every rejected line with its
//! field and reason. Every event carries an idempotency key, so re-running the same file adds
//! nothing, and re-running an interrupted import finishes the job.

use crate::client::{channel, explain, submit};
use crate::ndjson::{Codec, Line, csv_row};
use anyhow::{Context, Result, bail};
use psonet_core::pb::{self, reporting_service_client::ReportingServiceClient};
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Events sent per `SubmitEvents` stream: a chunk is acknowledged as a whole.
const CHUNK_EVENTS: usize = 5_000;
/// Exposure records per `RecordExposure` request.
const CHUNK_EXPOSURE: usize = 10_000;
/// Rejected lines printed to the terminal (all go to `--errors`).
const PRINTED_REJECTIONS: usize = 50;

/// Arguments of `psonet import`: what to import, and where.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The node's local listener, e.g. 127.0.0.1:7111.
    #[arg(long)]
    pub node: String,
    /// Identity directory of a facility client (ca.pem, cert.pem, key.pem).
    #[arg(long)]
    pub identity: PathBuf,
    /// Write every rejected line (line, field, reason) to this CSV file.
    #[arg(long)]
    pub errors: Option<PathBuf>,
    /// The file: NDJSON (one event or exposure record per line) or .csv.
    pub file: PathBuf,
}

/// One rejected line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 1-based line (NDJSON) or row (CSV, header excluded) number.
    pub line: u64,
    /// The field at fault ("" when the line did not parse).
    pub field: String,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// Lines read.
    pub lines: u64,
    /// Events newly stored.
    pub accepted: u64,
    /// Events already stored (same idempotency key).
    pub duplicates: u64,
    /// Exposure records written.
    pub exposure: u64,
    /// Every rejected line.
    pub rejections: Vec<Rejection>,
    /// Time taken.
    pub elapsed: Duration,
}

/// A parsed chunk: events with their line numbers, exposure records, parse failures.
#[derive(Default)]
struct Chunk {
    events: Vec<(u64, pb::Event)>,
    exposure: Vec<pb::ExposureRecord>,
    rejections: Vec<Rejection>,
    lines: u64,
}

/// Runs `psonet import`: the import, with progress on standard error, then its summary and the
/// first rejections on `out`; `Err` when any line was rejected.
pub async fn run(args: Args, out: &mut impl Write) -> Result<()> {
    let summary = import(&args).await?;
    report(&summary, &args, out)
}

/// Imports the file, printing progress to standard error.
pub async fn import(options: &Args) -> Result<ImportSummary> {
    let started = Instant::now();
    let file = std::fs::File::open(&options.file)
        .with_context(|| format!("opening {}", options.file.display()))?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let read_bytes = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Chunk>>(2);
    let csv = options
        .file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let counter = read_bytes.clone();
    std::thread::spawn(move || read_chunks(file, csv, counter, &tx));

    let client = ReportingServiceClient::new(channel(&options.node, &options.identity)?);
    let mut summary = ImportSummary::default();
    let mut progress = Progress::new(total_bytes);
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        summary.lines += chunk.lines;
        summary.rejections.extend(chunk.rejections);
        send_exposure(&client, chunk.exposure, options, &mut summary).await?;
        send_events(&client, chunk.events, options, &mut summary).await?;
        progress.show(read_bytes.load(Ordering::Relaxed), &summary);
    }
    progress.finish();
    summary.rejections.sort_by_key(|r| r.line);
    summary.elapsed = started.elapsed();
    if let Some(path) = &options.errors {
        write_rejections(path, &summary.rejections)?;
    }
    Ok(summary)
}

/// Reads the file into chunks on a plain thread (parsing is CPU work).
fn read_chunks(
    file: std::fs::File,
    csv: bool,
    read: Arc<AtomicU64>,
    tx: &tokio::sync::mpsc::Sender<Result<Chunk>>,
) {
    let send = |chunk| tx.blocking_send(chunk).is_ok();
    let codec = match Codec::new() {
        Ok(c) => c,
        Err(e) => {
            send(Err(e));
            return;
        }
    };
    let counted = CountingReader { inner: file, read };
    let mut chunk = Chunk::default();
    let add = |chunk: &mut Chunk, number: u64, parsed: Result<Line>| {
        chunk.lines += 1;
        match parsed {
            Ok(Line::Event(e)) => chunk.events.push((number, *e)),
            Ok(Line::Exposure(x)) => chunk.exposure.push(x),
            Err(e) => chunk.rejections.push(Rejection {
                line: number,
                field: String::new(),
                reason: format!("{e:#}"),
            }),
        }
    };
    if csv {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(counted);
        let headers = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                send(Err(anyhow::anyhow!("reading the CSV header: {e}")));
                return;
            }
        };
        for (i, row) in reader.records().enumerate() {
            let parsed = row
                .map_err(anyhow::Error::from)
                .and_then(|r| codec.parse_value(csv_row(&headers, &r)));
            add(&mut chunk, i as u64 + 1, parsed);
            if chunk.events.len() >= CHUNK_EVENTS && !send(Ok(std::mem::take(&mut chunk))) {
                return;
            }
        }
    } else {
        for (i, line) in BufReader::new(counted).lines().enumerate() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    send(Err(anyhow::anyhow!("reading line {}: {e}", i + 1)));
                    return;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            add(&mut chunk, i as u64 + 1, codec.parse_json(&line));
            if chunk.events.len() >= CHUNK_EVENTS && !send(Ok(std::mem::take(&mut chunk))) {
                return;
            }
        }
    }
    send(Ok(chunk));
}

async fn send_events(
    client: &ReportingServiceClient<Channel>,
    events: Vec<(u64, pb::Event)>,
    options: &Args,
    summary: &mut ImportSummary,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let (lines, events): (Vec<u64>, Vec<pb::Event>) = events.into_iter().unzip();
    let answer = match submit::stream(&mut client.clone(), events).await {
        Ok(answer) => answer,
        Err(s) => return Err(node_failure(s, options).await),
    };
    summary.accepted += answer.accepted;
    summary.duplicates += answer.duplicates;
    for r in answer.rejections {
        let line = lines.get(r.index as usize).copied().unwrap_or(0);
        for v in r.violations {
            summary.rejections.push(Rejection {
                line,
                field: v.field,
                reason: v.description,
            });
        }
    }
    Ok(())
}

async fn send_exposure(
    client: &ReportingServiceClient<Channel>,
    records: Vec<pb::ExposureRecord>,
    options: &Args,
    summary: &mut ImportSummary,
) -> Result<()> {
    for batch in records.chunks(CHUNK_EXPOSURE) {
        let request = pb::RecordExposureRequest {
            records: batch.to_vec(),
        };
        match client.clone().record_exposure(request).await {
            Ok(r) => summary.exposure += u64::from(r.into_inner().recorded),
            Err(s) => return Err(node_failure(s, options).await),
        }
    }
    Ok(())
}

/// A failed call to the node, explained.
async fn node_failure(status: tonic::Status, options: &Args) -> anyhow::Error {
    let peer = format!("the node at {}", options.node);
    explain(status, &options.node, &peer, &options.identity).await
}

fn write_rejections(path: &Path, rejections: &[Rejection]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    w.write_record(["line", "field", "reason"])?;
    for r in rejections {
        w.write_record([
            r.line.to_string().as_str(),
            r.field.as_str(),
            r.reason.as_str(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Prints the summary and the first rejections; `Err` when any line was rejected.
fn report(summary: &ImportSummary, options: &Args, out: &mut impl Write) -> Result<()> {
    let secs = summary.elapsed.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "imported {}: {} lines; events: {} accepted, {} duplicates, {} rejected; exposure: {} records; {:.1} s ({:.0} events/s)",
        options.file.display(),
        summary.lines,
        summary.accepted,
        summary.duplicates,
        rejected_lines(summary),
        summary.exposure,
        secs,
        (summary.accepted + summary.duplicates) as f64 / secs
    )?;
    for r in summary.rejections.iter().take(PRINTED_REJECTIONS) {
        let field = if r.field.is_empty() {
            String::new()
        } else {
            format!("{}: ", r.field)
        };
        writeln!(out, "  line {}: {field}{}", r.line, r.reason)?;
    }
    if summary.rejections.len() > PRINTED_REJECTIONS {
        let more = summary.rejections.len() - PRINTED_REJECTIONS;
        let hint = options
            .errors
            .as_ref()
            .map_or(" (use --errors FILE for all)".to_string(), |p| {
                format!(" (all in {})", p.display())
            });
        writeln!(out, "  … and {more} more{hint}")?;
    }
    match rejected_lines(summary) {
        0 => Ok(()),
        n => bail!(
            "{n} lines were rejected; fix them and import the file again (accepted lines are not stored twice)"
        ),
    }
}

fn rejected_lines(summary: &ImportSummary) -> usize {
    let mut lines: Vec<u64> = summary.rejections.iter().map(|r| r.line).collect();
    lines.dedup();
    lines.len()
}

struct CountingReader {
    inner: std::fs::File,
    read: Arc<AtomicU64>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A progress line on standard error: redrawn on a terminal, printed every few seconds
/// otherwise (logs, CI).
struct Progress {
    total: u64,
    started: Instant,
    last: Instant,
    tty: bool,
}

impl Progress {
    fn new(total: u64) -> Self {
        let now = Instant::now();
        Self {
            total,
            started: now,
            last: now,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, read: u64, s: &ImportSummary) {
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let fraction = if self.total == 0 {
            1.0
        } else {
            read as f64 / self.total as f64
        };
        let eta = if fraction > 0.0 {
            secs / fraction - secs
        } else {
            0.0
        };
        let line = format!(
            "{:>5.1}%  {} lines  {:.0} events/s  ETA {}:{:02}",
            fraction * 100.0,
            s.lines,
            (s.accepted + s.duplicates) as f64 / secs,
            eta as u64 / 60,
            eta as u64 % 60
        );
        if self.tty {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}
