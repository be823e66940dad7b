//! The node's embedded store, on redb: every verified record the node holds,
//! the state of each release, and an append-only log of accepted records.
//!
//! Tables (all keys and values are bytes; see `docs/node.md`):
//!
//! | table | key | value |
//! |---|---|---|
//! | `records` | record id (32 bytes) | signed record bytes, for every record held |
//! | `releases` | release key (`author ‖ package ‖ 0x00 ‖ version`) | the release state (JSON) |
//! | `conflicts` | release key, for releases with a conflict or equivocation | empty |
//!
//! and the log's own tables (`log.rs`): the log of held records by
//! position, compacted as records are superseded; and the catalog's
//! (`catalog.rs`): search words, recent releases and totals, so that
//! listings never scan.
//!
//! Every write is one redb transaction, committed durably before the call
//! returns, so a record reported as stored survives `kill -9`. Applying the
//! same record twice changes nothing.

use std::collections::BTreeSet;
use std::path::Path;

use ipsr_proto::{
    Applied, AuthorId, Change, ContentId, ForeignRecord, PackageKey, PackageName, PackageState,
    RecordId, ReleaseKey, ReleaseParts, ReleaseState, SignedRecord, VerifyError,
};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

mod catalog;
mod log;

pub use log::LogPage;

const RECORDS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("records");
const RELEASES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("releases");
const CONFLICTS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("conflicts");
const CODES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("codes");

/// An error of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// Stored bytes no longer verify or parse: the data dir was damaged.
    #[error("corrupt store entry: {0}")]
    Corrupt(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<VerifyError> for StoreError {
    fn from(e: VerifyError) -> Self {
        Self::Corrupt(format!("stored record: {e}"))
    }
}

impl From<ForeignRecord> for StoreError {
    fn from(e: ForeignRecord) -> Self {
        Self::Corrupt(format!("release state: {e}"))
    }
}

/// What [`Store::apply`] did with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The record.
    pub id: RecordId,
    /// What the ordering rules decided.
    pub applied: Applied,
    /// Its position in the log, when it was appended (kept: see `Change::is_kept`).
    pub position: Option<u64>,
}

impl Stored {
    /// Whether the record is new to this node and should be passed on.
    pub fn is_news(&self) -> bool {
        self.position.is_some()
    }
}

/// A Kademlia key and the signed record stored under it.
pub type DhtValue = (Vec<u8>, Vec<u8>);

/// Counts, for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Records held.
    pub records: u64,
    /// Releases (author + package + version) known.
    pub releases: u64,
    /// The last log position given (0 before the first record); it never
    /// goes back, also when entries are compacted.
    pub log_head: u64,
    /// Entries in the log: one per record held, plus witnesses of
    /// equivocations (`docs/node.md`, "The record log").
    pub log_entries: u64,
    /// Releases with a CID conflict or an equivocation.
    pub conflicts: u64,
}

/// The saved form of a release state: record ids point into `records`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Row {
    release: Option<String>,
    #[serde(default)]
    release_equivocated: bool,
    yank: Option<String>,
    #[serde(default)]
    yank_equivocated: bool,
    /// Per CID (text), the id of the greatest release record naming it.
    #[serde(default)]
    evidence: Vec<(String, String)>,
}

/// The embedded store. Cheap to share behind an `Arc`; every method is
/// blocking (call it from `spawn_blocking` in async code).
#[derive(Debug)]
pub struct Store {
    db: Database,
}

/// The most memory redb may use to cache the store's pages (its default,
/// 1 GiB, would let a daemon's resident memory follow the store's size up
/// to that); reads beyond it come from the OS page cache.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

