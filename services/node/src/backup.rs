//! Backup and restore of a node's store: one file, one point in time, checked end to end.
//!
//! sled 0.34 lets only one process open a data directory, so a running node is backed up by
//! the node itself (`BackupService` on its local listener), and a backup is restored by
//! `psonet node restore` into an empty directory before a node is started on it.
//!
//! The copy is consistent because every write of the store holds its write gate shared and the
//! copy holds it exclusively ([`Store::pause_writes`]): events, idempotency keys, counters,
//! exposure and any other tree are copied as of the same instant. Every tree of the database is
//! copied, so trees added later (audit, budgets) are backed up without changes here.
//!
//! The file (integers big-endian):
//!
//! ```text
//! "PSONETBK" version:u16  facility:str  taken_at_unix_s:u64  next_id:u64
//! { 0x01 tree_name:str | 0x02 key:bytes value:bytes }*   0x00 entries:u64   sha256:[u8; 32]
//! ```
//!
//! where `str` and `bytes` are a `u32` length and the bytes, and the SHA-256 covers everything
//! before it. `next_id` is above every id sled generated in the store, so a restored store
//! never hands out an id again.

use crate::store::{Store, StoreError};
use ring::digest::{Context, SHA256};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MAGIC: &[u8; 8] = b"PSONETBK";
const VERSION: u16 = 1;
const TAG_END: u8 = 0x00;
const TAG_TREE: u8 = 0x01;
const TAG_ENTRY: u8 = 0x02;
/// Longest key or value read back; anything longer means a damaged file, not a store.
const MAX_FIELD_BYTES: u32 = 256 << 20;
/// Entries written to sled in one batch during a restore.
const RESTORE_BATCH: usize = 10_000;

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file is not a psonet backup, or it is damaged or truncated.
    #[error("{0} is not an intact psonet backup: {1}")]
    Damaged(PathBuf, String),
    /// The restore target already holds something.
    #[error(
        "{0} is not empty: a restore only writes into a new or empty directory, so it can \
         never overwrite a store (move the old one away first)"
    )]
    NotEmpty(PathBuf),
    /// The backup is of another facility than the config names.
    #[error("the backup is of facility {backup:?} but the config is for {config:?}")]
    OtherFacility {
        /// Facility in the backup.
        backup: String,
        /// Facility in the config.
        config: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

fn sled_err(e: sled::Error) -> BackupError {
    BackupError::Store(StoreError::Sled(e))
}

/// What a written backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// The facility whose store it is.
    pub facility_id: String,
    /// When writes were paused, in seconds since the Unix epoch.
    pub taken_at_unix_s: u64,
    /// Bytes written.
    pub size_bytes: u64,
    /// SHA-256 of the whole file, as `sha256sum` prints it.
    pub sha256: [u8; 32],
    /// Each tree copied and its number of entries.
    pub trees: Vec<(String, u64)>,
    /// How long writes were paused.
    pub pause: Duration,
}

/// Writes a consistent copy of `store` to `out`, pausing the store's writes while it copies.
pub fn write_backup(
    store: &Store,
    facility_id: &str,
    out: impl Write,
) -> Result<BackupSummary, BackupError> {
    let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, out));
    let write = io("writing the backup");
    let (guard, db) = store.pause_writes()?;
    let paused = Instant::now();
    let taken_at_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    // Above every id handed out so far: no write is in progress while the gate is held.
    let next_id = db.generate_id().map_err(sled_err)?;
    let mut trees = Vec::new();
    let copied = (|| -> Result<(), BackupError> {
        out.put(MAGIC)?;
        out.put(&VERSION.to_be_bytes())?;
        out.put_field(facility_id.as_bytes())?;
        out.put(&taken_at_unix_s.to_be_bytes())?;
        out.put(&next_id.to_be_bytes())?;
        let mut names = db.tree_names();
        names.sort();
        let mut total = 0u64;
        for name in names {
            let tree = db.open_tree(&name).map_err(sled_err)?;
            out.put(&[TAG_TREE])?;
            out.put_field(&name)?;
            let mut entries = 0u64;
            for item in tree.iter() {
                let (key, value) = item.map_err(sled_err)?;
                out.put(&[TAG_ENTRY])?;
                out.put_field(&key)?;
                out.put_field(&value)?;
                entries += 1;
            }
            total += entries;
            trees.push((String::from_utf8_lossy(&name).into_owned(), entries));
        }
        out.put(&[TAG_END])?;
        out.put(&total.to_be_bytes())?;
        Ok(())
    })();
    drop(guard);
    let pause = paused.elapsed();
    copied?;
    let (mut inner, sha256, size) = out.finish().map_err(write)?;
    inner.flush().map_err(io("writing the backup"))?;
    Ok(BackupSummary {
        facility_id: facility_id.to_string(),
        taken_at_unix_s,
        size_bytes: size,
        sha256,
        trees,
        pause,
    })
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Facility of the backup.
    pub facility_id: String,
    /// When the backup was taken, in seconds since the Unix epoch.
    pub taken_at_unix_s: u64,
    /// Entries restored over all trees.
    pub entries: u64,
    /// Events in the restored store (counters checked against them).
    pub events: u64,
}

