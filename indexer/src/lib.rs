//! `ipsr-indexer`: mirrors an IPSR node's record log into Redis, so that
//! many gateway processes can serve and search the swarm's records, and
//! answers the gateway's queries from Redis or from the node's own store.
//!
//! # Modules
//!
//! * `indexer`: the [`Indexer`] loop ([`IndexerConfig`], [`Metrics`]). It
//!   tails a node's log from a [`Source`], verifies every record again and
//!   writes it into a [`RedisIndex`]; the cursor, kept in Redis per node,
//!   advances only after the writes succeeded.
//! * `source`: where the log is read, a [`Page`] of [`Entry`]s at a time:
//!   [`HttpSource`] (the node's `GET /v1/log` long-poll) or [`LocalSource`]
//!   (a node in this process).
//! * `verifier`: the [`Verifier`] pool, decoding and verifying log entries
//!   on several threads in their order, one [`Verdict`] each
//!   ([`verify_all`] for a one-off call).
//! * `redis_index`: the Redis backend, [`RedisIndex`] ([`RedisConfig`],
//!   [`BatchOutcome`]): key names, the pure mapping from a package's state
//!   to its keys, the write path, the reads and the Lua scripts. Writes
//!   apply the ordering rules of `ipsr-proto` per package with a
//!   compare-and-set Lua script, so they are idempotent and independent of
//!   order: indexers may replay, crash, or run several at once.
//! * `index`: [`Index`], the read interface of the gateway, its answers
//!   ([`Hit`], [`IndexStats`], [`PackageView`] and the [`ViewToken`] that
//!   names what a view was rendered from) and what both backends derive
//!   alike.
//! * `embedded`: [`StoreIndex`], the [`Index`] over the node's embedded
//!   store.
//! * `states`: the package states both backends keep, each answered again
//!   while a cheap check (a Redis hash, the store's write generation)
//!   finds it current.
//! * `error`: [`IndexError`] and [`SourceError`].
//! * [`search`]: the search rules both backends share (from `ipsr-node`).
//!
//! The Redis keyspace is specified in `docs/redis.md`.
//!
//! ```no_run
//! use ipsr_indexer::{HttpSource, Indexer, IndexerConfig, RedisConfig, RedisIndex};
//! # async fn demo() -> Result<(), ipsr_indexer::IndexError> {
//! let index = RedisIndex::open(&RedisConfig::new("redis://127.0.0.1:6379"))?;
//! let indexer = Indexer::new(HttpSource::new("http://127.0.0.1:5050"), index, IndexerConfig::default());
//! indexer.run(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod embedded;
mod error;
mod index;
mod indexer;
mod redis_index;
mod source;
mod states;
mod verifier;

pub use embedded::StoreIndex;
pub use error::{IndexError, SourceError};
pub use index::{BoxFuture, Hit, Index, IndexStats, PackageView, ViewToken};
pub use indexer::{Indexer, IndexerConfig, Metrics};
/// The search rules both backends share (defined in `ipsr-node`, whose
/// `GET /v1/search` ranks by them too).
pub use ipsr_node::search;
pub use redis_index::{BatchOutcome, RedisConfig, RedisIndex};
pub use source::{Entry, HttpSource, LocalSource, Page, Source};
pub use verifier::{Verdict, Verifier, verify_all};