impl Store {
    /// Opens or creates the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)?;
        let tx = db.begin_write()?;
        {
            let recs = tx.open_table(RECORDS)?;
            let rels = tx.open_table(RELEASES)?;
            log::open(&tx, &recs, &rels)?;
            catalog::open(&tx, &recs, &rels)?;
        }
        tx.open_table(CONFLICTS)?;
        tx.open_table(CODES)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// Applies verified records in one durable transaction, in order.
    ///
    /// Records that are all held already (gossip duplicates, DHT re-puts,
    /// sync) are answered `Duplicate` from a read transaction: they change
    /// nothing, so they neither wait for the write lock nor sync the disk.
    pub fn apply(&self, records: Vec<SignedRecord>) -> Result<Vec<Stored>, StoreError> {
        if self.all_held(&records)? {
            return Ok(records
                .iter()
                .map(|record| Stored {
                    id: record.id(),
                    applied: Applied {
                        change: Change::Duplicate,
                        reports: vec![],
                    },
                    position: None,
                })
                .collect());
        }
        let tx = self.db.begin_write()?;
        let mut out = Vec::with_capacity(records.len());
        {
            let mut recs = tx.open_table(RECORDS)?;
            let mut rels = tx.open_table(RELEASES)?;
            let mut log = log::LogWriter::open(&tx)?;
            let mut conflicts = tx.open_table(CONFLICTS)?;
            let mut codes = tx.open_table(CODES)?;
            let mut touched: BTreeSet<PackageKey> = BTreeSet::new();
            for record in records {
                let id = record.id();
                if recs.get(&id.as_bytes()[..])?.is_some() {
                    out.push(Stored {
                        id,
                        applied: Applied {
                            change: Change::Duplicate,
                            reports: vec![],
                        },
                        position: None,
                    });
                    continue;
                }
                let key = record.release_key();
                let key_bytes = release_key_bytes(&key);
                let row = rels.get(&key_bytes[..])?.map(|v| v.value().to_vec());
                let mut state = match row {
                    Some(row) => load_state(&recs, key.clone(), &row)?,
                    None => ReleaseState::new(key.clone()),
                };
                let bytes = record.to_bytes();
                let before = log::Before::of(&state);
                let code_before = state.release().map(|r| code_key(&key, r));
                let applied = state.apply(record)?;
                let code_after = state.release().map(|r| code_key(&key, r));
                if code_before != code_after {
                    if let Some(old) = code_before {
                        codes.remove(&old[..])?;
                    }
                    if let Some(new) = code_after {
                        codes.insert(&new[..], &[][..])?;
                    }
                }
                let after: BTreeSet<RecordId> = state.records().into_keys().collect();
                let mut position = None;
                if applied.change.is_kept() {
                    recs.insert(&id.as_bytes()[..], &bytes[..])?;
                    position = Some(log.append(&id, &bytes)?);
                }
                for gone in before.held().difference(&after) {
                    recs.remove(&gone.as_bytes()[..])?;
                }
                log.settle(&key_bytes, &before, &state, &after)?;
                if state.conflicting_cids().is_some() || state.is_equivocated() {
                    conflicts.insert(&key_bytes[..], &[][..])?;
                }
                if before.held() != &after || !applied.reports.is_empty() {
                    let row = save_state(state);
                    rels.insert(&key_bytes[..], &row[..])?;
                    touched.insert(key.package_key());
                }
                out.push(Stored {
                    id,
                    applied,
                    position,
                });
            }
            log.finish()?;
            let mut catalog = catalog::CatalogWriter::open(&tx)?;
            for key in touched {
                let state = load_package(&recs, &rels, &key)?;
                catalog.update(&key, state.as_ref())?;
            }
            catalog.finish()?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Whether every one of `records` is held.
    fn all_held(&self, records: &[SignedRecord]) -> Result<bool, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        for record in records {
            if recs.get(&record.id().as_bytes()[..])?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A held record by id.
    pub fn record(&self, id: &RecordId) -> Result<Option<SignedRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let bytes = recs.get(&id.as_bytes()[..])?;
        bytes.map(|b| verify_stored(b.value())).transpose()
    }

    /// The state of one release.
    pub fn release(&self, key: &ReleaseKey) -> Result<Option<ReleaseState>, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let rels = tx.open_table(RELEASES)?;
        let row = rels.get(&release_key_bytes(key)[..])?;
        row.map(|row| load_state(&recs, key.clone(), row.value()))
            .transpose()
    }

    /// The state of one package (every version), or `None` if unknown.
    pub fn package(&self, key: &PackageKey) -> Result<Option<PackageState>, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let rels = tx.open_table(RELEASES)?;
        load_package(&recs, &rels, key)
    }

