//! Blocks on disk: one file per block under the blocks dir, pins in a small
//! redb database beside them, a garbage collector that keeps what pins
//! reach, and an optional size limit with eviction of unpinned blocks,
//! least recently used first, and per-owner pin quotas (`docs/content.md`,
//! "Blockstore on disk" and "Caps, quotas and eviction").
//!
//! A pin that is fetched or imported runs under a [`Lease`]: the bytes it
//! will take are reserved first (refused when pinned data would pass the
//! limit, or its owner's quota), and the blocks it reads or writes are
//! held against eviction until it is pinned or given up.
//!
//! Layout of `<dir>` (the node uses `<data-dir>/blocks`):
//!
//! ```text
//! <dir>/pins.redb                      pins: root CID -> created, label
//! <dir>/<xy>/<name>                    one block; <name> = lowercase base32
//!                                      (RFC 4648, no padding) of the CID's
//!                                      multihash, <xy> = its next-to-last
//!                                      two characters (kubo flatfs
//!                                      `next-to-last/2`)
//! <dir>/<xy>/.tmp-<name>-<pid>-<n>     a write in progress
//! ```
//!
//! Every call is synchronous file IO; async callers run them under
//! `tokio::task::spawn_blocking`. A [`Blockstore`] is `Send + Sync` and is
//! meant to be shared behind an `Arc`.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use cid::Cid;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tracing::{debug, info, warn};

use super::block::{Block, BlockError, RAW};
use super::evict::Recency;
use super::quota::{Charge, Ledger, Refusal, dag_allowance};
use super::unixfs::links_of;

/// Pins: CID bytes -> JSON of [`PinValue`].
const PINS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("pins");
/// File name of the pins database inside the blocks dir.
const PINS_FILE: &str = "pins.redb";
/// Prefix of temporary files (never a valid block name: base32 has no `.`).
const TMP_PREFIX: &str = ".tmp-";
/// How long a write that finds the store full waits for the writes under
/// way (whose blocks may then be evicted) before it fails.
const WAIT_FOR_WRITES: Duration = Duration::from_secs(5);

/// Why a blockstore operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockstoreError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Storing the block would take the store over its size limit and no
    /// unpinned block is left to evict; or a pin would take the pinned
    /// (and reserved) bytes over it.
    #[error("blockstore full: limit {limit} bytes, {used} used, {needed} more needed")]
    Full {
        /// The limit in bytes.
        limit: u64,
        /// Bytes in use (for a pin: pinned or reserved).
        used: u64,
        /// Size of the block or pin refused.
        needed: u64,
    },
    /// A pin would take its owner's pinned (and reserved) bytes over the
    /// owner's quota.
    #[error(
        "pin quota of {owner} exceeded: quota {quota} bytes, {used} pinned or reserved, {needed} more needed"
    )]
    QuotaExceeded {
        /// The owner (an author id).
        owner: String,
        /// The quota in bytes.
        quota: u64,
        /// Bytes the owner has pinned or reserved.
        used: u64,
        /// Bytes the pin needs.
        needed: u64,
    },
    /// A stored file does not hash to the CID it is stored under.
    #[error("stored block {0} does not match its cid")]
    Corrupt(Cid),
    /// The CID cannot name an IPSR block.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The pins database failed.
    #[error("pins database: {0}")]
    Db(#[from] redb::Error),
    /// A pin entry could not be decoded.
    #[error("bad pin entry: {0}")]
    BadPin(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for BlockstoreError {
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

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlockstoreError + '_ {
    move |source| BlockstoreError::Io {
        path: path.to_owned(),
        source,
    }
}

impl BlockstoreError {
    fn refused(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Storage {
                limit,
                committed,
                needed,
            } => Self::Full {
                limit,
                used: committed,
                needed,
            },
            Refusal::Quota {
                owner,
                quota,
                used,
                needed,
            } => Self::QuotaExceeded {
                owner,
                quota,
                used,
                needed,
            },
        }
    }
}

/// A pinned root: [`Blockstore::gc`] keeps every block reachable from it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pin {
    /// The root CID.
    pub root: Cid,
    /// When it was pinned, in Unix seconds.
    pub created: u64,
    /// Free-form label, e.g. `com.example.app@1.2.0`.
    pub label: Option<String>,
    /// Who the pin is charged to (an author id), if anyone.
    pub owner: Option<String>,
    /// Bytes of its blocks when it was pinned (its charge).
    pub bytes: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PinValue {
    created: u64,
    label: Option<String>,
    /// Absent in pins written before quotas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    /// Absent in pins written before quotas: counted at open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
}

impl PinValue {
    fn charge(&self) -> Charge<'_> {
        Charge {
            owner: self.owner.as_deref(),
            bytes: self.bytes.unwrap_or(0),
        }
    }
}

fn decode_pin(root: &Cid, bytes: &[u8]) -> Result<PinValue, BlockstoreError> {
    serde_json::from_slice(bytes).map_err(|e| BlockstoreError::BadPin(format!("{root}: {e}")))
}

/// What [`Blockstore::gc`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcReport {
    /// Blocks removed.
    pub removed: u64,
    /// Bytes freed.
    pub freed: u64,
}

/// Counters of a [`Blockstore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockstoreStats {
    /// Blocks stored.
    pub blocks: u64,
    /// Bytes stored (sum of block sizes).
    pub bytes: u64,
    /// The size limit, if any.
    pub limit: Option<u64>,
    /// Pinned roots.
    pub pins: u64,
    /// Bytes charged to pins (a block shared by two pins counts twice).
    pub pinned_bytes: u64,
    /// Bytes reserved by pins being fetched or imported.
    pub reserved_bytes: u64,
    /// Unpinned blocks evicted to make room, since open.
    pub evicted_blocks: u64,
    /// Their bytes.
    pub evicted_bytes: u64,
    /// Pins refused since open, by reason.
    pub refused: PinRefusals,
}

