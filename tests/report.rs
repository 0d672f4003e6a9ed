//! `psonet report` end to end over eight real nodes and a gateway (real processes): the network
//! report and a facility's report are written, checked as text (one section per catalogue
//! metric, a progress line per metric, no facility id in the network report and no other
//! facility's id in a facility's, nothing outside the file referred to), then rendered in
//! headless Chromium and checked from the DOM it built (every section, every chart titled, the
//! headings in order, no request made with the network disabled), screenshotted, and printed
//! to PDF on A4 and Letter. A report asked of a gateway that is gone is still written, with a
//! banner, and exits non-zero; `--pdf` without Chromium says what to install.
//!
//! The browser part needs Debian's `chromium` (installed by `.ci/browser-setup`). Without it the
//! test says so loudly and skips that part — except in CI (`CI` set), where it fails.
//! Artefacts (HTML, PDF, the PNG of the first page) go to `target/tmp/report/`.

mod common;

use common::*;
use psonet::report::pdf::{file_url, find_chromium, headless_flags};
use psonet::synth::SynthOptions;
use psonet_core::month::Month;
use psonet_core::pb;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Facility ids, staffed beds and reports per bed-year; lakeside-medical reports far more than
/// its peers, so the funnel has a point beyond its limits.
const FACILITIES: [(&str, u32, usize); 8] = [
    ("st-marys", 320, 4),
    ("county-general", 450, 4),
    ("lakeside-medical", 180, 9),
    ("riverside-regional", 260, 4),
    ("mercy-north", 210, 4),
    ("valley-childrens", 380, 5),
    ("harbor-view", 300, 4),
    ("summit-health", 240, 4),
];
const FROM: &str = "2025-01";
const TO: &str = "2025-12";
/// The window a screenshot of the first page is taken in: A4 at 96 dpi.
const FIRST_PAGE: (u32, u32) = (794, 1123);

fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `psonet` with `args`; `path` replaces `PATH` when given.
async fn run_psonet(args: &[&str], path: Option<&Path>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_psonet"));
    command.args(args);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command.output().await.expect("run psonet")
}

fn report_args<'a>(gateway: &'a str, identity: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "report",
        "--gateway",
        gateway,
        "--identity",
        identity,
        "--from",
        FROM,
        "--to",
        TO,
        "--out",
        out,
    ]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks that hold for any report, read as the text the command wrote.
fn check_report_text(html: &str, metrics: &[pb::Metric]) {
    assert_eq!(
        html.matches("<section class=\"metric\"").count(),
        metrics.len(),
        "one section per catalogue metric"
    );
    for m in metrics {
        assert!(
            html.contains(&format!("<section class=\"metric\" id=\"metric-{}\"", m.id)),
            "no section for {}",
            m.id
        );
    }
    for needle in ["<script", "<link", "<img", "<iframe", "url(", "@import"] {
        assert!(!html.contains(needle), "the report holds {needle}");
    }
    for attribute in ["src=", "href="] {
        for (i, _) in html.match_indices(attribute) {
            let value = &html[i + attribute.len()..];
            assert!(
                value.starts_with("\"#"),
                "{attribute} outside the document: {}",
                &html[i..(i + 60).min(html.len())]
            );
        }
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the report holds a URL"
    );
    assert!(html.contains("id=\"methods\""), "no methods appendix");
}