    /// Packages matching `query` by the rules of [`crate::search`], best
    /// first, from the catalog's word index (no scan; `docs/node.md`, "The
    /// catalog"). At most `limit`.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<crate::search::Hit>, StoreError> {
        let tx = self.db.begin_read()?;
        catalog::search(&tx, query, limit)
    }

    /// The most recent releases that are not yanked: their release records,
    /// newest `created_at` first (ties: `author/package@version`, greatest
    /// first). At most `limit`.
    pub fn recent(&self, limit: usize) -> Result<Vec<SignedRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        catalog::recent(&tx, &recs, limit)
    }

    /// The releases of [`recent`](Self::recent), in its order, read from
    /// the catalog's keys alone (no record is read).
    pub fn recent_keys(&self, limit: usize) -> Result<Vec<ReleaseKey>, StoreError> {
        let tx = self.db.begin_read()?;
        catalog::recent_keys(&tx, limit)
    }

    /// Totals over every package (kept by the catalog as records come).
    pub fn totals(&self) -> Result<crate::listing::Totals, StoreError> {
        let tx = self.db.begin_read()?;
        catalog::totals(&tx)
    }

    /// The newest release of a package (rule 7 of `docs/records.md`),
    /// without loading every version: it walks the versions from the highest
    /// `version_code` down until it finds one that is not yanked.
    pub fn newest(&self, key: &PackageKey) -> Result<Option<SignedRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let rels = tx.open_table(RELEASES)?;
        let codes = tx.open_table(CODES)?;
        let prefix = package_prefix(key);
        let mut end = prefix.clone();
        end.extend_from_slice(&[0xff; 9]);
        let mut group: Vec<ReleaseState> = Vec::new();
        let mut group_code = None;
        for entry in codes.range(&prefix[..]..&end[..])?.rev() {
            let (k, _) = entry?;
            let rest = &k.value()[prefix.len()..];
            let (code, version) = rest
                .split_at_checked(8)
                .ok_or_else(|| StoreError::Corrupt("code key".into()))?;
            if group_code.as_deref().is_some_and(|c: &[u8]| c != code) {
                if let Some(newest) = ipsr_proto::newest(&group) {
                    return Ok(Some(newest.clone()));
                }
                group.clear();
            }
            group_code = Some(code.to_vec());
            let version = parse_text(version, "code key")?;
            let rkey = ReleaseKey {
                author: key.author,
                package: key.package.clone(),
                version,
            };
            if let Some(row) = rels.get(&release_key_bytes(&rkey)[..])? {
                group.push(load_state(&recs, rkey, row.value())?);
            }
        }
        Ok(ipsr_proto::newest(&group).cloned())
    }

    /// The packages an author has published, in name order.
    pub fn packages_of(&self, author: &AuthorId) -> Result<Vec<PackageName>, StoreError> {
        let tx = self.db.begin_read()?;
        let rels = tx.open_table(RELEASES)?;
        let prefix = author.as_bytes();
        let mut out: Vec<PackageName> = Vec::new();
        for entry in rels.range(&prefix[..]..)? {
            let (k, _) = entry?;
            if !k.value().starts_with(prefix) {
                break;
            }
            let name = parse_release_key(k.value())?.package;
            if out.last() != Some(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Every held record's id with its `created_at`, for set reconciliation.
    pub fn record_ids(&self) -> Result<Vec<(u64, RecordId)>, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let mut out = Vec::with_capacity(usize::try_from(recs.len()?).unwrap_or(0));
        for entry in recs.iter()? {
            let (id, bytes) = entry?;
            let id: [u8; 32] = id
                .value()
                .try_into()
                .map_err(|_| StoreError::Corrupt("record id".into()))?;
            out.push((created_at_of(bytes.value())?, RecordId::from_bytes(id)));
        }
        Ok(out)
    }

    /// Up to `limit` release keys after `after` (in key order), for walking
    /// every release a piece at a time; pass the last key back as `after`.
    pub fn release_keys(
        &self,
        after: Option<&ReleaseKey>,
        limit: usize,
    ) -> Result<Vec<ReleaseKey>, StoreError> {
        let tx = self.db.begin_read()?;
        let rels = tx.open_table(RELEASES)?;
        let start = after.map(release_key_bytes).unwrap_or_default();
        let mut out = Vec::new();
        for entry in rels.range(&start[..]..)? {
            let (k, _) = entry?;
            if after.is_some() && k.value() == &start[..] {
                continue;
            }
            out.push(parse_release_key(k.value())?);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// What this node serves in the DHT for a release: under the release's
    /// key its current record (release or yank), and under its package's key
    /// the package's newest release record, when there is one.
    pub fn dht_values(&self, key: &ReleaseKey) -> Result<Vec<DhtValue>, StoreError> {
        let mut out = Vec::new();
        if let Some(current) = self.release(key)?.as_ref().and_then(ReleaseState::current) {
            out.push((key.dht_key(), current.to_bytes()));
        }
        let package = key.package_key();
        if let Some(newest) = self.newest(&package)? {
            out.push((package.dht_key(), newest.to_bytes()));
        }
        Ok(out)
    }

    /// The raw bytes of held records, for answering sync requests.
    pub fn record_bytes(&self, ids: &[RecordId]) -> Result<Vec<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(bytes) = recs.get(&id.as_bytes()[..])? {
                out.push(bytes.value().to_vec());
            }
        }
        Ok(out)
    }

    /// Counts of what is stored.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let tx = self.db.begin_read()?;
        let (log_head, log_entries) = log::counts(&tx)?;
        Ok(Stats {
            records: tx.open_table(RECORDS)?.len()?,
            releases: tx.open_table(RELEASES)?.len()?,
            log_head,
            log_entries,
            conflicts: tx.open_table(CONFLICTS)?.len()?,
        })
    }
}