/// Pins refused since the store was opened, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PinRefusals {
    /// Pinned data would have passed the limit.
    pub storage: u64,
    /// The owner's quota would have been passed.
    pub quota: u64,
    /// The DAG did not have the size the record states.
    pub size: u64,
}

/// Why a pin was refused, for [`Blockstore::count_refusal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusedFor {
    Storage,
    Quota,
    /// Counted by downloads, which only the `net` feature builds.
    #[cfg_attr(not(feature = "net"), allow(dead_code))]
    Size,
}

/// What the store keeps in memory about its blocks and pins, under one
/// lock: recency and holds (eviction), pinned and reserved bytes (quotas),
/// the blocks each lease holds, and the blocks pins reach (computed when
/// first needed after a pin was removed).
#[derive(Debug, Default)]
struct Space {
    recency: Recency,
    ledger: Ledger,
    leases: HashMap<u64, HashSet<Box<str>>>,
    kept: Option<HashSet<String>>,
}

#[derive(Debug, Default)]
struct Counters {
    evicted_blocks: AtomicU64,
    evicted_bytes: AtomicU64,
    refused_storage: AtomicU64,
    refused_quota: AtomicU64,
    refused_size: AtomicU64,
}

/// Blocks as files, with pins and garbage collection; see the module docs
/// for the layout.
///
/// Writes are atomic: a block is written to a temp file, fsynced, then
/// hard-linked under its final name (which fails rather than overwrites if
/// another writer got there first), so a crash at any moment leaves either
/// no file or a complete one under a block's name. Leftover temp files are
/// removed by [`open`](Blockstore::open).
pub struct Blockstore {
    dir: PathBuf,
    limit: Option<u64>,
    blocks: AtomicU64,
    bytes: AtomicU64,
    pins: Database,
    /// Held shared by writers (put, delete, pin) and exclusively by gc, so
    /// gc sees a stable set of pins and blocks.
    gc_lock: RwLock<()>,
    tmp_seq: AtomicU64,
    /// The thread that creates the shard directories after `open`.
    shards: ShardMaker,
    space: Mutex<Space>,
    /// Writes between their room being made and their block being known
    /// to eviction; `written` is notified as each ends.
    writing: AtomicU64,
    written: Condvar,
    counters: Counters,
}

impl std::fmt::Debug for Blockstore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blockstore")
            .field("dir", &self.dir)
            .field("limit", &self.limit)
            .field("blocks", &self.blocks)
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// The most memory redb may use to cache the pins database's pages.
const PINS_CACHE_BYTES: usize = 16 * 1024 * 1024;

impl Blockstore {
    /// Opens (creating if needed) the store in `dir`, removes temp files
    /// left by a crash and counts the blocks and pinned bytes. `limit_bytes`
    /// caps the sum of block sizes: [`put`](Blockstore::put) evicts
    /// unpinned blocks, least recently used first, to stay within it, and
    /// refuses when only pinned or held blocks are left.
    pub fn open(dir: &Path, limit_bytes: Option<u64>) -> Result<Self, BlockstoreError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let db_path = dir.join(PINS_FILE);
        // A small page cache (redb's default is 1 GiB): the pins table is
        // read by key, and its file stays small.
        let pins = Database::builder()
            .set_cache_size(PINS_CACHE_BYTES)
            .create(&db_path)?;
        let tx = pins.begin_write()?;
        tx.open_table(PINS)?;
        tx.commit()?;

