//! `ipsr-node`: the IPSR daemon, a libp2p node that validates, stores and
//! passes on signed package records, and serves package content.
//!
//! The handle and how a node runs:
//! * `client`: [`Client`], the cloneable handle everything else uses; its
//!   content half is [`Client::content`] (the crate `ipsr-content`: UnixFS,
//!   the blockstore, Bitswap, downloads), routed through this node's DHT.
//! * `runtime`: [`spawn`] wires a node together from a [`Config`] and runs
//!   its event loop, which owns the swarm and carries out what the service
//!   decides.
//! * `swarm`: the libp2p behaviours and their settings (gossipsub peer
//!   scoring, Kademlia, connection limits, DNS) and the protocol ids
//!   ([`RECORDS_TOPIC`], [`KAD_PROTOCOL`], [`PROTOCOL_VERSION`]).
//! * `config`: [`Config`], every setting with its default, and
//!   [`DhtStoreLimits`].
//! * `dht_store`: Kademlia's in-memory store, bounded in records, bytes and
//!   provider records, that never returns an expired one.
//! * `error`: [`NodeError`].
//!
//! The rules, sans-IO (events and the time in, actions out):
//! * `service`: the gossip rules (verify before forwarding: accept, reject,
//!   ignore), per-peer and per-author rate limits, sync on connect and in
//!   rotation, bans and their expiry, the DHT republish walk.
//! * `dht`: which DHT values a node accepts under which key, and what it
//!   keeps of them ([`DhtValueError`]).
//! * `providers`: which inbound provider records a node keeps (the key,
//!   caps per peer, per key and in all, expiry).
//! * `pacing`: the paced walks (republish, re-provide) whose batches follow
//!   the size of what they walk.
//! * `limiter`: the token buckets the service limits with, per peer and
//!   per author (a bounded table).
//! * `bootstrap`: joining and staying joined: bootstrap dials retried with
//!   backoff, and a new bootstrap when the node has been alone a while.
//! * `ip_limits`: per-IP limits on inbound connections (a behaviour of
//!   the swarm), so one address cannot take every connection slot.
//! * `sim` (hidden): a discrete-event simulation of thousands of nodes in
//!   one process, each running the real `service` over a modelled network
//!   (`docs/dev/simulation.md`).
//!
//! Records and the protocols that move them:
//! * `store`: [`Store`], the embedded store (redb) of verified records,
//!   with a log that consumers tail from a position ([`LogPage`]),
//!   compacted as records are superseded (`store/log.rs`), and a catalog
//!   that indexes search words, recent releases and totals
//!   (`store/catalog.rs`).
//! * [`decoded`]: records decoded from storage, kept by id for the whole
//!   process (the store's reads and the indexer's Redis reads share them).
//! * `writes`: group commit: verified records go into the store one write
//!   at a time, those that arrive meanwhile together in the next (sans IO).
//! * `sync`: `/ipsr/sync/1.0.0` ([`SYNC_PROTOCOL`]), catch-up by set
//!   reconciliation with each peer.
//! * `identity`: the node's libp2p key in its data dir.
//! * `data_dir`: the lock that keeps a second daemon off a data dir, naming
//!   the process that holds it.
//! * `private_file`: files of mode 0600 written whole or not at all (the
//!   identity key, the API token).
//! * `metrics`: Prometheus counters (IPSR's and libp2p's), peers and the
//!   build;
//! * `process`: the process's memory, CPU time and open files from `/proc`
//!   (sans IO parsing), for `/metrics`.
//!
//! Serving:
//! * `api`: [`serve_api`], the node's local control API (HTTP+JSON,
//!   `docs/node-api.md`), and [`serve_api_with_token`], which requires an
//!   [`ApiToken`] of every request (an API off loopback needs one).
//! * [`views`]: the JSON views of packages and releases that the node's
//!   API and the gateway share.
//! * [`search`]: the search rules (terms, weights, scores) every search of
//!   IPSR ranks by, and [`search::scan`], the reference that reads every
//!   package (the store answers from its catalog: [`Store::search`]).
//! * [`listing`]: what a package contributes to "recent" and the totals,
//!   derived alike by the store's catalog and the Redis index.
//! * [`run`]: the flags and config file of a running node (`ipsr-node run`,
//!   `ipsr-gateway`) and its start-up and shutdown.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ipsr_node::NodeError> {
//! let config = ipsr_node::Config::local("/tmp/ipsr-demo".into());
//! let node = ipsr_node::spawn(config).await?;
//! println!("peer id {}", node.peer_id());
//! # Ok(()) }
//! ```

mod api;
mod bootstrap;
mod client;
mod config;
mod data_dir;
pub mod decoded;
mod dht;
mod dht_store;
mod error;
mod identity;
mod ip_limits;
mod limiter;
pub mod listing;
mod metrics;
mod pacing;
pub mod private_file;
mod process;
mod providers;
pub mod run;
mod runtime;
pub mod search;
mod service;
#[doc(hidden)]
pub mod sim;
mod store;
mod swarm;
mod sync;
pub mod views;
mod writes;

pub use api::{
    ApiError, ApiToken, BadToken, TOKEN_FILE, TokenError, serve_api, serve_api_with_token,
};
pub use client::Client;
pub use config::{Config, DEFAULT_BLOCKSTORE_LIMIT, DhtStoreLimits};
pub use data_dir::DataDirError;
pub use dht::DhtValueError;
pub use error::NodeError;
pub use identity::IdentityError;
pub use runtime::spawn;
pub use store::{DhtValue, LogPage, Stats, Store, StoreError, Stored, WriteHold};
pub use swarm::{KAD_PROTOCOL, PROTOCOL_VERSION, RECORDS_TOPIC};
pub use sync::{PROTOCOL as SYNC_PROTOCOL, SyncError, SyncReport};