/// `author ‖ package ‖ 0x00 ‖ version`: names and versions hold no NUL byte.
fn release_key_bytes(key: &ReleaseKey) -> Vec<u8> {
    let mut out = package_prefix(&key.package_key());
    out.extend_from_slice(key.version.to_string().as_bytes());
    out
}

/// `package prefix ‖ version_code (8 bytes, big-endian) ‖ version`: the
/// `codes` index orders a package's versions by version code.
fn code_key(key: &ReleaseKey, release: &SignedRecord) -> Vec<u8> {
    let code = release.record().as_release().map_or(0, |r| r.version_code);
    let mut out = package_prefix(&key.package_key());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(key.version.to_string().as_bytes());
    out
}

/// Parses UTF-8 text stored in a key (a package name or a version).
fn parse_text<T: std::str::FromStr>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(what.into()))
}

fn parse_release_key(bytes: &[u8]) -> Result<ReleaseKey, StoreError> {
    let corrupt = || StoreError::Corrupt("release key".into());
    let (author, rest) = bytes.split_at_checked(32).ok_or_else(corrupt)?;
    let author = AuthorId::from_bytes(author).map_err(|_| corrupt())?;
    let mut parts = rest.splitn(2, |b| *b == 0);
    let package = parse_text(parts.next().ok_or_else(corrupt)?, "release key")?;
    let version = parse_text(parts.next().ok_or_else(corrupt)?, "release key")?;
    Ok(ReleaseKey {
        author,
        package,
        version,
    })
}

