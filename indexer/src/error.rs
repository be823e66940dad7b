//! Errors of the index backends, the log sources and the indexer.

/// An error of a query or a write against an [`Index`](crate::Index) backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Redis failed (down, restarting, refused a command).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A Redis reply had an unexpected type.
    #[error("unexpected redis reply: {0}")]
    Reply(#[from] redis::ParsingError),
    /// The node's embedded store failed.
    #[error("store: {0}")]
    Store(#[from] ipsr_node::StoreError),
    /// A value read back does not parse: the keyspace was damaged or
    /// written by an incompatible implementation.
    #[error("corrupt index entry {key}: {reason}")]
    Corrupt {
        /// The key (or key and field) holding the value.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another writer kept changing a package while this one tried to write
    /// it (more compare-and-set conflicts in a row than allowed).
    #[error("gave up on {package} after {attempts} write conflicts")]
    Contended {
        /// The package (`author/package`).
        package: String,
        /// Attempts made.
        attempts: u32,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Writes to a cluster master did not reach any of its replicas in
    /// time: they could be lost if it failed now, so they are done again.
    #[error("writes on the redis master {master} reached no replica in time")]
    NotReplicated {
        /// The master (`host:port`).
        master: String,
    },
    /// The cluster's masters changed while writing (a failover): writes
    /// acknowledged by a master that is gone may be lost, so they are done
    /// again.
    #[error("the redis cluster failed over while writing")]
    Failover,
    /// The task reading the log stopped without an error of its own.
    #[error("the log reader stopped")]
    ReaderStopped,
}

impl IndexError {
    /// Whether retrying later may succeed (Redis unreachable or restarting,
    /// scripts flushed, contention), as opposed to damaged data.
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::Corrupt { .. } | Self::Reply(_))
    }

    pub(crate) fn corrupt(key: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

/// An error of a [`Source`](crate::Source) of log entries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The HTTP request failed (node down, connection refused, timeout).
    #[error("request to {url}: {reason}")]
    Http {
        /// The URL requested.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// The node answered something that is not a valid log page.
    #[error("bad answer from {url}: {reason}")]
    BadAnswer {
        /// The URL requested.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The in-process node's store failed.
    #[error("store: {0}")]
    Store(#[from] ipsr_node::StoreError),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