/// Restores the backup `file` into `data_dir`, which must not exist or be empty, for the
/// facility `facility_id`. The file is checked whole before anything is written; the store is
/// built beside `data_dir` and moved into place only once its counters agree with its events,
/// so a failed restore leaves no half-written store behind.
pub fn restore(
    file: &Path,
    data_dir: &Path,
    facility_id: &str,
    cache_bytes: u64,
) -> Result<RestoreSummary, BackupError> {
    if let Ok(mut entries) = std::fs::read_dir(data_dir)
        && entries.next().is_some()
    {
        return Err(BackupError::NotEmpty(data_dir.to_path_buf()));
    }
    let header = read_backup(file, |_| Ok(()))?;
    if header.facility_id != facility_id {
        return Err(BackupError::OtherFacility {
            backup: header.facility_id,
            config: facility_id.to_string(),
        });
    }
    let staging = staging_dir(data_dir);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(format!("removing {staging:?}")))?;
    }
    let built = build_store(file, &staging, &header, cache_bytes);
    let events = match built {
        Ok(events) => events,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if data_dir.exists() {
        std::fs::remove_dir(data_dir).map_err(io(format!("replacing empty {data_dir:?}")))?;
    }
    std::fs::rename(&staging, data_dir).map_err(io(format!("moving the store to {data_dir:?}")))?;
    Ok(RestoreSummary {
        facility_id: header.facility_id,
        taken_at_unix_s: header.taken_at_unix_s,
        entries: header.entries,
        events,
    })
}

fn staging_dir(data_dir: &Path) -> PathBuf {
    let mut name = data_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".restoring");
    data_dir.with_file_name(name)
}

/// Writes every entry of `file` into a new sled database in `dir`, moves its id generator past
/// the backup's, and checks the result; returns the number of events.
fn build_store(
    file: &Path,
    dir: &Path,
    header: &BackupHeader,
    cache_bytes: u64,
) -> Result<u64, BackupError> {
    let db = crate::store::open_db(dir, cache_bytes)?;
    {
        let mut tree: Option<sled::Tree> = None;
        let mut batch = sled::Batch::default();
        let mut batched = 0usize;
        read_backup(file, |record| {
            match record {
                Record::Tree(name) => {
                    if let Some(t) = &tree {
                        t.apply_batch(std::mem::take(&mut batch))
                            .map_err(sled_err)?;
                        batched = 0;
                    }
                    tree = Some(db.open_tree(name).map_err(sled_err)?);
                }
                Record::Entry(key, value) => {
                    batch.insert(key, value);
                    batched += 1;
                    if batched == RESTORE_BATCH
                        && let Some(t) = &tree
                    {
                        t.apply_batch(std::mem::take(&mut batch))
                            .map_err(sled_err)?;
                        batched = 0;
                    }
                }
            }
            Ok(())
        })?;
        if let Some(t) = &tree {
            t.apply_batch(batch).map_err(sled_err)?;
        }
    }
    while db.generate_id().map_err(sled_err)? < header.next_id {}
    db.flush().map_err(sled_err)?;
    Ok(Store::from_db(db, dir)?.verify_counters()?)
}

