//! The Redis backend: the keyspace (specified in `docs/redis.md`), the
//! idempotent, order-independent writes of the indexer and the
//! [`Index`](crate::Index) queries of the gateway.
//!
//! * this module: [`RedisIndex`] (its connection and scripts, `open`,
//!   `ping`, `dump`, `clear`) and its [`RedisConfig`];
//! * `keys`: the key names, and the members of the keys across packages;
//! * `derive`: the pure mapping from a package's state to everything its
//!   keys hold (no IO; unit-tested without Redis);
//! * `write`: the compare-and-set write path and the nodes' cursors;
//! * `read`: a package's state rebuilt from its keys, and the queries;
//! * [`crate::states`] (shared with the embedded backend): the states read
//!   before, answered again while the package's `hash` in Redis is the
//!   one they were read under;
//! * `conn`: the connection to one server or to a cluster, and the
//!   batches of commands split by hash slot for a cluster;
//! * `lua/`: the Lua scripts, one file each, loaded with `include_str!`.
//!
//! The steps of a write (`docs/redis.md`, section 3), and where they are:
//!
//! ```text
//!  write ─┬─ 1. read pkg/rel/rec, rebuild the state   read::{push_read, rebuild}
//!         ├─ 2. fold the records in, derive the keys  ipsr-proto, derive::Derived::of
//!         ├─ 3. the package's slot, if `hash` is      lua/apply.lua
//!         │     still the one read
//!         └─ 4. the keys outside the slot, then       lua/word.lua, ZADD/ZREM,
//!               `synced` if `hash` is unchanged       lua/counters.lua, lua/finish.lua
//! ```
//!
//! # How writes converge
//!
//! Each package's records (release slots, yank slots, conflict evidence)
//! and each release's state are kept in Redis. To apply new records to a
//! package, the writer reads the package's keys, rebuilds its
//! [`PackageState`], folds the records in with the rules of `ipsr-proto`
//! (whose result does not depend on order), derives every key from the
//! resulting state, and writes the difference with one Lua script that
//! first checks the package's content hash is still the one it read
//! (compare-and-set; on a mismatch it reads again and retries). Since every
//! key is a function of the state, and the state a function of the set of
//! records seen, any writers applying the same records in any order end
//! with the same keys.
//!
//! Keys outside the package's hash slot (search terms, recent, the author's
//! packages, counters) are written after the package script from the state
//! the script stored, then marked done with a second compare-and-set
//! (`synced`); entries a state change made obsolete are kept in the
//! package's `stale` list until removed. A writer that finds the package
//! changed meanwhile does this phase again.
//!
//! [`PackageState`]: ipsr_proto::PackageState

mod conn;
mod derive;
mod keys;
mod read;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipsr_proto::PackageState;
use redis::{RedisError, Script, Value};
use tracing::{debug, warn};

use crate::IndexError;
use crate::states::States;

use conn::{Batch, Conn, ConnOptions, Target, Topology};
use keys::{Keys, glob_escape};
pub use write::BatchOutcome;
pub(crate) use write::Unsynced;

/// How a [`RedisIndex`] connects and lays out its keys.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// One server, `redis://[user:password@]host:port/db` (or `rediss://`
    /// for TLS, `redis+unix://`), or a cluster,
    /// `redis+cluster://[user:password@]host:port[,host:port…]` (or
    /// `rediss+cluster://`) naming some of its nodes.
    pub url: String,
    /// A PEM file of the CA certificates that sign the servers'
    /// certificates, for `rediss://` (default: the system's).
    pub ca_cert: Option<PathBuf>,
    /// Prefix of every key, e.g. `ipsr:`; must not contain `{` or `}`.
    pub prefix: String,
    /// How many entries `recent` keeps (default 10 000).
    pub recent_cap: usize,
    /// Compare-and-set conflicts in a row on one package before giving up
    /// on a batch (it is retried later; default 64).
    pub max_conflicts: u32,
    /// How long one command may take before it fails (default 10 s).
    pub response_timeout: Duration,
}

