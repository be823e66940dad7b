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
//! | `identities` | author (32 bytes) ‖ record id (32 bytes) | an authorized identity document of the author |
//!
//! and the log's own tables (`log.rs`): the log of held records by
//! position, compacted as records are superseded; and the catalog's
//! (`catalog.rs`): search words, recent releases and totals, so that
//! listings never scan.
//!
//! Every write is one redb transaction, committed durably before the call
//! returns, so a record reported as stored survives `kill -9`. Applying the
//! same record twice changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ipsr_proto::{
    Applied, AuthorId, Authority, AuthorizedRelease, Change, ContentId, ForeignRecord,
    IdentityChange, IdentityState, PackageKey, PackageName, PackageState, RecordId, ReleaseKey,
    ReleaseParts, ReleaseState, Signed, SignedIdentity, SignedRecord, VerifyError,
};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

mod catalog;
mod log;

pub use log::LogPage;

const RECORDS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("records");
const RELEASES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("releases");
const CONFLICTS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("conflicts");
const IDENTITIES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("identities");

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
    fn duplicate(id: RecordId) -> Self {
        Self {
            id,
            applied: Applied {
                change: Change::Duplicate,
                reports: vec![],
            },
            position: None,
        }
    }

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

/// The saved form of one signer's state of a release: record ids point
/// into `records`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SlotRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    release: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    release_equivocated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    yank: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    yank_equivocated: bool,
    /// Per CID (text), the id of the greatest release record naming it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    evidence: Vec<(String, String)>,
}

/// The saved form of a release: each signer key's state (`docs/records.md`,
/// section 9). Rows written before identities hold one state at the top
/// level: the author key's.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Row {
    #[serde(flatten)]
    author: SlotRow,
    /// Per signer key (text), its state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    signers: Vec<(String, SlotRow)>,
}

/// The embedded store. Cheap to share behind an `Arc`; every method is
/// blocking (call it from `spawn_blocking` in async code).
#[derive(Debug)]
pub struct Store {
    db: Database,
    /// [`Store::generation`].
    generation: AtomicU64,
}

/// The store's write lock, held ([`Store::hold_writes`]); let go (with
/// nothing written) when dropped.
#[doc(hidden)]
#[must_use = "the lock is let go when the guard is dropped"]
pub struct WriteHold {
    _lock: redb::WriteTransaction,
}