/// The progress lines: one per metric, in catalogue order.
fn check_progress(stderr: &str, metrics: &[pb::Metric]) {
    for (i, m) in metrics.iter().enumerate() {
        let prefix = format!("[{}/{}] {}: ", i + 1, metrics.len(), m.id);
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with(&prefix)).count(),
            1,
            "no progress line {prefix:?} in:\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_render_in_a_browser_name_no_one_they_should_not_and_survive_failures() {
    psonet_serve::tls::install_crypto_provider();
    let browser = chromium_or_skip();
    let ids: Vec<&str> = FACILITIES.iter().map(|(id, ..)| *id).collect();
    let mut net = Network::builder(NETWORK)
        .facility_ids(ids.iter().copied())
        .servers(Servers::Processes(launcher()))
        .start()
        .await
        .unwrap();
    net.start_gateway(|config| config.fanout.node_deadline_ms = 10_000)
        .await
        .unwrap();
    let last_month: Month = TO.parse().unwrap();
    net.load_synthetic(|i, node| {
        let (_, beds, per_bed) = FACILITIES[i];
        SynthOptions {
            events: beds as usize * per_bed,
            months: 12,
            last_month,
            key_prefix: node.id.clone(),
            beds,
            seed: i as u64 + 1,
        }
    })
    .await
    .unwrap();
    let metrics = net
        .benchmark_client()
        .unwrap()
        .list_metrics(pb::ListMetricsRequest {})
        .await
        .unwrap()
        .into_inner()
        .metrics;
    assert!(metrics.len() >= 6, "{metrics:?}");
    let gateway = net.gateway_addr().unwrap().to_string();
    let dir = artefacts();

    // The network report, as the partner.
    let partner = net.layout.partner_identity.to_string_lossy().into_owned();
    let partner_html = dir.join("partner.html");
    let partner_pdf = dir.join("partner.pdf");
    let out = partner_html.to_string_lossy().into_owned();
    let pdf = partner_pdf.to_string_lossy().into_owned();
    let mut args = report_args(&gateway, &partner, &out);
    if browser.is_some() {
        args.extend(["--pdf", &pdf]);
    }
    let started = std::time::Instant::now();
    let run = run_psonet(&args, None).await;
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    println!(
        "network report of {} metrics over 8 nodes in {:.1} s:\n{stderr}",
        metrics.len(),
        started.elapsed().as_secs_f64()
    );
    check_progress(&stderr, &metrics);
    let html = std::fs::read_to_string(&partner_html).unwrap();
    check_report_text(&html, &metrics);
    for id in &ids {
        assert!(!html.contains(id), "the network report names {id}");
    }
    assert!(
        html.contains("peer-"),
        "no pseudonyms in the network report"
    );
    assert!(html.contains("8 facilities in scope; 8 answered every call"));
    assert!(
        !html.contains("class=\"banner\""),
        "a complete report has no banner"
    );
    // Every metric with events released shows its pooled rate, distribution, funnel and trend;
    // one without exposure (no procedures were recorded) says why it is withheld.
    assert!(html.contains("<h3>Funnel plot</h3>") && html.contains("<h3>Monthly trend</h3>"));
    assert!(
        html.contains("Pooled rate</h3><p class=\"withheld\">"),
        "the surgical metric, with no procedures recorded, is not shown as withheld"
    );

    // A facility's report: its own id, no one else's.
    let own = &net.nodes[1];
    let identity = own.client_identity.to_string_lossy().into_owned();
    let facility_html = dir.join("facility.html");
    let facility_pdf = dir.join("facility.pdf");
    let out = facility_html.to_string_lossy().into_owned();
    let pdf = facility_pdf.to_string_lossy().into_owned();
    let mut args = report_args(&gateway, &identity, &out);
    if browser.is_some() {
        args.extend(["--pdf", &pdf, "--paper", "letter"]);
    }
    let run = run_psonet(&args, None).await;
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    check_progress(&stderr, &metrics);
    let html = std::fs::read_to_string(&facility_html).unwrap();
    check_report_text(&html, &metrics);
    assert!(
        html.contains(&own.id),
        "the facility report does not name its facility"
    );
    for id in ids.iter().filter(|id| **id != own.id) {
        assert!(!html.contains(id), "{}'s report names {id}", own.id);
    }
    assert!(html.contains(&format!("{} (you)", own.id)));
    assert!(html.contains("<h3>Where you sit in the funnel</h3>"));

    if let Some(chromium) = &browser {
        check_in_browser(
            chromium,
            &partner_html,
            &metrics,
            &dir.join("partner-first-page.png"),
        );
        check_in_browser(
            chromium,
            &facility_html,
            &metrics,
            &dir.join("facility-first-page.png"),
        );
        check_pdf(&partner_pdf, metrics.len(), (595, 842));
        check_pdf(&facility_pdf, metrics.len(), (612, 792));
    }

    // The gateway goes: the report is still written, with a banner, and the command fails.
    net.stop_gateway().await.unwrap();
    let partial = dir.join("partial.html");
    let out = partial.to_string_lossy().into_owned();
    let run = run_psonet(&report_args(&gateway, &partner, &out), None).await;
    let stderr = text(&run.stderr);
    assert!(!run.status.success(), "a partial report exits non-zero");
    assert!(
        stderr.contains("is partial: 1 of 1 calls failed"),
        "{stderr}"
    );
    let html = std::fs::read_to_string(&partial).unwrap();
    assert!(
        html.contains("<div class=\"banner\" role=\"alert\">"),
        "{html}"
    );
    assert!(
        html.contains("ListMetrics"),
        "the banner does not name the failed call"
    );

    // --pdf without Chromium: the HTML is written, and the error says what to install.
    let empty = tempfile::tempdir().unwrap();
    let no_browser = dir.join("no-browser.html");
    let out = no_browser.to_string_lossy().into_owned();
    let pdf = dir.join("no-browser.pdf").to_string_lossy().into_owned();
    let mut args = report_args(&gateway, &partner, &out);
    args.extend(["--pdf", &pdf]);
    let run = run_psonet(&args, Some(empty.path())).await;
    let stderr = text(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("--pdf needs headless Chromium")
            && stderr.contains("apt-get install chromium"),
        "{stderr}"
    );
    assert!(no_browser.is_file(), "the HTML was not written");

    net.shutdown().await.unwrap();
}

/// Chromium, or `None` after saying loudly that the browser checks are skipped; in CI a missing
/// browser fails the test.
fn chromium_or_skip() -> Option<PathBuf> {
    if let Some(path) = find_chromium() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but no chromium is on PATH: .ci/browser-setup installs it"
    );
    eprintln!(
        "\n*** SKIPPING the browser checks of the report: no chromium on PATH. ***\n\
         *** Install it (apt-get install chromium, or .ci/browser-setup) to run them. ***\n"
    );
    None
}