impl RedisConfig {
    /// The defaults, for `url` and the prefix `ipsr:`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca_cert: None,
            prefix: "ipsr:".into(),
            recent_cap: 10_000,
            max_conflicts: 64,
            response_timeout: Duration::from_secs(10),
        }
    }

    /// The URL with its password replaced by `***`, for logs.
    pub fn redacted_url(&self) -> String {
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return self.url.clone();
        };
        match rest.rsplit_once('@') {
            Some((auth, hosts)) => {
                let user = auth.split_once(':').map_or("", |(u, _)| u);
                format!("{scheme}://{user}:***@{hosts}")
            }
            None => self.url.clone(),
        }
    }
}

/// The Lua scripts, loaded with `SCRIPT LOAD` and run with `EVALSHA`
/// (loaded again when Redis answers `NOSCRIPT`, e.g. after a restart).
#[derive(Debug)]
struct Scripts {
    apply: Script,
    finish: Script,
    counters: Script,
    cursor: Script,
    word: Script,
}

// The scripts' sources, each in a file of its own under `lua/` whose
// header says what it does and what its KEYS and ARGV are.

/// The `apply` script: the compare-and-set write of one package's keys.
const APPLY_LUA: &str = include_str!("lua/apply.lua");
/// The `word` script: one search word's packages and its bucket's word list.
const WORD_LUA: &str = include_str!("lua/word.lua");
/// The `finish` script: marks a package's global entries written.
const FINISH_LUA: &str = include_str!("lua/finish.lua");
/// The `counters` script: keeps the totals in `stats`.
const COUNTERS_LUA: &str = include_str!("lua/counters.lua");
/// The `cursor` script: moves the durable cursor of a node's log.
const CURSOR_LUA: &str = include_str!("lua/cursor.lua");

/// The Redis backend: the indexer's writes and the gateway's queries.
/// Cheap to clone (one multiplexed connection per server, reconnecting by
/// itself).
#[derive(Clone)]
pub struct RedisIndex {
    conn: Conn,
    response_timeout: Duration,
    keys: Keys,
    scripts: Arc<Scripts>,
    recent_cap: usize,
    max_conflicts: u32,
    states: Arc<States<Option<String>, PackageState>>,
}

