//! The guidance in force: every `*.md` file of the configured directory, read at start and
//! again whenever the directory changes (checked on a short interval) or on SIGHUP, so a
//! Kubernetes ConfigMap or a `git pull` publishes guidance without a restart and the gateway
//! stays stateless. A directory that no longer reads (a file with a mistake, two files with one
//! id) is logged and the guidance in force is kept: a typo never unpublishes everything.

use super::front_matter::{FrontMatterError, parse};
use psonet_core::pb;
use psonet_serve::listener::Shutdown;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// Why the guidance directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GuidanceError {
    /// The directory or a file could not be read.
    #[error("reading guidance {path}: {source}")]
    Io {
        /// What was read.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A file's front matter is wrong.
    #[error(transparent)]
    FrontMatter(#[from] FrontMatterError),
    /// Two files give the same id.
    #[error("guidance id {0:?} is given by two files")]
    Duplicate(String),
}

/// The `*.md` files of `dir`, sorted, with their modification times and sizes (what a change
/// is detected by).
fn listing(dir: &Path) -> Result<Vec<(PathBuf, Option<SystemTime>, u64)>, GuidanceError> {
    let io = |source| GuidanceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "md") {
            let meta = std::fs::metadata(&path).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            files.push((path, modified, meta.map_or(0, |m| m.len())));
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every guidance file of `dir`, in id order.
pub fn load(dir: &Path) -> Result<Vec<pb::GuidanceItem>, GuidanceError> {
    let mut items: Vec<pb::GuidanceItem> = Vec::new();
    for (path, _, _) in listing(dir)? {
        let text = std::fs::read_to_string(&path).map_err(|source| GuidanceError::Io {
            path: path.clone(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let item = parse(&name, &text)?;
        if items.iter().any(|i| i.guidance_id == item.guidance_id) {
            return Err(GuidanceError::Duplicate(item.guidance_id));
        }
        items.push(item);
    }
    items.sort_by(|a, b| a.guidance_id.cmp(&b.guidance_id));
    Ok(items)
}

/// The guidance in force, shared by the service and the watcher; cheap to clone.
#[derive(Clone, Default)]
pub struct GuidanceLibrary {
    items: Arc<RwLock<Arc<Vec<pb::GuidanceItem>>>>,
}

impl GuidanceLibrary {
    /// A library holding `items`.
    pub fn new(items: Vec<pb::GuidanceItem>) -> Self {
        Self {
            items: Arc::new(RwLock::new(Arc::new(items))),
        }
    }

    /// The items in force.
    pub fn items(&self) -> Arc<Vec<pb::GuidanceItem>> {
        self.items
            .read()
            .map(|items| items.clone())
            .unwrap_or_default()
    }

    fn replace(&self, items: Vec<pb::GuidanceItem>) {
        if let Ok(mut held) = self.items.write() {
            *held = Arc::new(items);
        }
    }

    /// Reloads from `dir` whenever its files change (checked every `poll`) or on SIGHUP, until
    /// `shutdown`.
    pub fn watch(&self, dir: PathBuf, poll: Duration, shutdown: &Shutdown) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        let stopped = shutdown.signalled();
        let library = self.clone();
        tokio::spawn(async move {
            tokio::pin!(stopped);
            let mut seen = listing(&dir).ok();
            let mut ticks = tokio::time::interval(poll);
            loop {
                let forced = tokio::select! {
                    _ = &mut stopped => break,
                    _ = hangup.recv() => true,
                    _ = ticks.tick() => false,
                };
                let now = listing(&dir).ok();
                if forced || now != seen {
                    seen = now;
                    library.reload(&dir);
                }
            }
        });
        Ok(())
    }

    fn reload(&self, dir: &Path) {
        match load(dir) {
            Ok(items) => {
                tracing::info!(items = items.len(), dir = %dir.display(), "guidance reloaded");
                self.replace(items);
            }
            Err(e) => {
                tracing::error!(error = %e, "guidance reload failed; keeping the guidance in force")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(version: u32) -> String {
        format!(
            "---\nversion: {version}\nkind: safety_alert\ntitle: Alert\npublished: 2026-01-02\n---\nBody\n"
        )
    }

    #[test]
    fn a_directory_loads_in_id_order_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.md"), file(1)).unwrap();
        std::fs::write(dir.path().join("a.md"), file(2)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let items = load(dir.path()).unwrap();
        let ids: Vec<_> = items.iter().map(|i| i.guidance_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        std::fs::write(dir.path().join("c.md"), "oops").unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("c.md"), "{e}");
    }
}
