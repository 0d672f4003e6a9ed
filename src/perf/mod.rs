//! Performance figures on this machine, printed and never asserted: [`node`] measures one
//! facility node (`psonet bench`), [`gateway`] the gateway under load and as the network grows
//! (`psonet bench-load`, `psonet bench-fanout`). Servers run as processes of their own where
//! their memory or CPU time is measured, read from `/proc`.

pub mod gateway;
pub mod node;

use anyhow::{Context, Result};

/// Resident memory of process `pid`, in MB.
fn rss_mb(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")?;
    Ok(kb / 1024.0)
}

/// CPU time process `pid` has used (user + system), in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which ends with ')'): utime and stime are the 12th and
    // 13th, in clock ticks of 1/100 s.
    let (_, after_name) = stat.rsplit_once(')').context("/proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks =
        |i: usize| -> Result<f64> { Ok(fields.get(i).context("/proc stat")?.parse::<f64>()?) };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}