        let store = Self {
            dir: dir.to_owned(),
            limit: limit_bytes,
            blocks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            pins,
            gc_lock: RwLock::new(()),
            tmp_seq: AtomicU64::new(0),
            shards: ShardMaker::start(dir),
            space: Mutex::new(Space {
                ledger: Ledger::new(limit_bytes),
                ..Space::default()
            }),
            writing: AtomicU64::new(0),
            written: Condvar::new(),
            counters: Counters::default(),
        };
        let mut blocks = 0;
        let mut bytes = 0;
        let mut tmp_removed = 0u64;
        let mut found = Vec::new();
        store.scan(|entry| match entry {
            Entry::Block {
                name,
                len,
                modified,
                ..
            } => {
                blocks += 1;
                bytes += len;
                found.push((modified, name, len));
            }
            Entry::Temp(path) => match fs::remove_file(&path) {
                Ok(()) => tmp_removed += 1,
                Err(e) => warn!(path = %path.display(), error = %e, "cannot remove temp file"),
            },
        })?;
        store.blocks.store(blocks, Ordering::Relaxed);
        store.bytes.store(bytes, Ordering::Relaxed);
        // Oldest written first: the order eviction starts from.
        found.sort_unstable();
        {
            let mut space = store.space();
            for (_, name, len) in &found {
                space.recency.insert(name, *len);
            }
        }
        let pinned = store.load_pins()?;
        debug!(dir = %dir.display(), blocks, bytes, pinned, tmp_removed, "blockstore opened");
        Ok(store)
    }

    /// Counts the pinned bytes per owner into the ledger; a pin written
    /// before quotas has its bytes counted now and written back. Returns
    /// the pinned bytes.
    fn load_pins(&self) -> Result<u64, BlockstoreError> {
        let mut legacy = Vec::new();
        {
            let tx = self.pins.begin_read()?;
            let table = tx.open_table(PINS)?;
            let mut space = self.space();
            for entry in table.iter()? {
                let (key, value) = entry?;
                let root = Cid::try_from(key.value())
                    .map_err(|e| BlockstoreError::BadPin(e.to_string()))?;
                let value = decode_pin(&root, value.value())?;
                match value.bytes {
                    Some(_) => space.ledger.load(value.charge()),
                    None => legacy.push((root, value)),
                }
            }
        }
        if !legacy.is_empty() {
            let tx = self.pins.begin_write()?;
            {
                let mut table = tx.open_table(PINS)?;
                for (root, mut value) in legacy {
                    let (_, bytes) = self.dag_names(&root)?;
                    value.bytes = Some(bytes);
                    self.space().ledger.load(value.charge());
                    let encoded = serde_json::to_vec(&value)
                        .map_err(|e| BlockstoreError::BadPin(e.to_string()))?;
                    table.insert(root.to_bytes().as_slice(), encoded.as_slice())?;
                }
            }
            tx.commit()?;
        }
        Ok(self.space().ledger.pinned())
    }

    /// The directory of the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `block`; returns `false` if it was already there. Safe to
    /// call concurrently, also for the same block. With a limit, evicts
    /// unpinned blocks that no lease holds, least recently used first, to
    /// make room; fails with [`BlockstoreError::Full`] when there are none
    /// left.
    pub fn put(&self, block: &Block) -> Result<bool, BlockstoreError> {
        self.put_in(block, None)
    }

    /// [`put`](Self::put), holding the block for lease `lease` (before it
    /// is written, so it cannot be evicted in between).
    fn put_in(&self, block: &Block, lease: Option<u64>) -> Result<bool, BlockstoreError> {
        let _guard = self.read_lock();
        let name = file_name(block.cid());
        if let Some(id) = lease {
            self.hold_name(id, &name);
        }
        let shard = self.dir.join(shard_of(&name));
        let path = shard.join(&name);
        if path.exists() {
            self.space().recency.touch(&name);
            return Ok(false);
        }
        let len = block.data().len() as u64;
        self.make_room(len)?;
        self.writing.fetch_add(1, Ordering::AcqRel);
        let written = self.write_new(&shard, &path, &name, block.data());
        {
            let mut space = self.space();
            match written {
                Ok(true) => {
                    self.blocks.fetch_add(1, Ordering::Relaxed);
                    space.recency.insert(&name, len);
                }
                Ok(false) | Err(_) => {
                    self.bytes.fetch_sub(len, Ordering::Relaxed);
                }
            }
            self.writing.fetch_sub(1, Ordering::AcqRel);
        }
        self.written.notify_all();
        written
    }

    /// Adds `len` to the bytes in use, evicting unpinned blocks (least
    /// recently used first) when that would pass the limit.
    fn make_room(&self, len: u64) -> Result<(), BlockstoreError> {
        let Some(limit) = self.limit else {
            return self.reserve(len);
        };
        // Writes under way hold bytes that cannot be evicted until they
        // are done; wait for them this long at most.
        let deadline = std::time::Instant::now() + WAIT_FOR_WRITES;
        loop {
            let refused = match self.reserve(len) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let mut space = self.space();
            // Another writer may have made room meanwhile.
            if self.reserve(len).is_ok() {
                return Ok(());
            }
            let used = self.bytes.load(Ordering::Relaxed);
            // Free a little more than needed, so the next writes do not
            // each evict one block.
            let need = used
                .saturating_add(len)
                .saturating_sub(limit)
                .max(limit / 64)
                .max(len);
            if space.kept.is_none() {
                space.kept = Some(self.pinned_names()?);
            }
            let Space { recency, kept, .. } = &mut *space;
            let (victims, _) = recency.victims(need, |name| {
                kept.as_ref().is_some_and(|kept| kept.contains(name))
            });
            if victims.is_empty() {
                let now = std::time::Instant::now();
                if self.writing.load(Ordering::Acquire) > 0 && now < deadline {
                    let wait = (deadline - now).min(Duration::from_millis(50));
                    drop(
                        self.written
                            .wait_timeout(space, wait)
                            .unwrap_or_else(|e| e.into_inner()),
                    );
                    continue;
                }
                debug!(
                    limit,
                    used,
                    needed = len,
                    "blockstore full of pinned and held blocks"
                );
                return Err(refused);
            }
            let (mut removed, mut freed) = (0u64, 0u64);
            for (name, _) in victims {
                let path = self.dir.join(shard_of(&name)).join(&*name);
                if let Some(len) = self.remove(&path)? {
                    removed += 1;
                    freed += len;
                }
                recency.remove(&name);
            }
            self.counters
                .evicted_blocks
                .fetch_add(removed, Ordering::Relaxed);
            self.counters
                .evicted_bytes
                .fetch_add(freed, Ordering::Relaxed);
            debug!(removed, freed, limit, "evicted unpinned blocks");
        }
    }

    /// Adds `len` to the bytes in use unless that passes the limit.
    fn reserve(&self, len: u64) -> Result<(), BlockstoreError> {
        let limit = self.limit;
        self.bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| match limit {
                Some(limit) if used.saturating_add(len) > limit => None,
                _ => Some(used + len),
            })
            .map(|_| ())
            .map_err(|used| BlockstoreError::Full {
                limit: limit.unwrap_or(u64::MAX),
                used,
                needed: len,
            })
    }

    /// Temp file, write, fsync, hard link to the final name. `Ok(false)` if
    /// the final name already existed.
    fn write_new(
        &self,
        shard: &Path,
        path: &Path,
        name: &str,
        data: &[u8],
    ) -> Result<bool, BlockstoreError> {
        match fs::create_dir(shard) {
            // A new shard dir: make its entry in the parent durable.
            Ok(()) => sync_dir(&self.dir)?,
            // Perhaps made by the shard maker, which may not have fsynced
            // the parent yet.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !self.shards.is_durable() {
                    sync_dir(&self.dir)?;
                }
            }
            Err(e) => return Err(io_err(shard)(e)),
        }
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = shard.join(format!("{TMP_PREFIX}{name}-{}-{seq}", std::process::id()));
        let written = (|| {
            let file = write_file(&tmp, data)?;
            // The data and the size; a new file's other metadata (times)
            // need not be durable before the link.
            file.sync_data()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        let linked = match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            // Filesystems without hard links: rename, which replaces a
            // concurrent writer's identical file (still atomic and correct;
            // only the block count could be off by the race).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
                ) =>
            {
                let existed = path.exists();
                fs::rename(&tmp, path)
                    .map(|()| !existed)
                    .map_err(io_err(path))
            }
            Err(e) => Err(io_err(path)(e)),
        };
        if let Err(e) = fs::remove_file(&tmp)
            && e.kind() != io::ErrorKind::NotFound
        {
            warn!(path = %tmp.display(), error = %e, "cannot remove temp file");
        }
        linked
    }

    /// The block named `cid`, if stored. The bytes are NOT re-hashed: the
    /// store only ever holds blocks verified on the way in and written
    /// atomically, so they are trusted (like kubo's `HashOnRead = false`).
    /// Use [`get_verified`](Blockstore::get_verified) to detect disk damage.
    pub fn get(&self, cid: &Cid) -> Result<Option<Block>, BlockstoreError> {
        let data = self.read(cid)?;
        if data.is_some() {
            self.touch(cid);
        }
        Ok(data.map(|data| Block::trusted(*cid, data.into())))
    }

    /// Like [`get`](Blockstore::get) but re-hashes the bytes; a mismatch is
    /// [`BlockstoreError::Corrupt`].
    pub fn get_verified(&self, cid: &Cid) -> Result<Option<Block>, BlockstoreError> {
        let Some(data) = self.read(cid)? else {
            return Ok(None);
        };
        self.touch(cid);
        match Block::new(*cid, data) {
            Ok(block) => Ok(Some(block)),
            Err(BlockError::Mismatch(_) | BlockError::TooLarge { .. }) => {
                Err(BlockstoreError::Corrupt(*cid))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Marks a block as used now (eviction takes the least recently used).
    fn touch(&self, cid: &Cid) {
        self.space().recency.touch(&file_name(cid));
    }

    fn read(&self, cid: &Cid) -> Result<Option<Vec<u8>>, BlockstoreError> {
        let path = self.path_of(cid);
        match fs::read(&path) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Whether the block is stored.
    pub fn has(&self, cid: &Cid) -> Result<bool, BlockstoreError> {
        Ok(self.size_of(cid)?.is_some())
    }

    /// The stored block's size in bytes.
    pub fn size_of(&self, cid: &Cid) -> Result<Option<u64>, BlockstoreError> {
        let path = self.path_of(cid);
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Removes the block; returns whether it was there.
    pub fn delete(&self, cid: &Cid) -> Result<bool, BlockstoreError> {
        let _guard = self.read_lock();
        let removed = self.remove(&self.path_of(cid))?;
        self.space().recency.remove(&file_name(cid));
        Ok(removed.is_some())
    }

    /// Removes a block file and counts it out; returns its length if it
    /// was there.
    fn remove(&self, path: &Path) -> Result<Option<u64>, BlockstoreError> {
        let len = match fs::metadata(path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path)(e)),
        };
        match fs::remove_file(path) {
            Ok(()) => {
                self.blocks.fetch_sub(1, Ordering::Relaxed);
                self.bytes.fetch_sub(len, Ordering::Relaxed);
                Ok(Some(len))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Pins `root` (replacing an existing pin's label and time), so that
    /// [`gc`](Blockstore::gc) and eviction keep it and every block it
    /// reaches; the pin is charged the bytes of the blocks stored now and
    /// to nobody. Refused with [`BlockstoreError::Full`] when pinned data
    /// would pass the limit. The blocks need not be present yet, but a
    /// download should rather run under a [`Lease`] and pin with
    /// [`pin_leased`](Self::pin_leased).
    pub fn pin(&self, root: &Cid, label: Option<&str>) -> Result<(), BlockstoreError> {
        let id = self
            .space()
            .ledger
            .reserve(None, None, None)
            .map_err(BlockstoreError::refused)?;
        let pinned = self.commit_pin(root, label, id, None);
        self.space().ledger.release(id);
        pinned
    }

    /// Starts a pin of `owner` (an author id, or nobody) of a file of
    /// `size` bytes (when known, as a signed record states it): reserves
    /// the bytes its DAG may take (`size + size/8 + 64 KiB`) within the limit and
    /// within `quota` (the most bytes `owner` may have pinned). While the
    /// [`Lease`] lives, the blocks it holds are not evicted; dropping it
    /// without [`pin_leased`](Self::pin_leased) gives everything back.
    pub fn lease(
        self: &Arc<Self>,
        owner: Option<&str>,
        size: Option<u64>,
        quota: Option<u64>,
    ) -> Result<Lease, BlockstoreError> {
        let reserved = size.map(dag_allowance);
        let id = match self.space().ledger.reserve(owner, reserved, quota) {
            Ok(id) => id,
            Err(refusal) => {
                self.count_refusal(match refusal {
                    Refusal::Storage { .. } => RefusedFor::Storage,
                    Refusal::Quota { .. } => RefusedFor::Quota,
                });
                info!(owner = owner.unwrap_or("-"), size, %refusal, "pin refused");
                return Err(BlockstoreError::refused(refusal));
            }
        };
        Ok(Lease {
            store: self.clone(),
            id,
            owner: owner.map(str::to_owned),
            size,
        })
    }

    /// Pins `root` for `lease`'s owner (see [`pin`](Self::pin)), charged
    /// the bytes of its blocks stored now; refused (and counted) when they
    /// pass what the lease reserved and the limit or the owner's quota.
    /// The lease may be dropped afterwards.
    pub fn pin_leased(
        &self,
        root: &Cid,
        label: Option<&str>,
        lease: &Lease,
    ) -> Result<(), BlockstoreError> {
        let pinned = self.commit_pin(root, label, lease.id, lease.owner.as_deref());
        match &pinned {
            Err(BlockstoreError::Full { .. }) => self.count_refusal(RefusedFor::Storage),
            Err(BlockstoreError::QuotaExceeded { .. }) => self.count_refusal(RefusedFor::Quota),
            _ => {}
        }
        pinned
    }

    /// Writes the pin of `root` and turns reservation `id` into its charge.
    fn commit_pin(
        &self,
        root: &Cid,
        label: Option<&str>,
        id: u64,
        owner: Option<&str>,
    ) -> Result<(), BlockstoreError> {
        let _guard = self.read_lock();
        let (names, bytes) = self.dag_names(root)?;
        let value = PinValue {
            created: unix_now(),
            label: label.map(str::to_owned),
            owner: owner.map(str::to_owned),
            bytes: Some(bytes),
        };
        let encoded =
            serde_json::to_vec(&value).map_err(|e| BlockstoreError::BadPin(e.to_string()))?;
        let key = root.to_bytes();
        let tx = self.pins.begin_write()?;
        let mut space = self.space();
        let replaced = {
            let mut table = tx.open_table(PINS)?;
            let replaced = match table.get(key.as_slice())? {
                Some(old) => Some(decode_pin(root, old.value())?),
                None => None,
            };
            if let Err(refusal) =
                space
                    .ledger
                    .can_commit(id, bytes, replaced.as_ref().map(PinValue::charge))
            {
                info!(%root, owner = owner.unwrap_or("-"), bytes, %refusal, "pin refused");
                return Err(BlockstoreError::refused(refusal));
            }
            table.insert(key.as_slice(), encoded.as_slice())?;
            replaced
        };
        tx.commit()?;
        space
            .ledger
            .commit(id, bytes, replaced.as_ref().map(PinValue::charge));
        if let Some(kept) = &mut space.kept {
            kept.extend(names);
        }
        Ok(())
    }

    /// Removes the pin of `root`; returns whether there was one. The blocks
    /// stay until the next [`gc`](Blockstore::gc) or until evicted.
    pub fn unpin(&self, root: &Cid) -> Result<bool, BlockstoreError> {
        let _guard = self.read_lock();
        let tx = self.pins.begin_write()?;
        let mut space = self.space();
        let removed = {
            let mut table = tx.open_table(PINS)?;
            let removed = table.remove(root.to_bytes().as_slice())?;
            match removed {
                Some(old) => Some(decode_pin(root, old.value())?),
                None => None,
            }
        };
        tx.commit()?;
        if let Some(old) = &removed {
            space.ledger.unpinned(old.charge());
            space.kept = None;
        }
        Ok(removed.is_some())
    }

    /// Whether `root` is pinned.
    pub fn is_pinned(&self, root: &Cid) -> Result<bool, BlockstoreError> {
        let tx = self.pins.begin_read()?;
        Ok(tx
            .open_table(PINS)?
            .get(root.to_bytes().as_slice())?
            .is_some())
    }

    /// All pins, ordered by CID bytes.
    pub fn pins(&self) -> Result<Vec<Pin>, BlockstoreError> {
        let tx = self.pins.begin_read()?;
        let table = tx.open_table(PINS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let root =
                Cid::try_from(key.value()).map_err(|e| BlockstoreError::BadPin(e.to_string()))?;
            let value = decode_pin(&root, value.value())?;
            out.push(Pin {
                root,
                created: value.created,
                label: value.label,
                owner: value.owner,
                bytes: value.bytes.unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Up to `limit` pinned roots after `after` (from the first when
    /// `None`), ordered by CID bytes: a page of a walk over the pins that
    /// never reads them all at once.
    pub fn pins_after(
        &self,
        after: Option<&Cid>,
        limit: usize,
    ) -> Result<Vec<Cid>, BlockstoreError> {
        let tx = self.pins.begin_read()?;
        let table = tx.open_table(PINS)?;
        let start = after.map(Cid::to_bytes).unwrap_or_default();
        let mut out = Vec::new();
        for entry in table.range(start.as_slice()..)? {
            if out.len() == limit {
                break;
            }
            let (key, _) = entry?;
            if after.is_some() && key.value() == start.as_slice() {
                continue;
            }
            out.push(
                Cid::try_from(key.value()).map_err(|e| BlockstoreError::BadPin(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Bytes pinned by `owner`.
    pub fn pinned_by(&self, owner: &str) -> u64 {
        self.space().ledger.pinned_by(owner)
    }

    /// Removes every block not reachable from a pin through dag-pb links
    /// and not held by a [`Lease`]. A pinned DAG with missing blocks keeps
    /// the blocks it has. Writers wait while gc runs.
    pub fn gc(&self) -> Result<GcReport, BlockstoreError> {
        let _guard = self.write_lock();
        let pinned = self.pinned_names()?;
        let mut report = GcReport::default();
        let mut doomed = Vec::new();
        {
            let space = self.space();
            self.scan(|entry| {
                if let Entry::Block { name, path, .. } = entry
                    && !pinned.contains(&name)
                    && !space.recency.is_held(&name)
                {
                    doomed.push((name, path));
                }
            })?;
        }
        for (name, path) in doomed {
            if let Some(len) = self.remove(&path)? {
                report.removed += 1;
                report.freed += len;
            }
            self.space().recency.remove(&name);
        }
        debug!(
            removed = report.removed,
            freed = report.freed,
            kept = pinned.len(),
            "gc done"
        );
        self.space().kept = Some(pinned);
        Ok(report)
    }

    /// The file names of every block reachable from a pin (stored or not).
    fn pinned_names(&self) -> Result<HashSet<String>, BlockstoreError> {
        let mut keep = HashSet::new();
        for pin in self.pins()? {
            self.walk(&pin.root, |name, _| {
                keep.insert(name);
            })?;
        }
        Ok(keep)
    }

    /// The file names of the stored blocks of the DAG under `root`, and
    /// the sum of their sizes.
    fn dag_names(&self, root: &Cid) -> Result<(Vec<String>, u64), BlockstoreError> {
        let mut names = Vec::new();
        self.walk(root, |name, absent| {
            if absent.is_none() {
                names.push(name);
            }
        })?;
        let known: Vec<Option<u64>> = {
            let space = self.space();
            names.iter().map(|n| space.recency.len_of(n)).collect()
        };
        let mut bytes = 0u64;
        for (name, len) in names.iter().zip(known) {
            let len = match len {
                Some(len) => len,
                None => match fs::metadata(self.dir.join(shard_of(name)).join(name)) {
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                },
            };
            bytes = bytes.saturating_add(len);
        }
        Ok((names, bytes))
    }

    /// Holds the block named `name` for lease `id`.
    fn hold_name(&self, id: u64, name: &str) {
        let mut space = self.space();
        let Space {
            recency, leases, ..
        } = &mut *space;
        if leases.entry(id).or_default().insert(name.into()) {
            recency.hold(name);
        }
    }

    /// Ends lease `id`: lets go of its blocks and its reservation.
    fn end_lease(&self, id: u64) {
        let mut space = self.space();
        space.ledger.release(id);
        if let Some(names) = space.leases.remove(&id) {
            for name in names {
                space.recency.unhold(&name);
            }
        }
    }

    /// Counts a refused pin (for metrics).
    pub(crate) fn count_refusal(&self, reason: RefusedFor) {
        let counter = match reason {
            RefusedFor::Storage => &self.counters.refused_storage,
            RefusedFor::Quota => &self.counters.refused_quota,
            RefusedFor::Size => &self.counters.refused_size,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The blocks of the DAG under `root` that are not stored, as far as
    /// the stored blocks tell (the children of a missing node are unknown,
    /// so only the node itself is listed). Empty means complete.
    pub fn missing(&self, root: &Cid) -> Result<Vec<Cid>, BlockstoreError> {
        let mut missing = Vec::new();
        self.walk(root, |_, absent| {
            if let Some(cid) = absent {
                missing.push(cid);
            }
        })?;
        Ok(missing)
    }

    /// How many blocks of the DAG under `root` are stored, and which are
    /// missing (as [`missing`](Self::missing) lists them).
    pub fn dag_blocks(&self, root: &Cid) -> Result<(u64, Vec<Cid>), BlockstoreError> {
        let (mut present, mut missing) = (0, Vec::new());
        self.walk(root, |_, absent| match absent {
            Some(cid) => missing.push(cid),
            None => present += 1,
        })?;
        Ok((present, missing))
    }

    /// Whether every block of the DAG under `root` is stored.
    pub fn is_complete(&self, root: &Cid) -> Result<bool, BlockstoreError> {
        Ok(self.missing(root)?.is_empty())
    }

    /// Depth-first walk of the DAG under `root`: calls `visit(file name,
    /// None)` for each stored block and `visit(file name, Some(cid))` for
    /// each missing one. A stored dag-pb block that does not decode is
    /// kept but not descended into.
    fn walk(
        &self,
        root: &Cid,
        mut visit: impl FnMut(String, Option<Cid>),
    ) -> Result<(), BlockstoreError> {
        let mut seen = HashSet::new();
        let mut stack = vec![*root];
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            let name = file_name(&cid);
            // A raw leaf has no links: whether it is there is all to know.
            if cid.codec() == RAW {
                visit(name, (!self.has(&cid)?).then_some(cid));
                continue;
            }
            let Some(data) = self.read(&cid)? else {
                visit(name, Some(cid));
                continue;
            };
            visit(name, None);
            match links_of(&cid, &data) {
                // Reverse so the stack pops them in link order.
                Ok(links) => stack.extend(links.into_iter().rev()),
                Err(e) => warn!(%cid, error = %e, "stored dag-pb block does not decode"),
            }
        }
        Ok(())
    }

    /// Counters.
    pub fn stats(&self) -> Result<BlockstoreStats, BlockstoreError> {
        let tx = self.pins.begin_read()?;
        let pins = tx.open_table(PINS)?.len()?;
        let (pinned_bytes, reserved_bytes) = {
            let space = self.space();
            (space.ledger.pinned(), space.ledger.reserved())
        };
        let c = &self.counters;
        Ok(BlockstoreStats {
            blocks: self.blocks.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            limit: self.limit,
            pins,
            pinned_bytes,
            reserved_bytes,
            evicted_blocks: c.evicted_blocks.load(Ordering::Relaxed),
            evicted_bytes: c.evicted_bytes.load(Ordering::Relaxed),
            refused: PinRefusals {
                storage: c.refused_storage.load(Ordering::Relaxed),
                quota: c.refused_quota.load(Ordering::Relaxed),
                size: c.refused_size.load(Ordering::Relaxed),
            },
        })
    }

    fn path_of(&self, cid: &Cid) -> PathBuf {
        let name = file_name(cid);
        self.dir.join(shard_of(&name)).join(name)
    }

    /// Calls `f` for every block file and temp file; logs and skips
    /// anything else.
    fn scan(&self, mut f: impl FnMut(Entry)) -> Result<(), BlockstoreError> {
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                warn!(path = %path.display(), "ignoring odd entry in blockstore");
                continue;
            };
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir {
                if !name.starts_with(PINS_FILE) {
                    warn!(path = %path.display(), "ignoring odd file in blockstore");
                }
                continue;
            }
            if name.len() != 2 || !is_base32(name) {
                warn!(path = %path.display(), "ignoring odd directory in blockstore");
                continue;
            }
            for inner in fs::read_dir(&path).map_err(io_err(&path))? {
                let inner = inner.map_err(io_err(&path))?;
                let file = inner.path();
                let Some(file_name) = inner.file_name().to_str().map(str::to_owned) else {
                    warn!(path = %file.display(), "ignoring odd entry in blockstore");
                    continue;
                };
                let meta = match inner.metadata() {
                    Ok(meta) => meta,
                    // Removed meanwhile (a concurrent delete).
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err(&file)(e)),
                };
                if file_name.starts_with(TMP_PREFIX) && meta.is_file() {
                    f(Entry::Temp(file));
                } else if meta.is_file()
                    && file_name.len() >= 3
                    && is_base32(&file_name)
                    && shard_of(&file_name) == name
                {
                    f(Entry::Block {
                        name: file_name,
                        path: file,
                        len: meta.len(),
                        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    });
                } else {
                    warn!(path = %file.display(), "ignoring odd entry in blockstore");
                }
            }
        }
        Ok(())
    }

    fn read_lock(&self) -> RwLockReadGuard<'_, ()> {
        // The lock guards no data, so a panic elsewhere cannot have left
        // anything half-done behind it.
        self.gc_lock.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, ()> {
        self.gc_lock.write().unwrap_or_else(|e| e.into_inner())
    }

    fn space(&self) -> MutexGuard<'_, Space> {
        // Every change under this lock is made whole before a call that
        // can panic, so a poisoned lock holds consistent data.
        self.space.lock().unwrap_or_else(|e| e.into_inner())
    }
}

enum Entry {
    Block {
        name: String,
        path: PathBuf,
        len: u64,
        modified: SystemTime,
    },
    Temp(PathBuf),
}

/// A pin under way: bytes reserved within the limit and its owner's quota,
/// and the blocks it has read or written held against eviction (and gc),
/// from [`Blockstore::lease`] until it is dropped. Hand it to
/// [`Blockstore::pin_leased`] once the DAG is stored.
pub struct Lease {
    store: Arc<Blockstore>,
    id: u64,
    owner: Option<String>,
    size: Option<u64>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .field("size", &self.size)
            .finish()
    }
}

impl Lease {
    /// Holds the block `cid` against eviction from now on (call it before
    /// reading a block the pin needs).
    pub fn hold(&self, cid: &Cid) {
        self.store.hold_name(self.id, &file_name(cid));
    }

    /// Holds every stored block of the DAG under `root`, then tells
    /// whether the DAG is complete (a block evicted before it was held
    /// shows as missing).
    pub fn hold_dag(&self, root: &Cid) -> Result<bool, BlockstoreError> {
        let (names, _) = self.store.dag_names(root)?;
        for name in names {
            self.store.hold_name(self.id, &name);
        }
        self.store.is_complete(root)
    }

    /// Stores `block` like [`Blockstore::put`] and holds it.
    pub fn put(&self, block: &Block) -> Result<bool, BlockstoreError> {
        self.store.put_in(block, Some(self.id))
    }

    /// The owner the pin will be charged to.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The file size the pin was started for (a record's `size`), if any.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// The store.
    pub fn store(&self) -> &Arc<Blockstore> {
        &self.store
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.store.end_lease(self.id);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Creates all 1024 shard directories (`aa` … `77`) in a thread of its
/// own after [`Blockstore::open`], then fsyncs the blocks dir once, so
/// that a download does not pay for a `mkdir` and a directory fsync with
/// its first block of every shard. Creating an inode is the costly part of
/// a block write on some filesystems (ext4 without a journal scans past
/// recently deleted inodes), and each `put` would otherwise create two.
/// `put` still creates a missing shard itself; dropping the store stops
/// the thread and waits for it.
struct ShardMaker {
    stop: Arc<AtomicBool>,
    durable: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ShardMaker {
    fn start(dir: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let durable = Arc::new(AtomicBool::new(false));
        let (dir, stop_flag, done) = (dir.to_owned(), stop.clone(), durable.clone());
        let thread = std::thread::Builder::new()
            .name("blockstore-shards".to_owned())
            .spawn(move || {
                let mut made = 0u32;
                for a in BASE32 {
                    for b in BASE32 {
                        if stop_flag.load(Ordering::Relaxed) {
                            return;
                        }
                        let shard = dir.join(format!("{}{}", char::from(*a), char::from(*b)));
                        match fs::create_dir(&shard) {
                            Ok(()) => made += 1,
                            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                            Err(e) => {
                                debug!(dir = %shard.display(), error = %e, "cannot make shard dir");
                                return;
                            }
                        }
                    }
                }
                // Also when all were there: an earlier process may have
                // made them and died before its fsync.
                if let Err(e) = sync_dir(&dir) {
                    debug!(error = %e, "cannot sync the blocks dir");
                    return;
                }
                done.store(true, Ordering::Release);
                debug!(made, "shard directories ready");
            })
            .map_err(|e| warn!(error = %e, "cannot start the shard maker"))
            .ok();
        Self {
            stop,
            durable,
            thread,
        }
    }

    /// Whether every shard dir exists and its entry is durable.
    fn is_durable(&self) -> bool {
        self.durable.load(Ordering::Acquire)
    }
}

impl Drop for ShardMaker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Alignment of `O_DIRECT` writes: buffer address, length and offset
/// (4 KiB covers 512-byte and 4 KiB logical sectors).
#[cfg(target_os = "linux")]
const DIRECT_ALIGN: usize = 4096;

#[cfg(target_os = "linux")]
thread_local! {
    /// Each writing thread's aligned staging buffer for `O_DIRECT`, reused
    /// (so neither its pages nor the page cache's are freshly faulted in
    /// for every block). At most one block (2 MiB) plus alignment per
    /// thread.
    static DIRECT_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Creates the new file `path` with `data` in it (not yet synced).
///
/// On Linux the data goes in with `O_DIRECT` when the filesystem takes it:
/// straight from an aligned staging buffer to the disk, without the copy
/// into freshly allocated page-cache pages that dominates a buffered write
/// of a large block on a VM; the padding to the 4 KiB alignment is cut off
/// again with `set_len`. Elsewhere, for tiny blocks, or when the
/// filesystem refuses `O_DIRECT` (tmpfs), it is a plain buffered write.
fn write_file(path: &Path, data: &[u8]) -> io::Result<fs::File> {
    #[cfg(target_os = "linux")]
    if data.len() >= DIRECT_ALIGN {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        match direct {
            Ok(mut file) => {
                let done = DIRECT_BUF.with(|buf| match buf.try_borrow_mut() {
                    Ok(mut buf) => write_direct(&mut file, &mut buf, data),
                    Err(_) => Err(io::Error::from(io::ErrorKind::InvalidInput)),
                });
                match done {
                    Ok(()) => return Ok(file),
                    // Refused (alignment the device does not take): write
                    // the same file again, buffered.
                    Err(e)
                        if e.raw_os_error() == Some(libc::EINVAL)
                            || e.kind() == io::ErrorKind::InvalidInput =>
                    {
                        drop(file);
                        let mut file = fs::OpenOptions::new()
                            .write(true)
                            .truncate(true)
                            .open(path)?;
                        file.write_all(data)?;
                        return Ok(file);
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    let mut file = fs::File::create_new(path)?;
    file.write_all(data)?;
    Ok(file)
}

/// Writes `data` to `file` (opened with `O_DIRECT`, empty) through the
/// aligned part of `buf`, then cuts the file to `data`'s length.
#[cfg(target_os = "linux")]
fn write_direct(file: &mut fs::File, buf: &mut Vec<u8>, data: &[u8]) -> io::Result<()> {
    let padded = data.len().div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
    if buf.len() < padded + DIRECT_ALIGN {
        *buf = vec![0u8; padded + DIRECT_ALIGN];
    }
    let skew = (buf.as_ptr() as usize) % DIRECT_ALIGN;
    let start = (DIRECT_ALIGN - skew) % DIRECT_ALIGN;
    let aligned = buf
        .get_mut(start..start + padded)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let (body, pad) = aligned.split_at_mut(data.len());
    body.copy_from_slice(data);
    pad.fill(0);
    file.write_all(aligned)?;
    if padded != data.len() {
        file.set_len(data.len() as u64)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), BlockstoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The file name of a block: lowercase base32 (RFC 4648, no padding) of
/// its multihash. CIDs differing only in version or codec share the file,
/// which is right: they name the same bytes.
pub(crate) fn file_name(cid: &Cid) -> String {
    base32_lower(&cid.hash().to_bytes())
}

fn base32_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The shard directory: the next-to-last two characters of the name.
fn shard_of(name: &str) -> &str {
    let len = name.len();
    if len < 3 {
        name
    } else {
        &name[len - 3..len - 1]
    }
}

fn is_base32(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| BASE32.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_hold_exactly_the_data_at_any_length() {
        let dir = tempfile::tempdir().unwrap();
        // Below, at and around the direct-IO alignment, and a full block.
        for (i, len) in [0, 1, 4095, 4096, 4097, 65_536 + 3, 1 << 20, (1 << 20) + 1]
            .into_iter()
            .enumerate()
        {
            let data: Vec<u8> = (0..len).map(|n| (n % 251) as u8).collect();
            let path = dir.path().join(format!("f{i}"));
            let file = write_file(&path, &data).unwrap();
            file.sync_data().unwrap();
            drop(file);
            assert_eq!(fs::read(&path).unwrap(), data, "length {len}");
            assert!(write_file(&path, &data).is_err(), "never overwrites");
        }
    }

    #[test]
    fn file_names_are_kubo_style_base32_of_the_multihash() {
        let block = Block::hash(cid::Version::V1, crate::block::RAW, &b"hello world"[..]).unwrap();
        let name = file_name(block.cid());
        // sha2-256 multihashes start 0x12 0x20, "ciq" in base32 (kubo's CIQ...).
        assert!(name.starts_with("ciq"), "{name}");
        // The example in docs/content.md.
        assert_eq!(
            name,
            "ciqlstjhxgju2pqiuuxffv62pwv7vree57rxuu4a52iir55m4lx432i"
        );
        // The example in docs/content.md.
        assert_eq!(
            name,
            "ciqlstjhxgju2pqiuuxffv62pwv7vree57rxuu4a52iir55m4lx432i"
        );
        assert_eq!(name.len(), 55);
        assert_eq!(shard_of(&name), &name[52..54]);
        let v0 = Cid::new_v0(*block.cid().hash()).unwrap();
        assert_eq!(file_name(&v0), name);
        // RFC 4648 section 10 vectors, lowercased and unpadded.
        for (input, expected) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_lower(input.as_bytes()), expected);
        }
    }
}