impl std::fmt::Debug for RedisIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisIndex")
            .field("prefix", &self.keys.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisIndex {
    /// Connects lazily: this does not fail when Redis is down; commands do,
    /// until it is back.
    pub fn open(config: &RedisConfig) -> Result<Self, IndexError> {
        if config.prefix.contains(['{', '}']) {
            return Err(IndexError::corrupt(
                "prefix",
                "must not contain '{' or '}' (they would break the hash tags)",
            ));
        }
        let conn = Conn::open(
            &Target::parse(&config.url)?,
            &ConnOptions {
                response_timeout: config.response_timeout,
                ca_cert: config.ca_cert.clone(),
            },
        )?;
        Ok(Self {
            conn,
            response_timeout: config.response_timeout,
            keys: Keys {
                prefix: config.prefix.clone(),
            },
            scripts: Arc::new(Scripts {
                apply: Script::new(APPLY_LUA),
                finish: Script::new(FINISH_LUA),
                counters: Script::new(COUNTERS_LUA),
                cursor: Script::new(CURSOR_LUA),
                word: Script::new(WORD_LUA),
            }),
            recent_cap: config.recent_cap.max(1),
            max_conflicts: config.max_conflicts.max(1),
            states: Arc::new(States::new(crate::states::CAPACITY_BYTES)),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// Whether the index is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.conn.is_cluster()
    }

    async fn load_scripts(&self) -> Result<(), RedisError> {
        self.conn
            .load_scripts(&[APPLY_LUA, FINISH_LUA, COUNTERS_LUA, CURSOR_LUA, WORD_LUA])
            .await?;
        debug!("scripts loaded");
        Ok(())
    }

    /// Runs a batch; on `NOSCRIPT` (a restarted server, a promoted replica)
    /// loads the scripts and runs it again. Running again is harmless:
    /// every write of a batch is idempotent.
    async fn run(&self, batch: &Batch) -> Result<Vec<Value>, RedisError> {
        match self.conn.run(batch).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                warn!(
                    "redis lost its scripts (restarted, or a replica promoted): loading them again"
                );
                self.load_scripts().await?;
                self.conn.run(batch).await
            }
            other => other,
        }
    }

    /// On a cluster, the masters as they are now: what
    /// [`confirm`](Self::confirm) checks writes made after this against.
    /// `None` on one server.
    pub(crate) async fn topology(&self) -> Result<Option<Topology>, IndexError> {
        Ok(self.conn.topology().await?)
    }

    /// On a cluster, waits until the writes made since `topology` was read
    /// reached a replica of their master, and checks that no failover
    /// happened meanwhile ([`IndexError::NotReplicated`],
    /// [`IndexError::Failover`]: the writes must be done again). Nothing to
    /// check on one server.
    pub(crate) async fn confirm(&self, topology: Option<&Topology>) -> Result<(), IndexError> {
        match topology {
            Some(t) => self.conn.confirm(t, self.response_timeout / 2).await,
            None => Ok(()),
        }
    }

    /// Every key under the prefix with a canonical text form of its value,
    /// sorted: to compare two indexes (tests, debugging). Reads with `SCAN`.
    pub async fn dump(&self) -> Result<Vec<(String, String)>, IndexError> {
        let mut conn = self.conn.clone();
        let keys = self.keys_under_prefix().await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await?;
            let text = match kind.as_str() {
                "string" => {
                    let v: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
                    hex::encode(v)
                }
                "hash" => {
                    let v: BTreeMap<String, Vec<u8>> = redis::cmd("HGETALL")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await?;
                    format!(
                        "{:?}",
                        v.iter()
                            .map(|(k, v)| (k, hex::encode(v)))
                            .collect::<Vec<_>>()
                    )
                }
                "set" => {
                    let v: BTreeSet<String> = redis::cmd("SMEMBERS")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await?;
                    format!("{v:?}")
                }
                "zset" => {
                    let v: Vec<(String, String)> = redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query_async(&mut conn)
                        .await?;
                    format!("{v:?}")
                }
                other => format!("<{other}>"),
            };
            let rel = key
                .strip_prefix(&self.keys.prefix)
                .unwrap_or(&key)
                .to_owned();
            out.push((rel, text));
        }
        Ok(out)
    }

    /// Deletes every key under the prefix (tests, re-indexing from scratch).
    pub async fn clear(&self) -> Result<u64, IndexError> {
        let mut deleted = 0;
        for batch in self.keys_under_prefix().await?.chunks(1000) {
            // One DEL per key: the keys of a batch may be in many slots.
            let mut del = Batch::new();
            for key in batch {
                del.key_cmd("DEL", key);
            }
            for n in self.run(&del).await? {
                deleted += redis::from_redis_value::<u64>(n)?;
            }
        }
        Ok(deleted)
    }

    /// Every key under the prefix, sorted, each once (`SCAN` may repeat
    /// one), from every master of a cluster.
    async fn keys_under_prefix(&self) -> Result<Vec<String>, IndexError> {
        let pattern = format!("{}*", glob_escape(&self.keys.prefix));
        let scan = |cursor: u64| {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            cmd
        };
        let mut keys: Vec<String> = Vec::new();
        for (addr, first) in self.conn.on_masters(scan(0)).await? {
            let mut reply = first;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::from_redis_value(reply)?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                reply = self.conn.on_node(&addr, scan(next)).await?;
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), IndexError> {
        Ok(self.conn.ping().await?)
    }
}

/// Adds to `batch` a call of `script` (by its SHA1) with `keys` (at least
/// one, all in one slot) and `args`.
fn evalsha<A: redis::ToRedisArgs>(batch: &mut Batch, script: &Script, keys: &[String], args: &[A]) {
    batch
        .cmd_in("EVALSHA", keys.first().map_or("", String::as_str))
        .arg(script.get_hash())
        .arg(keys.len())
        .arg(keys)
        .arg(args);
}
