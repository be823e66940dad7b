//! `ipsr-node`: the IPSR daemon, a libp2p node that validates, stores and
//! passes on signed package records.
//!
//! * [`Store`]: the embedded store (redb) of verified records, with an
//!   append-only log that consumers tail from a position.
//! * [`spawn`] starts a node from a [`Config`] and returns a [`Client`], the
//!   cloneable handle everything else uses.
//! * [`Client::content`]: package bytes as IPFS blocks (the crate
//!   `ipsr-content`: UnixFS import, the blockstore, Bitswap and parallel
//!   download), with this node's DHT as the router.
//! * [`views`]: the JSON views of packages and releases that the node's
//!   API and the gateway share.
//! * [`search`]: the search rules (terms, weights, scores) every search of
//!   IPSR ranks by, and a search of the embedded store.
//! * [`run`]: the flags and config file of a running node (`ipsr-node run`,
//!   `ipsr-gateway`) and its start-up and shutdown.
//! * [`serve_api`] serves the node's local control API (HTTP+JSON,
//!   `docs/node-api.md`) for a [`Client`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), ipsr_node::NodeError> {
//! let config = ipsr_node::Config::local("/tmp/ipsr-demo".into());
//! let node = ipsr_node::spawn(config).await?;
//! println!("peer id {}", node.peer_id());
//! # Ok(()) }
//! ```

mod api;
mod config;
mod identity;
mod limiter;
mod metrics;
mod node;
pub mod run;
pub mod search;
mod store;
mod sync;
pub mod views;

pub use api::{ApiError, serve_api};
pub use config::Config;
pub use identity::IdentityError;
pub use node::{Client, KAD_PROTOCOL, NodeError, PROTOCOL_VERSION, RECORDS_TOPIC, spawn};
pub use store::{DhtValue, Stats, Store, StoreError, Stored};
pub use sync::{PROTOCOL as SYNC_PROTOCOL, SyncError, SyncReport};