/// Every version of a package, read from the tables of a transaction.
fn load_package(
    recs: &impl ReadableTable<&'static [u8], &'static [u8]>,
    rels: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &PackageKey,
) -> Result<Option<PackageState>, StoreError> {
    let prefix = package_prefix(key);
    let mut state = PackageState::new(key.clone());
    let mut any = false;
    for entry in rels.range(&prefix[..]..)? {
        let (k, row) = entry?;
        if !k.value().starts_with(&prefix) {
            break;
        }
        let rkey = parse_release_key(k.value())?;
        state.insert(load_state(recs, rkey, row.value())?)?;
        any = true;
    }
    Ok(any.then_some(state))
}

fn package_prefix(key: &PackageKey) -> Vec<u8> {
    let mut out = key.author.as_bytes().to_vec();
    out.extend_from_slice(key.package.as_str().as_bytes());
    out.push(0);
    out
}

fn verify_stored(bytes: &[u8]) -> Result<SignedRecord, StoreError> {
    // Records were verified before they were stored: decode and check the
    // fields (a damaged data dir shows up as an error), but do not pay for
    // the signature again on every read.
    Ok(SignedRecord::from_trusted_storage(bytes)?)
}

fn created_at_of(bytes: &[u8]) -> Result<u64, StoreError> {
    let unverified = SignedRecord::from_bytes(bytes)?;
    Ok(ipsr_proto::Record::decode(unverified.payload())?.created_at())
}

fn load_state(
    recs: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: ReleaseKey,
    row: &[u8],
) -> Result<ReleaseState, StoreError> {
    let row: Row = serde_json::from_slice(row)
        .map_err(|e| StoreError::Corrupt(format!("release row: {e}")))?;
    let load = |id: &str| -> Result<SignedRecord, StoreError> {
        let mut raw = [0u8; 32];
        hex::decode_to_slice(id, &mut raw).map_err(|_| StoreError::Corrupt("record id".into()))?;
        let bytes = recs
            .get(&raw[..])?
            .ok_or_else(|| StoreError::Corrupt(format!("missing record {id}")))?;
        verify_stored(bytes.value())
    };
    let mut evidence = std::collections::BTreeMap::new();
    let mut release = None;
    for (cid, id) in &row.evidence {
        let cid = cid
            .parse::<ContentId>()
            .map_err(|_| StoreError::Corrupt("cid".into()))?;
        let record = load(id)?;
        if row.release.as_deref() == Some(id.as_str()) {
            release = Some(record.clone());
        }
        evidence.insert(cid, record);
    }
    if release.is_none() {
        release = row.release.as_deref().map(load).transpose()?;
    }
    let parts = ReleaseParts {
        release,
        release_equivocated: row.release_equivocated,
        yank: row.yank.as_deref().map(load).transpose()?,
        yank_equivocated: row.yank_equivocated,
        evidence,
    };
    Ok(ReleaseState::from_parts(key, parts)?)
}

