//! Opening the sled database of a data directory: private files, and start-up errors that say
//! what is wrong with the directory and what to do about it.
//!
//! sled's own errors name neither: a second node on the same directory gets
//! `could not acquire lock on "…/db": Os { code: 11, kind: WouldBlock … }`, and a directory
//! that is a file or cannot be written gets a bare `IO error`. The operator needs the
//! directory, the cause in words, and the fix — and for a held lock, which process holds it
//! (read from the kernel's lock table, `/proc/locks`, so a crashed node leaves no stale pid
//! file behind to mislead).

use super::StoreError;
use psonet_serve::private_files;
use std::io::ErrorKind;
use std::path::Path;

/// Opens (or creates) the sled database in `dir` with a page cache of `cache_bytes`: the
/// directory is created 0700 (or made so) before sled writes into it, and everything sled
/// created is made private to the owner afterwards.
pub(crate) fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    check_dir(dir)?;
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .open()
        .map_err(|e| explain(dir, e))?;
    private_files::tighten(dir).map_err(|e| dir_error(dir, &e))?;
    Ok(db)
}

/// Creates `dir` privately, or says why it cannot hold a store.
fn check_dir(dir: &Path) -> Result<(), StoreError> {
    if let Ok(meta) = std::fs::metadata(dir)
        && !meta.is_dir()
    {
        return Err(StoreError::DataDir(format!(
            "data_dir {} is a file, not a directory: set data_dir to a directory of its own \
             (psonet creates it if missing), or move the file away",
            dir.display()
        )));
    }
    private_files::create_dir(dir).map_err(|e| dir_error(dir, &e))
}

/// A failure to create, open or write in `dir`, in words, with the fix.
fn dir_error(dir: &Path, e: &std::io::Error) -> StoreError {
    let fix = match e.kind() {
        ErrorKind::PermissionDenied => {
            let user = whoami();
            format!(
                "the node runs as {user} and cannot write there: give that user the directory \
                 (`chown -R {user} {}`) or set data_dir to a directory it owns",
                dir.display()
            )
        }
        ErrorKind::ReadOnlyFilesystem => "the node cannot write there, the file system is \
             read-only: set data_dir to a directory on a writable disk"
            .to_string(),
        ErrorKind::NotADirectory => {
            "a parent of it is a file: set data_dir to a path under a directory".to_string()
        }
        ErrorKind::StorageFull => "the disk is full: free space on it".to_string(),
        _ => "check that the path is a directory this user may write".to_string(),
    };
    StoreError::DataDir(format!("data_dir {}: {e}; {fix}", dir.display()))
}

/// sled's failure to open `dir`, explained: a lock held by another process, or a directory
/// problem.
fn explain(dir: &Path, e: sled::Error) -> StoreError {
    let sled::Error::Io(io) = &e else {
        return StoreError::from(e);
    };
    if io.to_string().contains("could not acquire lock") {
        let holder = lock_holder(&dir.join("db"))
            .map(|(pid, name)| match name.as_deref() {
                Some("psonet") => format!("another psonet node (pid {pid})"),
                Some(name) => format!("another process ({name}, pid {pid})"),
                None => format!("another process (pid {pid})"),
            })
            .unwrap_or_else(|| "another process".into());
        return StoreError::DataDir(format!(
            "{holder} holds the store in data_dir {}: stop it first, or give this node a \
             data_dir of its own (two nodes must never share one)",
            dir.display()
        ));
    }
    dir_error(dir, io)
}

/// The process holding a lock on `file` (pid, and its name when readable), from the kernel's
/// lock table: lines like `1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF`.
fn lock_holder(file: &Path) -> Option<(u32, Option<String>)> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(file).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let own = std::process::id();
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Blocked waiters are listed as `-> FLOCK …`; the holder's line has the pid at 4.
        let (pid, device) = match fields.as_slice() {
            [_, _kind, _, _, pid, device, ..] => (pid.parse::<u32>().ok()?, device),
            _ => return None,
        };
        let lock_inode: u64 = device.rsplit(':').next()?.parse().ok()?;
        (lock_inode == inode && pid != own).then(|| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .ok()
                .map(|n| n.trim().to_string());
            (pid, name)
        })
    })
}

/// The user this process runs as, for messages.
fn whoami() -> String {
    // SAFETY: geteuid cannot fail and touches no memory.
    let uid = unsafe { libc::geteuid() };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)? == uid.to_string()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_data_dir_that_is_a_file_is_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("store");
        std::fs::write(&file, "not a store").unwrap();
        let e = open_db(&file, 1 << 20).expect_err("refused").to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
        assert!(e.contains(&file.display().to_string()), "{e}");
    }

    #[test]
    fn a_store_in_use_names_the_process_holding_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let _held = open_db(&store, 1 << 20).unwrap();
        // The lock is flock(2) on `db`: held per open file, so a second open in this process
        // is refused the same way another process is.
        let e = open_db(&store, 1 << 20).expect_err("refused").to_string();
        assert!(e.contains("holds the store in data_dir"), "{e}");
        assert!(e.contains("stop it first"), "{e}");
    }

    #[test]
    fn store_files_are_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let _db = open_db(&store, 1 << 20).unwrap();
        let mut paths = vec![store.clone()];
        while let Some(path) = paths.pop() {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is {:o}", path.display(), mode & 0o777);
            if path.is_dir() {
                paths.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
        }
    }
}