impl std::fmt::Debug for WriteHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteHold")
    }
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
        tx.open_table(IDENTITIES)?;
        tx.commit()?;
        Ok(Self {
            db,
            generation: AtomicU64::new(0),
        })
    }

    /// How many writes have committed since the store was opened (a
    /// failed commit counts too). It moves after each write is visible to
    /// reads and before its caller hears back, so a read begun after
    /// reading generation `g` sees every write done before, and what it
    /// found may be answered again while the generation is still `g`: the
    /// next write to be done moves it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Holds the store's write lock until the returned guard is dropped:
    /// every write waits meanwhile, as behind a stalled disk (reads go on).
    /// For tests of what a node does when its disk falls behind; nothing
    /// is written under it.
    #[doc(hidden)]
    pub fn hold_writes(&self) -> Result<WriteHold, StoreError> {
        Ok(WriteHold {
            _lock: self.db.begin_write()?,
        })
    }

    /// Applies verified package records in one durable transaction, in
    /// order (see [`apply_signed`](Self::apply_signed)).
    pub fn apply(&self, records: Vec<SignedRecord>) -> Result<Vec<Stored>, StoreError> {
        self.apply_signed(records.into_iter().map(Signed::Record).collect())
    }

    /// Applies verified records and identity documents in one durable
    /// transaction, in order. A package record counts under its author's
    /// identity in force (`docs/records.md`, section 9); a document that
    /// moves the head looks at every release of its author again.
    ///
    /// Records that are all held already (gossip duplicates, DHT re-puts,
    /// sync) are answered `Duplicate` from a read transaction: they change
    /// nothing, so they neither wait for the write lock nor sync the disk.
    pub fn apply_signed(&self, items: Vec<Signed>) -> Result<Vec<Stored>, StoreError> {
        if self.all_held(&items)? {
            return Ok(items
                .iter()
                .map(|item| Stored {
                    id: item.id(),
                    applied: Applied {
                        change: Change::Duplicate,
                        reports: vec![],
                    },
                    position: None,
                })
                .collect());
        }
        let tx = self.db.begin_write()?;
        let mut out = Vec::with_capacity(items.len());
        {
            let mut w = Writer {
                recs: tx.open_table(RECORDS)?,
                rels: tx.open_table(RELEASES)?,
                log: log::LogWriter::open(&tx)?,
                conflicts: tx.open_table(CONFLICTS)?,
                idents: tx.open_table(IDENTITIES)?,
                identities: HashMap::new(),
                touched: BTreeSet::new(),
            };
            for item in items {
                out.push(match item {
                    Signed::Record(record) => w.apply_record(record)?,
                    Signed::Identity(doc) => w.apply_identity(doc)?,
                });
            }
            let Writer {
                recs,
                rels,
                log,
                touched,
                identities,
                ..
            } = w;
            log.finish()?;
            let mut catalog = catalog::CatalogWriter::open(&tx)?;
            for key in touched {
                let authority = identities.get(&key.author).map(IdentityState::authority);
                let state = load_package_with(&recs, &rels, &key, authority)?;
                catalog.update(&key, state.as_ref())?;
            }
            catalog.finish()?;
        }
        let committed = tx.commit();
        self.generation.fetch_add(1, Ordering::SeqCst);
        committed?;
        Ok(out)
    }

    /// Whether every one of `items` is held.
    fn all_held(&self, items: &[Signed]) -> Result<bool, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let idents = tx.open_table(IDENTITIES)?;
        for item in items {
            let held = match item {
                Signed::Record(r) => recs.get(&r.id().as_bytes()[..])?.is_some(),
                Signed::Identity(d) => idents.get(&identity_key(d)[..])?.is_some(),
            };
            if !held {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// An author's identity documents and the one in force.
    pub fn identity(&self, author: &AuthorId) -> Result<IdentityState, StoreError> {
        let tx = self.db.begin_read()?;
        load_identity(&tx.open_table(IDENTITIES)?, author)
    }

    /// The state of one release with each signer key's records (section 9
    /// of `docs/records.md`), and the authority they count under.
    pub fn release_signers(
        &self,
        key: &ReleaseKey,
    ) -> Result<Option<(AuthorizedRelease, Authority)>, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let rels = tx.open_table(RELEASES)?;
        let authority = load_identity(&tx.open_table(IDENTITIES)?, &key.author)?.authority();
        let row = rels.get(&release_key_bytes(key)[..])?;
        row.map(|row| load_signers(&recs, key.clone(), row.value()).map(|s| (s, authority)))
            .transpose()
    }

    /// A held record by id.
    pub fn record(&self, id: &RecordId) -> Result<Option<SignedRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let Some(bytes) = recs.get(&id.as_bytes()[..])? else {
            return Ok(None);
        };
        match SignedRecord::from_trusted_storage_any(bytes.value())? {
            Signed::Record(record) => Ok(Some(record)),
            Signed::Identity(_) => Ok(None),
        }
    }

    /// A held record or identity document by id.
    pub fn record_any(&self, id: &RecordId) -> Result<Option<Signed>, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let bytes = recs.get(&id.as_bytes()[..])?;
        Ok(bytes
            .map(|b| SignedRecord::from_trusted_storage_any(b.value()))
            .transpose()?)
    }

    /// The state of one release.
    pub fn release(&self, key: &ReleaseKey) -> Result<Option<ReleaseState>, StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let rels = tx.open_table(RELEASES)?;
        let authority = load_identity(&tx.open_table(IDENTITIES)?, &key.author)?.authority();
        let row = rels.get(&release_key_bytes(key)[..])?;
        row.map(|row| load_state(&recs, key.clone(), row.value(), &authority))
            .transpose()
    }

    /// The state of one package (every version), or `None` if unknown.
    pub fn package(&self, key: &PackageKey) -> Result<Option<PackageState>, StoreError> {
        Ok(self.package_with_identity(key)?.0)
    }

    /// [`package`](Self::package) and its author's
    /// [`identity`](Self::identity), read in one transaction.
    pub fn package_with_identity(
        &self,
        key: &PackageKey,
    ) -> Result<(Option<PackageState>, IdentityState), StoreError> {
        let tx = self.db.begin_read()?;
        let recs = tx.open_table(RECORDS)?;
        let rels = tx.open_table(RELEASES)?;
        let identity = load_identity(&tx.open_table(IDENTITIES)?, &key.author)?;
        let state = load_package_with(&recs, &rels, key, Some(identity.authority()))?;
        Ok((state, identity))
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

    /// Up to `limit` packages after `after` (in key order), for walking
    /// every package a piece at a time; pass the last key back as `after`.
    pub fn package_keys(
        &self,
        after: Option<&PackageKey>,
        limit: usize,
    ) -> Result<Vec<PackageKey>, StoreError> {
        let tx = self.db.begin_read()?;
        catalog::package_keys(&tx, after, limit)
    }

    /// Totals over every package (kept by the catalog as records come).
    pub fn totals(&self) -> Result<crate::listing::Totals, StoreError> {
        let tx = self.db.begin_read()?;
        catalog::totals(&tx)
    }

    /// The newest release of a package (rule 7 of `docs/records.md`).
    /// Rule 9 (APK certificate continuity) looks at every earlier release,
    /// so the whole package is loaded.
    pub fn newest(&self, key: &PackageKey) -> Result<Option<SignedRecord>, StoreError> {
        Ok(self.package(key)?.and_then(|p| p.newest().cloned()))
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
        // One read of the package gives both: the release's state and the
        // newest release (rule 9 needs every release anyway).
        let package = key.package_key();
        if let Some(state) = self.package(&package)? {
            if let Some(current) = state.release(&key.version).and_then(ReleaseState::current) {
                out.push((key.dht_key(), current.to_bytes()));
            }
            if let Some(newest) = state.newest() {
                out.push((package.dht_key(), newest.to_bytes()));
            }
        }
        // The author's identity, so that a node that never synced can
        // check what it finds under the two keys above.
        if let Some(value) = self.identity(&key.author)?.dht_value() {
            out.push((ipsr_proto::identity_dht_key(&key.author), value));
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

/// The tables of one write transaction, and what it learned on the way.
struct Writer<'t> {
    recs: redb::Table<'t, &'static [u8], &'static [u8]>,
    rels: redb::Table<'t, &'static [u8], &'static [u8]>,
    log: log::LogWriter<'t>,
    conflicts: redb::Table<'t, &'static [u8], &'static [u8]>,
    idents: redb::Table<'t, &'static [u8], &'static [u8]>,
    /// The identity of each author met in this transaction.
    identities: HashMap<AuthorId, IdentityState>,
    /// Packages whose catalog entry must be written again.
    touched: BTreeSet<PackageKey>,
}

impl Writer<'_> {
    fn identity(&mut self, author: &AuthorId) -> Result<&mut IdentityState, StoreError> {
        if !self.identities.contains_key(author) {
            let state = load_identity(&self.idents, author)?;
            self.identities.insert(*author, state);
        }
        Ok(self
            .identities
            .get_mut(author)
            .expect("inserted just above"))
    }

    fn apply_record(&mut self, record: SignedRecord) -> Result<Stored, StoreError> {
        let id = record.id();
        if self.recs.get(&id.as_bytes()[..])?.is_some() {
            return Ok(Stored::duplicate(id));
        }
        let key = record.release_key();
        let authority = self.identity(&key.author)?.authority();
        let key_bytes = release_key_bytes(&key);
        let row = self.rels.get(&key_bytes[..])?.map(|v| v.value().to_vec());
        let mut state = match row {
            Some(row) => load_signers(&self.recs, key.clone(), &row)?,
            None => AuthorizedRelease::new(key.clone()),
        };
        let before = self.before(&state, &authority);
        let delta = state.apply(record, &authority)?;
        let position = self.settle(&key, before, &state, &authority, &delta)?;
        Ok(Stored {
            id,
            applied: Applied {
                change: delta.change,
                reports: delta.reports,
            },
            position,
        })
    }

    /// The slots and records of a release before a change.
    fn before(&self, state: &AuthorizedRelease, authority: &Authority) -> log::Before {
        log::Before::of(
            &state.resolve(authority),
            state.records().into_keys().collect(),
        )
    }

    /// Writes what a change did to one release: the records it added
    /// (stored and logged) and removed, the log's witnesses, the
    /// conflicts and the row. Returns the log position of the last
    /// record added.
    fn settle(
        &mut self,
        key: &ReleaseKey,
        before: log::Before,
        state: &AuthorizedRelease,
        authority: &Authority,
        delta: &ipsr_proto::Delta,
    ) -> Result<Option<u64>, StoreError> {
        let key_bytes = release_key_bytes(key);
        let resolved = state.resolve(authority);
        let mut position = None;
        for added in &delta.added {
            let bytes = added.to_bytes();
            self.recs.insert(&added.id().as_bytes()[..], &bytes[..])?;
            position = Some(self.log.append(&added.id(), &bytes)?);
        }
        for gone in &delta.removed {
            self.recs.remove(&gone.as_bytes()[..])?;
        }
        let after: BTreeSet<RecordId> = state.records().into_keys().collect();
        self.log.settle(&key_bytes, &before, &resolved, &after)?;
        if resolved.conflicting_cids().is_some() || resolved.is_equivocated() {
            self.conflicts.insert(&key_bytes[..], &[][..])?;
        } else {
            self.conflicts.remove(&key_bytes[..])?;
        }
        if before.held() != &after || !delta.reports.is_empty() || before.resolved() != &resolved {
            if after.is_empty() {
                self.rels.remove(&key_bytes[..])?;
            } else {
                let row = save_signers(state);
                self.rels.insert(&key_bytes[..], &row[..])?;
            }
            self.touched.insert(key.package_key());
        }
        Ok(position)
    }

    fn apply_identity(&mut self, doc: SignedIdentity) -> Result<Stored, StoreError> {
        let id = doc.id();
        let author = doc.identity().author;
        let state = self.identity(&author)?;
        let old_authority = state.authority();
        let applied = state.apply(doc)?;
        let head_moved = applied.head_moved;
        let change = match applied.change {
            IdentityChange::New => Change::New,
            IdentityChange::Merged { previous } => Change::Replaced { previous },
            IdentityChange::Duplicate => Change::Duplicate,
            IdentityChange::Orphan | IdentityChange::Unauthorized | IdentityChange::Full => {
                Change::Stale
            }
        };
        let mut position = None;
        if applied.change.is_kept() {
            // Rewrite the author's documents: a merge replaces an envelope.
            let docs: Vec<SignedIdentity> = state.docs().cloned().collect();
            let prefix = author.as_bytes().to_vec();
            let mut end = prefix.clone();
            end.extend_from_slice(&[0xff; 33]);
            let old: Vec<Vec<u8>> = self
                .idents
                .range(&prefix[..]..&end[..])?
                .map(|e| e.map(|(k, _)| k.value().to_vec()))
                .collect::<Result<_, _>>()?;
            let kept: BTreeSet<Vec<u8>> = docs.iter().map(identity_key).collect();
            for k in old.iter().filter(|k| !kept.contains(*k)) {
                self.idents.remove(&k[..])?;
                // The envelope a merge replaced leaves the records and the log.
                let gone = RecordId::from_bytes(
                    k[32..]
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("identity key".into()))?,
                );
                self.recs.remove(&gone.as_bytes()[..])?;
                self.log.remove(&gone)?;
            }
            for d in docs.iter().filter(|d| !old.contains(&identity_key(d))) {
                let bytes = d.to_bytes();
                self.idents.insert(&identity_key(d)[..], &bytes[..])?;
                self.recs.insert(&d.id().as_bytes()[..], &bytes[..])?;
                position = Some(self.log.append(&d.id(), &bytes)?);
            }
        }
        if head_moved {
            self.restrict(&author, &old_authority)?;
        }
        Ok(Stored {
            id,
            applied: Applied {
                change,
                reports: vec![],
            },
            position,
        })
    }

    /// Looks at every release of `author` again under its identity in
    /// force, which was `old` before.
    fn restrict(&mut self, author: &AuthorId, old: &Authority) -> Result<(), StoreError> {
        let authority = self.identity(author)?.authority();
        let prefix = author.as_bytes().to_vec();
        let mut end = prefix.clone();
        end.extend_from_slice(&[0xff; 256]);
        let keys: Vec<Vec<u8>> = self
            .rels
            .range(&prefix[..]..&end[..])?
            .map(|e| e.map(|(k, _)| k.value().to_vec()))
            .collect::<Result<_, _>>()?;
        for key_bytes in keys {
            let key = parse_release_key(&key_bytes)?;
            let Some(row) = self.rels.get(&key_bytes[..])?.map(|v| v.value().to_vec()) else {
                continue;
            };
            let mut state = load_signers(&self.recs, key.clone(), &row)?;
            let before = self.before(&state, old);
            let delta = state.restrict(&authority);
            self.settle(&key, before, &state, &authority, &delta)?;
            // The catalog's newest release may change with the document's
            // `apk_certs` alone (rule 9), with no release changed.
            self.touched.insert(key.package_key());
        }
        Ok(())
    }
}