fn save_state(state: ReleaseState) -> Vec<u8> {
    let parts = state.into_parts();
    let row = Row {
        release: parts.release.map(|r| r.id().to_string()),
        release_equivocated: parts.release_equivocated,
        yank: parts.yank.map(|r| r.id().to_string()),
        yank_equivocated: parts.yank_equivocated,
        evidence: parts
            .evidence
            .iter()
            .map(|(c, r)| (c.to_string(), r.id().to_string()))
            .collect(),
    };
    serde_json::to_vec(&row).expect("a row of strings and bools serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipsr_proto::{AuthorKey, Report};
    use ipsr_testkit::{cid, release, yank};
    use proptest::prelude::*;

    /// A store in a fresh temp dir (also for `log.rs`'s tests).
    pub(super) fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn apply_is_idempotent_and_logged() {
        let (_dir, store) = open();
        let key = AuthorKey::from_seed(&[1; 32]);
        let r = release(&key, "1.0.0").code(1).seq(1).cid(cid(1)).sign();
        let first = store.apply(vec![r.clone()]).unwrap();
        assert_eq!(first[0].position, Some(1));
        assert_eq!(first[0].applied.change, Change::New);
        let again = store.apply(vec![r.clone(), r.clone()]).unwrap();
        assert!(
            again
                .iter()
                .all(|s| s.applied.change == Change::Duplicate && !s.is_news())
        );
        assert_eq!(
            store.stats().unwrap(),
            Stats {
                records: 1,
                releases: 1,
                log_head: 1,
                log_entries: 1,
                conflicts: 0
            }
        );
        assert_eq!(store.record(&r.id()).unwrap(), Some(r.clone()));
        let log = store.log_after(0, 10).unwrap();
        assert_eq!(log.entries, vec![(1, r)]);
        assert_eq!((log.next, log.head), (1, 1));
        assert!(store.log_after(1, 10).unwrap().entries.is_empty());
    }

    #[test]
    fn held_records_are_answered_without_a_write() {
        let (dir, store) = open();
        let key = AuthorKey::from_seed(&[1; 32]);
        let r = release(&key, "1.0.0").code(1).seq(1).cid(cid(1)).sign();
        store.apply(vec![r.clone()]).unwrap();
        let path = dir.path().join("store.redb");
        let before = std::fs::read(&path).unwrap();
        for _ in 0..10 {
            let again = store.apply(vec![r.clone(), r.clone()]).unwrap();
            assert!(
                again
                    .iter()
                    .all(|s| s.applied.change == Change::Duplicate && !s.is_news())
            );
        }
        assert!(
            std::fs::read(&path).unwrap() == before,
            "a duplicate wrote to the store"
        );
    }

    #[test]
    fn superseded_records_leave_the_set_and_the_log() {
        let (_dir, store) = open();
        let key = AuthorKey::from_seed(&[1; 32]);
        let old = release(&key, "1.0.0").code(1).seq(1).cid(cid(1)).sign();
        let fix = release(&key, "1.0.0").code(2).seq(2).cid(cid(1)).sign();
        store.apply(vec![old.clone(), fix.clone()]).unwrap();
        assert_eq!(store.record(&old.id()).unwrap(), None);
        let ids: Vec<_> = store
            .record_ids()
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(ids, vec![fix.id()]);
        // The old record's entry is compacted; its position is not reused.
        let raw = store.log_bytes_after(0, 10).unwrap();
        assert_eq!(raw.entries, vec![(2, fix.to_bytes())]);
        assert_eq!((raw.next, raw.head), (2, 2));
        let decoded = store.log_after(0, 10).unwrap();
        assert_eq!(decoded.entries, vec![(2, fix.clone())]);
        assert_eq!(store.log_bytes_after(1, 10).unwrap().entries.len(), 1);
        // Replaying the old one changes nothing.
        let replay = store.apply(vec![old]).unwrap();
        assert_eq!(replay[0].applied.change, Change::Stale);
        let stats = store.stats().unwrap();
        assert_eq!((stats.log_head, stats.log_entries), (2, 1));
    }

    #[test]
    fn packages_yanks_and_conflicts() {
        let (_dir, store) = open();
        let key = AuthorKey::from_seed(&[1; 32]);
        let a = release(&key, "1.0.0").code(1).seq(1).cid(cid(1)).sign();
        let b = release(&key, "1.1.0").code(2).seq(2).cid(cid(2)).sign();
        let other = release(&key, "0.1.0")
            .package("com.example.other")
            .code(3)
            .seq(3)
            .cid(cid(3))
            .sign();
        store.apply(vec![a.clone(), b.clone(), other]).unwrap();
        let pkey = a.record().package_key();
        assert_eq!(store.package(&pkey).unwrap().unwrap().newest(), Some(&b));
        store
            .apply(vec![yank(&key, "1.1.0").seq(4).sign()])
            .unwrap();
        let package = store.package(&pkey).unwrap().unwrap();
        assert_eq!(package.newest(), Some(&a));
        assert_eq!(package.releases().count(), 2);
        let names: Vec<String> = store
            .packages_of(&key.author_id())
            .unwrap()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["com.example.app", "com.example.other"]);
        let stranger = AuthorKey::from_seed(&[2; 32]).author_id();
        assert!(store.packages_of(&stranger).unwrap().is_empty());
        assert_eq!(
            store
                .package(&PackageKey {
                    author: stranger,
                    package: pkey.package.clone()
                })
                .unwrap(),
            None
        );

        // Re-pointing 1.0.0 at another CID with a higher seq: it wins, both are kept.
        let repointed = release(&key, "1.0.0").code(5).seq(5).cid(cid(9)).sign();
        let stored = store.apply(vec![repointed.clone()]).unwrap();
        assert!(matches!(
            stored[0].applied.reports[..],
            [Report::CidConflict { .. }]
        ));
        assert_eq!(
            store.record(&a.id()).unwrap(),
            Some(a.clone()),
            "evidence kept"
        );
        assert_eq!(store.stats().unwrap().conflicts, 1);
        let state = store.release(&a.release_key()).unwrap().unwrap();
        assert_eq!(state.release(), Some(&repointed));
        assert_eq!(state.conflicting_cids().map(|c| c.len()), Some(2));
    }

    #[test]
    fn walks_release_keys_in_pieces_and_serves_dht_values() {
        let (_dir, store) = open();
        let key = AuthorKey::from_seed(&[1; 32]);
        let records: Vec<_> = (0..5)
            .map(|i| {
                release(&key, &format!("1.{i}.0"))
                    .code(i + 1)
                    .seq(i + 1)
                    .cid(cid(1))
                    .sign()
            })
            .collect();
        store.apply(records.clone()).unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.release_keys(after.as_ref(), 2).unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().cloned();
            seen.extend(page);
        }
        let expected: Vec<_> = records.iter().map(|r| r.release_key()).collect();
        assert_eq!(seen, expected);
        let values = store.dht_values(&records[0].release_key()).unwrap();
        assert_eq!(
            values[0],
            (records[0].release_key().dht_key(), records[0].to_bytes())
        );
        let newest = &records[4];
        assert_eq!(
            values[1],
            (newest.record().package_key().dht_key(), newest.to_bytes())
        );
    }

    #[test]
    fn survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let key = AuthorKey::from_seed(&[1; 32]);
        let r = release(&key, "1.0.0").code(1).seq(1).cid(cid(1)).sign();
        Store::open(&path).unwrap().apply(vec![r.clone()]).unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.record(&r.id()).unwrap(), Some(r));
        assert_eq!(store.stats().unwrap().log_head, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Two stores fed the same records in different orders hold the same set.
        #[test]
        fn same_records_any_order_same_store(
            (specs, shuffled) in proptest::collection::vec((0u8..3, 0u64..4, 0u8..3, any::<bool>()), 1..15)
                .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
        ) {
            let key = AuthorKey::from_seed(&[7; 32]);
            let make = |(v, seq, c, y): &(u8, u64, u8, bool)| {
                let version = format!("1.{v}.0");
                if *y { yank(&key, &version).seq(*seq).sign() }
                else { release(&key, &version).code(*seq).seq(*seq).cid(cid(u32::from(*c))).sign() }
            };
            let (_d1, s1) = open();
            let (_d2, s2) = open();
            s1.apply(specs.iter().map(make).collect()).unwrap();
            for spec in &shuffled {
                s2.apply(vec![make(spec)]).unwrap();
            }
            let mut ids1 = s1.record_ids().unwrap();
            let mut ids2 = s2.record_ids().unwrap();
            ids1.sort();
            ids2.sort();
            prop_assert_eq!(ids1, ids2);
            let pkey = make(&specs[0]).record().package_key();
                        prop_assert_eq!(s1.package(&pkey).unwrap(), s2.package(&pkey).unwrap());
            let full = s1.package(&pkey).unwrap().and_then(|p| p.newest().cloned());
            prop_assert_eq!(&s1.newest(&pkey).unwrap(), &full);
            prop_assert_eq!(&s2.newest(&pkey).unwrap(), &full);
        }
    }
}
