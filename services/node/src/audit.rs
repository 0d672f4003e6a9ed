//! The audit trail: every aggregate request and secure-aggregation round, and every handshake
//! or call the federation listener refused, appended to a hash-chained log in sled.
//!
//! A privacy officer must be able to see who asked what, what left and what was refused, and
//! trust that no one quietly edited the record afterwards. Each record holds the time, the
//! caller and the querier it asked for, the query, the released and suppressed cell counts, the
//! privacy budget spent and the refusal reason, plus the hash of the record before it; it is
//! stored as `SHA-256(record) ‖ record` under its sequence number. Changing, removing or
//! reordering any record breaks the chain from there on, and [`verify`] names the first record
//! that no longer fits. (Cutting records off the *end* leaves a shorter valid chain; the
//! record count and head hash printed by `psonet node audit --verify` are what to keep
//! elsewhere to catch that.)

use crate::utc;
use psonet_serve::security_log::{Refusal, RefusalAudit};
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use sled::Tree;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the sled tree holding the trail.
pub const AUDIT_TREE: &str = "audit";
const HASH_LEN: usize = 32;

/// One audited aggregate request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When the request was answered or refused, ms since the Unix epoch (UTC).
    pub time_ms: u64,
    /// The certificate principal that called (the gateway).
    pub caller: String,
    /// The principal the caller asked for.
    pub querier: String,
    /// The query, in canonical form (or as received, when it did not validate).
    pub query: String,
    /// `answered`, `replayed` (a cached noisy answer, no budget spent) or `refused`.
    pub outcome: String,
    /// Cells and totals released with a count.
    pub released_cells: u32,
    /// Cells and totals withheld.
    pub suppressed_cells: u32,
    /// Privacy budget ρ spent on each month the query covers, in millionths.
    pub rho_spent_micros: u64,
    /// gRPC code and message of a refusal; empty when answered.
    pub refusal: String,
    /// Where a refused handshake or call came from (`address:port`); empty otherwise, and
    /// absent from records written before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer: String,
    /// For a secure-aggregation round: the execution, its cohort and what the round revealed.
    /// Absent from every other record (so records written before it existed keep their hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_round: Option<SecureRoundAudit>,
    /// Hex SHA-256 of the previous record; zeros for the first.
    pub prev: String,
}

/// What the audit trail keeps about one secure-aggregation round, so a privacy officer can see
/// which sums the facility's figures went into and what each round let out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecureRoundAudit {
    /// 1 (masked vector and sealed shares) or 2 (unmasking material).
    pub round: u8,
    /// Hex query id of the execution.
    pub query_id: String,
    /// Members of the cohort (0 when the request was refused before it was read).
    pub cohort_size: u32,
    /// Hex SHA-256 cohort hash (members and their masking keys); empty when unknown.
    pub cohort_hash: String,
    /// Shamir threshold t.
    pub threshold: u32,
    /// Round 2: the members the gateway called dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// What left the node, in words (empty for a refusal).
    pub revealed: String,
}

/// What an [`AuditTrail::append`] needs; the chain fields are filled in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditEntry {
    /// See [`AuditRecord::caller`].
    pub caller: String,
    /// See [`AuditRecord::querier`].
    pub querier: String,
    /// See [`AuditRecord::query`].
    pub query: String,
    /// See [`AuditRecord::outcome`].
    pub outcome: &'static str,
    /// See [`AuditRecord::released_cells`].
    pub released_cells: u32,
    /// See [`AuditRecord::suppressed_cells`].
    pub suppressed_cells: u32,
    /// See [`AuditRecord::rho_spent_micros`].
    pub rho_spent_micros: u64,
    /// See [`AuditRecord::refusal`].
    pub refusal: String,
    /// See [`AuditRecord::peer`].
    pub peer: String,
    /// See [`AuditRecord::secure_round`].
    pub secure_round: Option<SecureRoundAudit>,
}