/// `author ‖ package ‖ 0x00 ‖ version`: names and versions hold no NUL byte.
fn release_key_bytes(key: &ReleaseKey) -> Vec<u8> {
    let mut out = package_prefix(&key.package_key());
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
/// A package's state under its author's implicit identity: for stores
/// written before identities.
fn load_package(
    recs: &impl ReadableTable<&'static [u8], &'static [u8]>,
    rels: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &PackageKey,
) -> Result<Option<PackageState>, StoreError> {
    load_package_with(recs, rels, key, None)
}

/// A package's state in force under `authority` (`None`: the author's
/// implicit identity).
fn load_package_with(
    recs: &impl ReadableTable<&'static [u8], &'static [u8]>,
    rels: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &PackageKey,
    authority: Option<Authority>,
) -> Result<Option<PackageState>, StoreError> {
    let authority =
        authority.unwrap_or_else(|| ipsr_proto::Identity::implicit(key.author).authority());
    let prefix = package_prefix(key);
    let mut state = PackageState::with_apk_certs(key.clone(), authority.apk_certs.clone());
    let mut any = false;
    for entry in rels.range(&prefix[..]..)? {
        let (k, row) = entry?;
        if !k.value().starts_with(&prefix) {
            break;
        }
        let rkey = parse_release_key(k.value())?;
        state.insert(load_state(recs, rkey, row.value(), &authority)?)?;
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
    Ok(match SignedRecord::from_trusted_storage_any(bytes)? {
        Signed::Record(r) => r.record().created_at(),
        Signed::Identity(d) => d.identity().created_at,
    })
}

/// The key of an identity document in `identities`: author ‖ record id.
fn identity_key(doc: &SignedIdentity) -> Vec<u8> {
    let mut key = doc.identity().author.as_bytes().to_vec();
    key.extend_from_slice(doc.id().as_bytes());
    key
}

/// An author's identity: every document held, and the one in force.
fn load_identity(
    idents: &impl ReadableTable<&'static [u8], &'static [u8]>,
    author: &AuthorId,
) -> Result<IdentityState, StoreError> {
    let prefix = author.as_bytes().to_vec();
    let mut end = prefix.clone();
    end.extend_from_slice(&[0xff; 33]);
    let mut docs = Vec::new();
    for entry in idents.range(&prefix[..]..&end[..])? {
        let (_, bytes) = entry?;
        match SignedRecord::from_trusted_storage_any(bytes.value())? {
            Signed::Identity(doc) => docs.push(doc),
            Signed::Record(_) => return Err(StoreError::Corrupt("identity entry".into())),
        }
    }
    Ok(IdentityState::from_docs(*author, docs)?)
}

/// A release's state: each signer key's records.
fn load_signers(
    recs: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: ReleaseKey,
    row: &[u8],
) -> Result<AuthorizedRelease, StoreError> {
    let row: Row = serde_json::from_slice(row)
        .map_err(|e| StoreError::Corrupt(format!("release row: {e}")))?;
    let mut signers = Vec::with_capacity(row.signers.len().max(1));
    if row.signers.is_empty() {
        signers.push((key.author, slot_state(recs, &key, &row.author)?));
    }
    for (signer, slots) in &row.signers {
        let signer: AuthorId = parse_text(signer.as_bytes(), "signer key")?;
        signers.push((signer, slot_state(recs, &key, slots)?));
    }
    Ok(AuthorizedRelease::from_signers(key, signers)?)
}

/// The release state in force under `authority`.
fn load_state(
    recs: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: ReleaseKey,
    row: &[u8],
    authority: &Authority,
) -> Result<ReleaseState, StoreError> {
    Ok(load_signers(recs, key, row)?.resolve(authority))
}

/// One signer's state of a release, from its saved form.
fn slot_state(
    recs: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &ReleaseKey,
    row: &SlotRow,
) -> Result<ReleaseState, StoreError> {
    let load = |id: &str| -> Result<SignedRecord, StoreError> {
        let id: RecordId = id
            .parse()
            .map_err(|_| StoreError::Corrupt("record id".into()))?;
        let bytes = recs
            .get(&id.as_bytes()[..])?
            .ok_or_else(|| StoreError::Corrupt(format!("missing record {id}")))?;
        crate::decoded::get_or_decode(id, bytes.value(), verify_stored)
    };
    let mut evidence = BTreeMap::new();
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
    Ok(ReleaseState::from_parts(key.clone(), parts)?)
}

fn save_signers(state: &AuthorizedRelease) -> Vec<u8> {
    let slot_row = |state: &ReleaseState| SlotRow {
        release: state.release().map(|r| r.id().to_string()),
        release_equivocated: state.is_release_equivocated(),
        yank: state.yank().map(|r| r.id().to_string()),
        yank_equivocated: state.is_yank_equivocated(),
        evidence: state
            .evidence()
            .iter()
            .map(|(c, r)| (c.to_string(), r.id().to_string()))
            .collect(),
    };
    let row = Row {
        author: SlotRow::default(),
        signers: state
            .signers()
            .iter()
            .filter(|(_, s)| !s.records().is_empty() || s.is_equivocated())
            .map(|(k, s)| (k.to_string(), slot_row(s)))
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
        assert_eq!(log.entries, vec![(1, Signed::Record(r))]);
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
        assert_eq!(decoded.entries, vec![(2, Signed::Record(fix.clone()))]);
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

    /// An identity document by `by` following `prev`: `signers` sign
    /// releases, `admins` administer, thresholds 1 unless `threshold`.
    fn doc(
        author: &AuthorKey,
        prev: Option<&SignedIdentity>,
        signers: &[&AuthorKey],
        threshold: u32,
        admins: &[&AuthorKey],
        seq: u64,
        by: &[&AuthorKey],
    ) -> SignedIdentity {
        let ids = |keys: &[&AuthorKey]| {
            let mut ids: Vec<_> = keys.iter().map(|k| k.author_id()).collect();
            ids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            ids
        };
        ipsr_proto::Identity {
            prev: prev.map(|p| p.identity_id()),
            signers: ids(signers),
            threshold,
            admins: ids(admins),
            created_at: seq,
            seq,
            ..ipsr_proto::Identity::implicit(author.author_id())
        }
        .sign(by)
        .unwrap()
    }

    #[test]
    fn a_revoked_key_loses_everything_it_signed_and_a_resigned_release_returns() {
        let (dir, store) = open();
        let main = AuthorKey::from_seed(&[1; 32]);
        let recovery = AuthorKey::from_seed(&[2; 32]);
        let laptop = AuthorKey::from_seed(&[3; 32]);
        let new = AuthorKey::from_seed(&[4; 32]);
        let genesis = doc(
            &main,
            None,
            &[&laptop],
            1,
            &[&main, &recovery],
            10,
            &[&main],
        );
        let applied = store
            .apply_signed(vec![Signed::Identity(genesis.clone())])
            .unwrap();
        assert_eq!(applied[0].applied.change, Change::New);
        let author = main.author_id();
        assert_eq!(store.identity(&author).unwrap().head(), Some(&genesis));

        let v1 = release(&main, "1.0.0")
            .code(1)
            .seq(20)
            .build()
            .sign(&laptop)
            .unwrap();
        // The author key is no longer a signer: what it signs counts for nothing.
        let by_main = release(&main, "1.1.0").code(2).seq(21).sign();
        let thief = release(&main, "9.9.9")
            .code(u64::MAX)
            .seq(30)
            .build()
            .sign(&laptop)
            .unwrap();
        let thief_yank = yank(&main, "1.0.0").seq(30).build().sign(&laptop).unwrap();
        let out = store
            .apply(vec![
                v1.clone(),
                by_main.clone(),
                thief.clone(),
                thief_yank.clone(),
            ])
            .unwrap();
        assert_eq!(out[1].applied.change, Change::Stale);
        assert_eq!(store.record(&by_main.id()).unwrap(), None);
        let pkey = v1.record().package_key();
        assert_eq!(store.newest(&pkey).unwrap(), Some(thief.clone()));
        let key_v1 = v1.release_key();
        assert!(store.release(&key_v1).unwrap().unwrap().is_yanked());

        // recovery replaces laptop with a new signer.
        let rotated = doc(
            &main,
            Some(&genesis),
            &[&new],
            1,
            &[&main, &recovery],
            40,
            &[&recovery],
        );
        store
            .apply_signed(vec![Signed::Identity(rotated.clone())])
            .unwrap();
        for gone in [&v1, &thief, &thief_yank] {
            assert_eq!(store.record(&gone.id()).unwrap(), None);
        }
        assert_eq!(store.newest(&pkey).unwrap(), None);
        assert_eq!(store.totals().unwrap().releases, 0);
        assert!(store.recent(10).unwrap().is_empty());
        // What is left to hold, reconcile and log: the two documents.
        let ids: BTreeSet<_> = store
            .record_ids()
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(ids, BTreeSet::from([genesis.id(), rotated.id()]));
        let log = store.log_after(0, 100).unwrap();
        let logged: BTreeSet<_> = log.entries.iter().map(|(_, s)| s.id()).collect();
        assert_eq!(logged, ids);

        // laptop's records arriving again are refused; the re-signed 1.0.0 counts.
        let again = store.apply(vec![thief.clone()]).unwrap();
        assert_eq!(again[0].applied.change, Change::Stale);
        let resigned = release(&main, "1.0.0")
            .code(1)
            .seq(50)
            .build()
            .sign(&new)
            .unwrap();
        store.apply(vec![resigned.clone()]).unwrap();
        assert_eq!(store.newest(&pkey).unwrap(), Some(resigned.clone()));
        assert!(!store.release(&key_v1).unwrap().unwrap().is_yanked());
        assert_eq!(store.totals().unwrap().releases, 1);

        // All of it survives reopening.
        drop(store);
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        assert_eq!(store.identity(&author).unwrap().head(), Some(&rotated));
        assert_eq!(store.newest(&pkey).unwrap(), Some(resigned));
    }

    /// Anyone can sign documents naming any author: those not signed by
    /// the admins of the document they follow, or following one the node
    /// does not hold, are answered stale and leave nothing behind.
    #[test]
    fn unauthorized_and_orphan_documents_store_nothing() {
        let (_dir, store) = open();
        let main = AuthorKey::from_seed(&[1; 32]);
        let genesis = doc(&main, None, &[&main], 1, &[&main], 10, &[&main]);
        store
            .apply_signed(vec![Signed::Identity(genesis.clone())])
            .unwrap();
        let before = store.stats().unwrap();
        let mut junk = Vec::new();
        for n in 0..200u8 {
            let stranger = AuthorKey::from_seed(&[
                n, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                7, 7, 7, 7,
            ]);
            let seq = 20 + u64::from(n);
            // Follows the held document, signed by a stranger.
            junk.push(doc(
                &main,
                Some(&genesis),
                &[&stranger],
                1,
                &[&stranger],
                seq,
                &[&stranger],
            ));
            // A first document signed by a stranger.
            junk.push(doc(
                &main,
                None,
                &[&stranger],
                1,
                &[&stranger],
                seq,
                &[&stranger],
            ));
            // Follows a document nobody has.
            let unknown = doc(
                &stranger,
                None,
                &[&stranger],
                1,
                &[&stranger],
                seq,
                &[&stranger],
            );
            let mut orphan = doc(&main, None, &[&main], 1, &[&main], seq, &[&main])
                .identity()
                .clone();
            orphan.prev = Some(unknown.identity_id());
            junk.push(orphan.sign(&[&main]).unwrap());
        }
        let out = store
            .apply_signed(junk.into_iter().map(Signed::Identity).collect())
            .unwrap();
        assert_eq!(out.len(), 600);
        assert!(
            out.iter()
                .all(|s| s.applied.change == Change::Stale && !s.is_news())
        );
        assert_eq!(store.stats().unwrap(), before);
        let identity = store.identity(&main.author_id()).unwrap();
        assert_eq!(identity.docs().count(), 1);
        assert_eq!(identity.head(), Some(&genesis));
    }

    #[test]
    fn a_record_short_of_its_threshold_is_held_but_not_in_force() {
        let (_dir, store) = open();
        let main = AuthorKey::from_seed(&[1; 32]);
        let (a, b, c) = (
            AuthorKey::from_seed(&[5; 32]),
            AuthorKey::from_seed(&[6; 32]),
            AuthorKey::from_seed(&[7; 32]),
        );
        let genesis = doc(&main, None, &[&a, &b, &c], 2, &[&main], 10, &[&main]);
        store.apply_signed(vec![Signed::Identity(genesis)]).unwrap();
        let one = release(&main, "1.0.0")
            .code(1)
            .seq(20)
            .build()
            .sign(&a)
            .unwrap();
        let out = store.apply(vec![one.clone()]).unwrap();
        assert_eq!(out[0].applied.change, Change::New);
        assert!(out[0].is_news(), "pending records are stored and passed on");
        assert_eq!(store.record(&one.id()).unwrap(), Some(one.clone()));
        let pkey = one.record().package_key();
        assert_eq!(store.newest(&pkey).unwrap(), None);
        assert_eq!(
            store
                .release(&one.release_key())
                .unwrap()
                .unwrap()
                .release(),
            None
        );
        let (signers, authority) = store.release_signers(&one.release_key()).unwrap().unwrap();
        assert_eq!(signers.pending(&authority), Some(&one));

        let two = one.cosign(&b).unwrap();
        store.apply(vec![two.clone()]).unwrap();
        assert_eq!(store.newest(&pkey).unwrap(), Some(two));
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
