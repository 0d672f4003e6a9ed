//! Files only their owner can read, whatever the umask.
//!
//! A node's store holds narratives, its backups the same, and `pki` writes private keys: none
//! of it may be readable by other users of the machine. systemd runs the node with
//! `UMask=0077`, but a node started by hand inherits the shell's umask (usually 0022, so sled
//! would leave its files 0644), and some libraries create files without asking. So psonet does
//! not rely on the umask: directories it creates are 0700, files 0600, and a directory handed
//! to a library (the sled store) is tightened again once the library has written into it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory psonet keeps private data in.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file psonet keeps private data in.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and any missing parent) as 0700, or makes an existing `dir` 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
}

/// Creates a new file at `path`, 0600, failing if it exists.
pub fn create_new_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Writes `bytes` to `path`, replacing what was there; the file is 0600 afterwards even when it
/// existed with a wider mode.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    file.write_all(bytes)
}

/// Takes the group and other bits off `dir` and everything in it (directories 0700 at most,
/// files 0600 at most), e.g. after a library created files there with the process's umask.
pub fn tighten(dir: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    let private = mode & !0o077;
    if private != mode & 0o7777 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(private))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            tighten(&entry?.path())?;
        }
    }
    Ok(())
}

/// Makes every file this process creates from now on private to its owner (umask 0077), for
/// what libraries create without asking (sled's later snapshot and blob files).
pub fn private_umask() {
    // SAFETY: umask only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_and_tightened_paths_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir(&nested).unwrap();
        assert_eq!(mode(&nested), 0o700);
        let file = nested.join("key.pem");
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&file, b"new").unwrap();
        assert_eq!(mode(&file), 0o600);
        let loose = dir.path().join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(loose.join("db"), "x").unwrap();
        std::fs::set_permissions(loose.join("db"), std::fs::Permissions::from_mode(0o666)).unwrap();
        tighten(&loose).unwrap();
        assert_eq!((mode(&loose), mode(&loose.join("db"))), (0o700, 0o600));
    }
}
