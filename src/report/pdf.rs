//! `--pdf`: the report printed by headless Chromium, the one PDF engine that lays out the same
//! HTML and SVG a reader's browser does (page breaks, `@page` size) without a download at run
//! time. Chromium must already be installed; without it the HTML is still written and the
//! error says how to get a PDF.
//!
//! Chromium runs with a throwaway profile, without its sandbox (it prints a local file with no
//! script in it, often as root in a container, where the sandbox cannot start), and with every
//! host name unresolvable, so printing makes no network request.

use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Names Chromium goes by on Linux distributions and macOS Homebrew.
const BROWSERS: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// Longest a print may take.
const PRINT_TIMEOUT: Duration = Duration::from_secs(120);

/// The first Chromium on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| BROWSERS.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// The flags every headless run needs here: no sandbox, GPU, first-run UI or background
/// traffic, and a profile of its own in `profile`.
pub fn headless_flags(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .map(|f| f.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// `path` as a `file://` URL (absolute, with unsafe bytes percent-encoded).
pub fn file_url(path: &Path) -> Result<String> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("finding the absolute path of {}", path.display()))?;
    let mut url = String::from("file://");
    for byte in absolute.to_string_lossy().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                url.push(byte as char)
            }
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    Ok(url)
}

/// Prints the HTML file `html` to the PDF `pdf`.
pub async fn print(html: &Path, pdf: &Path) -> Result<()> {
    let browser = find_chromium().ok_or_else(|| {
        anyhow!(
            "--pdf needs headless Chromium, and none of {} is on PATH: install it (Debian and \
             Ubuntu: apt-get install chromium) or open {} in a browser and print it",
            BROWSERS.join(", "),
            html.display()
        )
    })?;
    let profile = tempfile::tempdir().context("creating a Chromium profile directory")?;
    let pdf_path = std::path::absolute(pdf)
        .with_context(|| format!("finding the absolute path of {}", pdf.display()))?;
    let _ = std::fs::remove_file(&pdf_path);
    let mut command = tokio::process::Command::new(&browser);
    command
        .args(headless_flags(profile.path()))
        .arg("--host-resolver-rules=MAP * ~NOTFOUND")
        .arg("--no-pdf-header-footer")
        .arg(format!("--print-to-pdf={}", pdf_path.display()))
        .arg(file_url(html)?)
        .kill_on_drop(true);
    let output = tokio::time::timeout(PRINT_TIMEOUT, command.output())
        .await
        .map_err(|_| {
            anyhow!(
                "{} did not print within {} s",
                browser.display(),
                PRINT_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("running {}", browser.display()))?;
    let printed = std::fs::metadata(&pdf_path).is_ok_and(|m| m.len() > 0);
    if !output.status.success() || !printed {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().take(5).collect::<Vec<_>>();
        bail!(
            "{} could not print {} ({}): {}",
            browser.display(),
            html.display(),
            output.status,
            last.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_absolute_and_encoded() {
        let url = file_url(Path::new("/tmp/a report/r#1.html")).unwrap();
        assert_eq!(url, "file:///tmp/a%20report/r%231.html");
    }
}