/// Why the trail could not be written, read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// sled failed (or another process, such as the running node, holds the store).
    #[error("the audit store could not be read (a running node locks it: stop the node first)")]
    Sled(#[from] sled::Error),
    /// The listing could not be written.
    #[error("writing the listing failed")]
    Io(#[from] std::io::Error),
    /// A record does not fit the chain.
    #[error("audit record {seq} has been altered or removed: {why}")]
    Broken {
        /// Sequence number (stored key) of the first record that does not fit.
        seq: u64,
        /// What does not fit.
        why: String,
    },
}

/// The append side of the trail, owned by the node; clones append to the same chain (the
/// aggregate service and the federation listener's security log both write to it).
#[derive(Clone)]
pub struct AuditTrail {
    tree: Tree,
    /// Serialises appends so each record chains onto the one before.
    head: Arc<Mutex<()>>,
}

impl AuditTrail {
    /// The trail in `tree`.
    pub fn new(tree: Tree) -> Self {
        Self {
            tree,
            head: Arc::new(Mutex::new(())),
        }
    }

    /// Appends `entry` at the end of the chain (not yet durable: flush the store before
    /// answering).
    pub fn append(&self, entry: AuditEntry) -> Result<AuditRecord, AuditError> {
        let _head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let (seq, prev) = match self.tree.last()? {
            Some((key, value)) => (
                decode_seq(&key)? + 1,
                hex(&value[..HASH_LEN.min(value.len())]),
            ),
            None => (1, "0".repeat(2 * HASH_LEN)),
        };
        let record = AuditRecord {
            seq,
            time_ms: now_ms(),
            caller: entry.caller,
            querier: entry.querier,
            query: entry.query,
            outcome: entry.outcome.to_string(),
            released_cells: entry.released_cells,
            suppressed_cells: entry.suppressed_cells,
            rho_spent_micros: entry.rho_spent_micros,
            refusal: entry.refusal,
            peer: entry.peer,
            secure_round: entry.secure_round,
            prev,
        };
        let body = serde_json::to_vec(&record).map_err(|e| AuditError::Broken {
            seq,
            why: e.to_string(),
        })?;
        let mut value = digest(&SHA256, &body).as_ref().to_vec();
        value.extend_from_slice(&body);
        self.tree.insert(seq.to_be_bytes(), value)?;
        Ok(record)
    }
}

/// A refused handshake or call goes on the trail as a `refused` record: the caller is who the
/// certificate named, the query what was asked (a method, or `TLS handshake`), the refusal why.
/// Records are not flushed one by one: sled writes them within its flush interval, and the
/// next answered query makes everything before it durable.
impl RefusalAudit for AuditTrail {
    fn record(&self, listener: &str, refusal: &Refusal, unrecorded: u64) {
        let mut why = format!(
            "{} refused on the {listener} listener ({}): {}",
            refusal.stage.as_str(),
            refusal.reason.as_str(),
            refusal.detail
        );
        if unrecorded > 0 {
            why.push_str(&format!(
                " [{unrecorded} earlier refusals over the rate limit are counted in \
                 psonet_refusals_total, not recorded one by one]"
            ));
        }
        let entry = AuditEntry {
            caller: refusal
                .who
                .clone()
                .unwrap_or_else(|| "(no certificate)".into()),
            query: refusal.what.clone(),
            outcome: "refused",
            refusal: why,
            peer: refusal.peer.map(|p| p.to_string()).unwrap_or_default(),
            ..Default::default()
        };
        if let Err(e) = self.append(entry) {
            tracing::error!(error = %e, "could not audit a refusal");
        }
    }
}

/// Appends `entry` to `trail` and makes it durable with `store`'s next flush — shared with every
/// write and record made meanwhile (group commit) — before anything is released; a failure is
/// what the caller is told instead.
pub(crate) async fn record_durably(
    trail: &AuditTrail,
    store: &crate::store::Store,
    entry: AuditEntry,
) -> Result<(), tonic::Status> {
    trail.append(entry).map_err(|e| {
        store
            .failure()
            .record_cause(&format!("the audit trail could not be written: {e}"));
        tonic::Status::unavailable("the node could not write its audit trail; nothing was released")
    })?;
    store
        .make_durable()
        .await
        .map_err(crate::reporting::store_status)
}

/// Checks the whole chain in `tree`; returns every record and the head hash.
pub fn verify(tree: &Tree) -> Result<(Vec<AuditRecord>, String), AuditError> {
    let mut records = Vec::new();
    let mut prev = "0".repeat(2 * HASH_LEN);
    for item in tree.iter() {
        let (key, value) = item?;
        let seq = decode_seq(&key)?;
        let broken = |why: String| AuditError::Broken { seq, why };
        if value.len() < HASH_LEN {
            return Err(broken("too short to hold a hash".into()));
        }
        let (hash, body) = value.split_at(HASH_LEN);
        if digest(&SHA256, body).as_ref() != hash {
            return Err(broken("its content does not match its hash".into()));
        }
        let record: AuditRecord =
            serde_json::from_slice(body).map_err(|e| broken(format!("does not decode: {e}")))?;
        let expected = records.len() as u64 + 1;
        if record.seq != seq || seq != expected {
            return Err(broken(format!("expected record {expected} here")));
        }
        if record.prev != prev {
            return Err(broken("it does not chain onto the record before it".into()));
        }
        prev = hex(hash);
        records.push(record);
    }
    Ok((records, prev))
}

/// Opens the trail of a stopped node's data directory (a running node holds its lock).
pub fn open(data_dir: &Path) -> Result<Tree, AuditError> {
    let db = sled::Config::new().path(data_dir).open()?;
    Ok(db.open_tree(AUDIT_TREE)?)
}

/// Every record in `tree`, decoded but not checked.
pub fn records(tree: &Tree) -> Result<Vec<AuditRecord>, AuditError> {
    let mut out = Vec::new();
    for item in tree.iter() {
        let (key, value) = item?;
        let seq = decode_seq(&key)?;
        let record = value
            .get(HASH_LEN..)
            .and_then(|body| serde_json::from_slice(body).ok())
            .ok_or_else(|| AuditError::Broken {
                seq,
                why: "does not decode".into(),
            })?;
        out.push(record);
    }
    Ok(out)
}

/// `psonet node audit`: lists the records of the stopped node in `data_dir` from `since_ms`
/// on; with `check`, verifies the whole chain first and ends with its length and head hash.
pub fn report(
    data_dir: &Path,
    since_ms: u64,
    check: bool,
    out: &mut impl std::io::Write,
) -> Result<(), AuditError> {
    let tree = open(data_dir)?;
    if !check {
        list(&records(&tree)?, since_ms, out)?;
        return Ok(());
    }
    let (records, head) = verify(&tree)?;
    list(&records, since_ms, out)?;
    writeln!(
        out,
        "audit trail intact: {} records, head {head}",
        records.len()
    )?;
    Ok(())
}

/// Writes the records at or after `since_ms` to `out`, one line each.
pub fn list(
    records: &[AuditRecord],
    since_ms: u64,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    for r in records.iter().filter(|r| r.time_ms >= since_ms) {
        let spent = psonet_core::disclosure::zcdp::Rho::from_micros(r.rho_spent_micros);
        write!(
            out,
            "{:>6}  {}  {}  querier={}  {}  released={} suppressed={} rho={}  {}",
            r.seq,
            utc::format_ms(r.time_ms),
            r.caller,
            r.querier,
            r.outcome,
            r.released_cells,
            r.suppressed_cells,
            spent,
            r.query
        )?;
        if !r.peer.is_empty() {
            write!(out, "  from {}", r.peer)?;
        }
        if let Some(s) = &r.secure_round {
            write!(
                out,
                "  secure round {} query_id={} cohort={} hash={} t={}",
                s.round, s.query_id, s.cohort_size, s.cohort_hash, s.threshold
            )?;
            if !s.dropped.is_empty() {
                write!(out, " dropped={}", s.dropped.join(","))?;
            }
            if !s.revealed.is_empty() {
                write!(out, " revealed: {}", s.revealed)?;
            }
        }
        if !r.refusal.is_empty() {
            write!(out, "  refusal: {}", r.refusal)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn decode_seq(key: &[u8]) -> Result<u64, AuditError> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| AuditError::Broken {
            seq: 0,
            why: format!("key {key:02x?} is not a sequence number"),
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(query: &str) -> AuditEntry {
        AuditEntry {
            caller: "spiffe://n/gateway".into(),
            querier: "spiffe://n/partner/p".into(),
            query: query.into(),
            outcome: "answered",
            released_cells: 3,
            suppressed_cells: 1,
            ..Default::default()
        }
    }

    fn trail() -> (tempfile::TempDir, AuditTrail, Tree) {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::Config::new()
            .temporary(true)
            .path(dir.path())
            .open()
            .unwrap()
            .open_tree(AUDIT_TREE)
            .unwrap();
        (dir, AuditTrail::new(tree.clone()), tree)
    }

    #[test]
    fn records_chain_and_verify() {
        let (_dir, trail, tree) = trail();
        for q in ["a", "b", "c"] {
            trail.append(entry(q)).unwrap();
        }
        let (records, head) = verify(&tree).unwrap();
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(records[1].prev.len(), 64);
        assert_eq!(head.len(), 64);
    }

    #[test]
    fn an_edited_record_is_named() {
        let (_dir, trail, tree) = trail();
        for q in ["a", "b", "c"] {
            trail.append(entry(q)).unwrap();
        }
        let key = 2u64.to_be_bytes();
        let value = tree.get(key).unwrap().unwrap();
        let edited = String::from_utf8_lossy(&value[HASH_LEN..])
            .replace("\"released_cells\":3", "\"released_cells\":9");
        let mut forged = value[..HASH_LEN].to_vec();
        forged.extend_from_slice(edited.as_bytes());
        tree.insert(key, forged).unwrap();
        match verify(&tree) {
            Err(AuditError::Broken { seq, .. }) => assert_eq!(seq, 2),
            other => panic!("{other:?}"),
        }
        // Re-hashing the forged record does not help: the next one no longer chains onto it.
        let body = edited.into_bytes();
        let mut rehashed = digest(&SHA256, &body).as_ref().to_vec();
        rehashed.extend_from_slice(&body);
        tree.insert(key, rehashed).unwrap();
        match verify(&tree) {
            Err(AuditError::Broken { seq, .. }) => assert_eq!(seq, 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_removed_record_is_named() {
        let (_dir, trail, tree) = trail();
        for q in ["a", "b", "c"] {
            trail.append(entry(q)).unwrap();
        }
        tree.remove(2u64.to_be_bytes()).unwrap();
        match verify(&tree) {
            Err(AuditError::Broken { seq, .. }) => assert_eq!(seq, 3),
            other => panic!("{other:?}"),
        }
    }
}
