//! What content needs of the network around it: provider records in a DHT,
//! the connected peers, and a way to refuse a peer that sent bad blocks.
//! The node implements [`Router`] with its Kademlia DHT and swarm; a test
//! can implement it with a fixed set of peers.

use cid::Cid;
use futures::future::BoxFuture;
use libp2p::PeerId;
use tokio::sync::mpsc;

/// The router is gone: the node behind it has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node has stopped")]
pub struct Stopped;

/// Where downloads find providers, where added content is announced, and
/// how a bad peer is dropped.
pub trait Router: Send + Sync + 'static {
    /// Starts a provider search for `cid`; providers come on the channel,
    /// which closes when the search ends.
    fn find_providers(&self, cid: Cid) -> mpsc::Receiver<PeerId>;
    /// Closes the connections to a peer that sent bad blocks and refuses
    /// it for a while.
    fn ban(&self, peer: PeerId);
    /// Announces this node as a provider of `cid` (the node announces
    /// its pins again on a schedule; see `docs/node.md`).
    fn provide(&self, cid: Cid) -> BoxFuture<'_, Result<(), Stopped>>;
    /// The peers connected now.
    fn peers(&self) -> BoxFuture<'_, Result<Vec<PeerId>, Stopped>>;
}