/// The fixed part at the start of a backup, and its entry count from the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupHeader {
    /// Facility whose store it is.
    pub facility_id: String,
    /// When it was taken, in seconds since the Unix epoch.
    pub taken_at_unix_s: u64,
    /// Above every id the store had generated.
    pub next_id: u64,
    /// Entries over all trees.
    pub entries: u64,
}

/// One record of a backup, in file order.
enum Record<'a> {
    Tree(&'a [u8]),
    Entry(&'a [u8], &'a [u8]),
}

/// Reads and checks the whole of `file`, handing each record to `visit`; fails on a bad
/// magic, version, structure, entry count or checksum, or on bytes after the checksum.
fn read_backup(
    file: &Path,
    mut visit: impl FnMut(Record<'_>) -> Result<(), BackupError>,
) -> Result<BackupHeader, BackupError> {
    let damaged = |why: &str| BackupError::Damaged(file.to_path_buf(), why.to_string());
    let opened = std::fs::File::open(file).map_err(io(format!("opening {file:?}")))?;
    let mut r = HashingReader::new(BufReader::with_capacity(1 << 20, opened));
    let read_err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => damaged("it ends early"),
        _ => BackupError::Io {
            what: format!("reading {file:?}"),
            source: e,
        },
    };
    let mut magic = [0u8; 8];
    r.take_exact(&mut magic).map_err(read_err)?;
    if &magic != MAGIC {
        return Err(damaged("it does not start like one"));
    }
    let version = u16::from_be_bytes(r.array().map_err(read_err)?);
    if version != VERSION {
        return Err(damaged(&format!(
            "format version {version}; this psonet reads {VERSION}"
        )));
    }
    let mut field = Vec::new();
    r.field(&mut field).map_err(read_err)?;
    let facility_id = String::from_utf8(field.clone()).map_err(|_| damaged("facility id"))?;
    let taken_at_unix_s = u64::from_be_bytes(r.array().map_err(read_err)?);
    let next_id = u64::from_be_bytes(r.array().map_err(read_err)?);
    let (mut key, mut value) = (Vec::new(), Vec::new());
    let mut entries = 0u64;
    let mut in_tree = false;
    loop {
        let [tag] = r.array().map_err(read_err)?;
        match tag {
            TAG_TREE => {
                r.field(&mut key).map_err(read_err)?;
                visit(Record::Tree(&key))?;
                in_tree = true;
            }
            TAG_ENTRY if in_tree => {
                r.field(&mut key).map_err(read_err)?;
                r.field(&mut value).map_err(read_err)?;
                visit(Record::Entry(&key, &value))?;
                entries += 1;
            }
            TAG_END => break,
            _ => return Err(damaged(&format!("unexpected record tag {tag:#04x}"))),
        }
    }
    let counted = u64::from_be_bytes(r.array().map_err(read_err)?);
    let computed = r.digest();
    let mut stored = [0u8; 32];
    r.take_exact(&mut stored).map_err(read_err)?;
    if counted != entries {
        return Err(damaged(&format!(
            "{entries} entries, the end says {counted}"
        )));
    }
    if stored != computed {
        return Err(damaged("its SHA-256 does not match its contents"));
    }
    if r.trailing().map_err(read_err)? {
        return Err(damaged("bytes follow its checksum"));
    }
    Ok(BackupHeader {
        facility_id,
        taken_at_unix_s,
        next_id,
        entries,
    })
}

/// A writer that hashes and counts what goes through it.
struct HashingWriter<W> {
    inner: W,
    digest: Context,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            digest: Context::new(&SHA256),
            written: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.digest.update(bytes);
        self.written += bytes.len() as u64;
        self.inner
            .write_all(bytes)
            .map_err(io("writing the backup"))
    }

    fn put_field(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| io("writing the backup")(std::io::Error::other("an entry over 4 GiB")))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }

    /// Appends the checksum of the contents; returns the writer, the SHA-256 of the whole file
    /// (contents and checksum, as `sha256sum` prints it) and the total size.
    fn finish(mut self) -> std::io::Result<(W, [u8; 32], u64)> {
        let contents = self.digest.clone().finish();
        self.inner.write_all(contents.as_ref())?;
        self.digest.update(contents.as_ref());
        let mut whole = [0u8; 32];
        whole.copy_from_slice(self.digest.finish().as_ref());
        Ok((self.inner, whole, self.written + 32))
    }
}

