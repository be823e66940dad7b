//! `ipsr-node`: the IPSR daemon.
//!
//! So far: the embedded [`Store`] of verified records, with its append-only
//! log. The swarm, sync and the local API build on it.

mod store;

pub use store::{Stats, Store, StoreError, Stored};