/// A proxy that answers nothing and records the first line of every request it gets.
struct RecordingProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RecordingProxy {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                            let mut buf = [0u8; 512];
                            let n = stream.read(&mut buf).unwrap_or(0);
                            let line = String::from_utf8_lossy(&buf[..n])
                                .lines()
                                .next()
                                .unwrap_or("(empty request)")
                                .to_string();
                            seen.lock().unwrap().push(line);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Self {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns what was requested.
    fn requests(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.seen.lock().unwrap().clone()
    }
}

/// Runs headless Chromium on `page` with the network disabled and every request the page
/// makes sent to a recording proxy; returns its stdout and what the proxy saw.
fn chromium(chromium: &Path, extra: &[String], page: &Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let proxy = RecordingProxy::start();
    let output = std::process::Command::new(chromium)
        .args(headless_flags(profile.path()))
        // No host name resolves, so nothing leaves the machine. The page's requests go to the
        // proxy (which resolves nothing either); Chromium's own service requests (time,
        // updates, accounts), made whatever the page holds, bypass it and fail to resolve.
        .arg("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
        .arg(format!("--proxy-server=http://127.0.0.1:{}", proxy.port))
        .arg("--proxy-bypass-list=*.google.com;*.googleapis.com;*.gvt1.com;<-loopback>")
        .args(extra)
        .arg(file_url(page).unwrap())
        .output()
        .expect("run chromium");
    let requests = proxy.requests();
    assert!(
        output.status.success(),
        "chromium failed: {}",
        text(&output.stderr)
    );
    (text(&output.stdout), requests)
}

/// Renders `page` in Chromium and checks the DOM it built; saves a screenshot of the first page.
fn check_in_browser(browser: &Path, page: &Path, metrics: &[pb::Metric], png: &Path) {
    // The proxy sees what a page fetches: a page with an external image is caught.
    let canary = page.with_file_name("canary.html");
    std::fs::write(
        &canary,
        "<!DOCTYPE html><img src=\"http://canary.example/x.png\">",
    )
    .unwrap();
    let (_, requests) = chromium(browser, &["--dump-dom".into()], &canary);
    assert!(
        requests.iter().any(|r| r.contains("canary.example")),
        "the recording proxy missed a page's request: {requests:?}"
    );

    let (dom, requests) = chromium(browser, &["--dump-dom".into()], page);
    assert!(
        requests.is_empty(),
        "the report made requests: {requests:?}"
    );
    assert_eq!(
        dom.matches("<section class=\"metric\"").count(),
        metrics.len(),
        "the DOM has not one section per catalogue metric"
    );
    let svgs: Vec<&str> = dom.match_indices("<svg").map(|(i, _)| &dom[i..]).collect();
    assert!(svgs.len() >= 3, "only {} charts rendered", svgs.len());
    for svg in &svgs {
        let open_end = svg.find('>').unwrap() + 1;
        let inside = &svg[open_end..];
        assert!(
            inside.starts_with("<title>") && !inside.starts_with("<title></title>"),
            "an <svg> without a <title>: {}",
            &svg[..200.min(svg.len())]
        );
    }
    let mut last = 0;
    for (i, _) in dom.match_indices("<h") {
        let Some(level) = dom[i + 2..].chars().next().and_then(|c| c.to_digit(10)) else {
            continue;
        };
        assert!(level <= last + 1, "h{level} follows h{last}");
        last = level;
    }
    if let Some(i) = dom.find(" src=\"") {
        panic!("an element with src in the DOM: {}", &dom[i..i + 60]);
    }

    let size = format!("--window-size={},{}", FIRST_PAGE.0, FIRST_PAGE.1);
    let shot = format!(
        "--screenshot={}",
        std::path::absolute(png).unwrap().display()
    );
    let (_, requests) = chromium(browser, &[shot, size, "--hide-scrollbars".into()], page);
    assert!(
        requests.is_empty(),
        "the screenshot made requests: {requests:?}"
    );
    let bytes = std::fs::read(png).expect("no screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), FIRST_PAGE);
    println!("screenshot of the first page: {}", png.display());
}

/// The PDF has a page per metric plus the cover and the methods, on paper of `size` points.
fn check_pdf(pdf: &Path, metrics: usize, size: (u32, u32)) {
    let bytes = std::fs::read(pdf).expect("no PDF");
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    let body = String::from_utf8_lossy(&bytes);
    let pages = body.matches("/Type /Page\n").count()
        + body.matches("/Type /Page/").count()
        + body.matches("/Type /Page>>").count();
    assert!(
        pages >= metrics + 2,
        "{} has {pages} pages for {metrics} metrics",
        pdf.display()
    );
    let media = body
        .split("/MediaBox [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("no MediaBox");
    let numbers: Vec<f64> = media
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(
        (numbers[2].round() as u32, numbers[3].round() as u32),
        size,
        "{} is not on the paper asked for",
        pdf.display()
    );
    println!("{}: {pages} pages", pdf.display());
}