/// A reader that hashes what it reads.
struct HashingReader<R> {
    inner: R,
    digest: Context,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            digest: Context::new(&SHA256),
        }
    }

    fn take_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact(buf)?;
        self.digest.update(buf);
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> std::io::Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.take_exact(&mut buf)?;
        Ok(buf)
    }

    /// Reads a length-prefixed field into `buf`.
    fn field(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        let len = u32::from_be_bytes(self.array()?);
        if len > MAX_FIELD_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a field of {len} bytes"),
            ));
        }
        buf.resize(len as usize, 0);
        self.take_exact(buf)
    }

    /// The SHA-256 of everything read so far.
    fn digest(&self) -> [u8; 32] {
        let mut sha = [0u8; 32];
        sha.copy_from_slice(self.digest.clone().finish().as_ref());
        sha
    }

    /// True when anything is left to read.
    fn trailing(&mut self) -> std::io::Result<bool> {
        let mut byte = [0u8; 1];
        Ok(self.inner.read(&mut byte)? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_data(dir: &Path) -> Store {
        let store = Store::open(dir, 8 << 20).unwrap();
        let db = store.pause_writes().unwrap().1.clone();
        db.open_tree("extra").unwrap().insert(b"k", b"v").unwrap();
        store
    }

    #[test]
    fn restore_refuses_damaged_files_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_data(&dir.path().join("a"));
        let file = dir.path().join("a.backup");
        let summary =
            write_backup(&store, "st-marys", std::fs::File::create(&file).unwrap()).unwrap();
        assert_eq!(summary.size_bytes, std::fs::metadata(&file).unwrap().len());
        assert!(summary.trees.contains(&("extra".to_string(), 1)));

        let mut bytes = std::fs::read(&file).unwrap();
        let target = dir.path().join("restored");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        let flipped = dir.path().join("flipped.backup");
        std::fs::write(&flipped, &bytes).unwrap();
        let e = restore(&flipped, &target, "st-marys", 8 << 20).unwrap_err();
        assert!(matches!(e, BackupError::Damaged(..)), "{e}");
        std::fs::write(&flipped, &bytes[..middle]).unwrap();
        let e = restore(&flipped, &target, "st-marys", 8 << 20).unwrap_err();
        assert!(e.to_string().contains("ends early"), "{e}");
        assert!(!target.exists() && !staging_dir(&target).exists());

        let e = restore(&file, &target, "county-general", 8 << 20).unwrap_err();
        assert!(matches!(e, BackupError::OtherFacility { .. }), "{e}");
        let restored = restore(&file, &target, "st-marys", 8 << 20).unwrap();
        // The extra tree's entry and the store's format version.
        assert_eq!(restored.entries, 2);
        let e = restore(&file, &target, "st-marys", 8 << 20).unwrap_err();
        assert!(matches!(e, BackupError::NotEmpty(_)), "{e}");
    }

    #[test]
    fn a_restored_store_never_reuses_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_data(&dir.path().join("a"));
        let db = store.pause_writes().unwrap().1.clone();
        let mut last = 0;
        for _ in 0..5000 {
            last = db.generate_id().unwrap();
        }
        let file = dir.path().join("a.backup");
        write_backup(&store, "f", std::fs::File::create(&file).unwrap()).unwrap();
        let target = dir.path().join("b");
        restore(&file, &target, "f", 8 << 20).unwrap();
        // sled's background threads may hold the directory's lock a moment after a drop.
        let restored = (0..100)
            .find_map(|_| {
                let opened = Store::open(&target, 8 << 20).ok();
                if opened.is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                opened
            })
            .expect("the restored store opens");
        let db = restored.pause_writes().unwrap().1.clone();
        assert!(db.generate_id().unwrap() > last);
    }
}
