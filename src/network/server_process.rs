//! A `psonet node` or `psonet gateway` child process, started the way an operator starts one.
//!
//! The process runs the real binary on a real config file; it is ready when it prints its
//! [ready line](crate::foreground::ReadyLine), which also says where it listens. Dropping a
//! [`ServerProcess`] kills it, so a failed test or an interrupted measurement leaves no server
//! behind.

use crate::foreground::ReadyLine;
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How server processes are started: which `psonet` binary, how verbose, with what environment,
/// and whether their logs go to files.
#[derive(Debug, Clone)]
pub struct Launcher {
    program: PathBuf,
    log_filter: String,
    env: Vec<(String, String)>,
    log_files: bool,
    ready_within: Duration,
}

impl Launcher {
    /// Servers from the `psonet` binary at `program`, logging at `info` to this process's
    /// standard error, each ready within 30 s.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            log_filter: "info".into(),
            env: Vec::new(),
            log_files: false,
            ready_within: Duration::from_secs(30),
        }
    }

    /// Servers from the binary running now: `psonet bench` and `bench-load` start their servers
    /// from themselves, so a measurement never mixes two builds.
    pub fn this_binary() -> Result<Self> {
        let program = std::env::current_exe().context("finding the psonet binary")?;
        Ok(Self::new(program))
    }

    /// Every server's `RUST_LOG`.
    pub fn log_filter(mut self, filter: &str) -> Self {
        self.log_filter = filter.into();
        self
    }

    /// One more environment variable for every server (e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Each server's log to a file of its own in the network's directory, where a test can
    /// read it, instead of to this process's standard error.
    pub fn log_files(mut self) -> Self {
        self.log_files = true;
        self
    }

    /// How long a server may take to print its ready line (opening a large store takes a while).
    pub fn ready_within(mut self, wait: Duration) -> Self {
        self.ready_within = wait;
        self
    }

    /// Whether servers log to files (see [`Launcher::log_files`]).
    pub fn logs_to_files(&self) -> bool {
        self.log_files
    }
}

/// A running `psonet` server process; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    ready: ReadyLine,
}

impl ServerProcess {
    /// Starts `psonet node --config <config>` and waits for its ready line; its log goes to
    /// `log` when given, else to this process's standard error.
    pub fn node(launcher: &Launcher, config: &Path, log: Option<&Path>) -> Result<Self> {
        Self::spawn(launcher, "node", config, log)
    }

    /// Starts `psonet gateway --config <config>` and waits for its ready line (logs as for
    /// [`ServerProcess::node`]).
    pub fn gateway(launcher: &Launcher, config: &Path, log: Option<&Path>) -> Result<Self> {
        Self::spawn(launcher, "gateway", config, log)
    }

    fn spawn(launcher: &Launcher, role: &str, config: &Path, log: Option<&Path>) -> Result<Self> {
        let what = format!("psonet {role} --config {}", config.display());
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(&launcher.program)
            .args([role, "--config"])
            .arg(config)
            .env("RUST_LOG", &launcher.log_filter)
            .envs(launcher.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let stdout = child
            .stdout
            .take()
            .context("the server's standard output")?;
        // Read every line the server prints, so it never blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(ready) = ReadyLine::parse(&line) {
                    let _ = tx.send(ready);
                }
            }
        });
        match rx.recv_timeout(launcher.ready_within) {
            Ok(ready) => Ok(Self { child, ready }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let why = match e {
                    mpsc::RecvTimeoutError::Timeout => {
                        format!("did not become ready within {:?}", launcher.ready_within)
                    }
                    mpsc::RecvTimeoutError::Disconnected => "exited before it was ready".into(),
                };
                let log = log.map_or(String::new(), |path| {
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    format!("; its log:\n{text}")
                });
                bail!("{what} {why}{log}")
            }
        }
    }

    /// An address from the ready line: `local`, `federation` or `metrics` of a node, `listen`
    /// or `metrics` of a gateway.
    pub fn addr(&self, key: &str) -> Result<SocketAddr> {
        self.ready
            .addr(key)
            .with_context(|| format!("no {key} address in the ready line {:?}", self.ready))
    }

    /// The process id (for its memory and CPU time, or a signal).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The TCP ports the process listens on now, read from `/proc` (Linux): its socket inodes
    /// matched against the listening sockets of `/proc/<pid>/net/tcp` and `tcp6`. How a test
    /// shows that a node which dials out opened no port for the gateway.
    pub fn listening_ports(&self) -> Result<BTreeSet<u16>> {
        let pid = self.pid();
        let mut inodes = BTreeSet::new();
        let fds = format!("/proc/{pid}/fd");
        for entry in std::fs::read_dir(&fds).with_context(|| format!("reading {fds}"))? {
            let Ok(target) = std::fs::read_link(entry?.path()) else {
                continue;
            };
            if let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
            {
                inodes.insert(inode.to_string());
            }
        }
        let mut ports = BTreeSet::new();
        for table in ["tcp", "tcp6"] {
            let path = format!("/proc/{pid}/net/{table}");
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // local_address is HEXIP:HEXPORT, st 0A is LISTEN, the inode is the 10th field.
                let (Some(local), Some(&"0A"), Some(inode)) =
                    (fields.get(1), fields.get(3), fields.get(9))
                else {
                    continue;
                };
                if inodes.contains(*inode)
                    && let Some(port) = local
                        .rsplit_once(':')
                        .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                {
                    ports.insert(port);
                }
            }
        }
        Ok(ports)
    }

    /// SIGKILL and reap: a crash, not a shutdown.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`, `HUP`).
    pub fn signal(&self, name: &str) -> Result<()> {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{name} {} failed: {status}", self.pid());
        }
        Ok(())
    }

    /// Waits for the process to exit and returns whether it exited successfully.
    pub fn wait_success(&mut self) -> bool {
        self.child.wait().is_ok_and(|s| s.success())
    }

    /// SIGTERM, then waits for the graceful exit; an error unless the process exits with 0.
    pub fn stop(&mut self) -> Result<()> {
        self.signal("TERM")?;
        let status = self
            .child
            .wait()
            .context("waiting for the server to exit")?;
        if !status.success() {
            bail!("the server process {} exited with {status}", self.pid());
        }
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
