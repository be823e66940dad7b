//! [`NodeError`]: why a node could not start, or why a call on its
//! [`Client`](crate::Client) failed.

use libp2p::gossipsub::SubscriptionError;
use libp2p::swarm::DialError;
use libp2p::{Multiaddr, TransportError};

use crate::identity;
use crate::store::StoreError;

/// An error starting or talking to a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Another process uses the data dir, or it cannot be locked.
    #[error(transparent)]
    DataDir(#[from] crate::data_dir::DataDirError),
    /// The identity could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The blockstore could not be opened.
    #[error("blockstore: {0}")]
    Blockstore(#[from] ipsr_content::blockstore::BlockstoreError),
    /// The transports or behaviours of the swarm could not be built.
    #[error("cannot build the swarm: {0}")]
    Swarm(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The node could not listen on an address.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: Multiaddr,
        /// Why not.
        #[source]
        source: TransportError<std::io::Error>,
    },
    /// A TCP listen address's port is taken: another process listens on it
    /// (libp2p's TCP listeners would share it with that process silently).
    #[error(
        "cannot listen on {addr}: TCP port {port} is already in use (another node on this \
         machine?); stop it or choose another port with --listen"
    )]
    PortInUse {
        /// The address asked for.
        addr: Multiaddr,
        /// Its port.
        port: u16,
        /// What binding it answered.
        #[source]
        source: std::io::Error,
    },
    /// The node could not join the records topic.
    #[error("cannot subscribe to the records topic: {0}")]
    Subscribe(#[from] SubscriptionError),
    /// A dial was refused before it started (a banned peer, a bad address).
    #[error("cannot dial: {0}")]
    Dial(#[from] DialError),
    /// A record handed to the node does not verify.
    #[error("invalid record: {0}")]
    InvalidRecord(#[from] ipsr_proto::VerifyError),
    /// A record handed to the node was refused: its author is over its
    /// rate ([`Config::max_records_per_author_per_sec`](crate::Config)).
    /// Nothing was stored; try again later.
    #[error(
        "author {author} is over its rate of {per_sec} records a second \
         (burst {burst}): nothing stored, try again later"
    )]
    AuthorRateLimited {
        /// The author.
        author: ipsr_proto::AuthorId,
        /// Its records accepted per second.
        per_sec: u32,
        /// How many may come at once.
        burst: u32,
    },
    /// A record handed to the node was refused: the store is behind
    /// (its write queue is full while the disk catches up). Nothing was
    /// stored; try again later.
    #[error(
        "the node's store is behind ({queued} records wait to be written): nothing stored, \
         try again later"
    )]
    StoreBehind {
        /// Records waiting for the disk.
        queued: usize,
    },
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// A blocking task failed.
    #[error("internal task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<ipsr_content::Stopped> for NodeError {
    fn from(_: ipsr_content::Stopped) -> Self {
        Self::Stopped
    }
}
