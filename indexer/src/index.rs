//! The read interface the gateway queries, its answers, and the derivations
//! both backends share (a package's title, its counts, recent ordering).

use std::pin::Pin;

use ipsr_proto::{AuthorId, IdentityState};
use ipsr_proto::{PackageKey, PackageName, PackageState, ReleaseKey, ReleaseState, SignedRecord};

use crate::IndexError;

/// A boxed future, so that [`Index`] can be used as `&dyn Index`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A search result (see [`search`](crate::search)).
pub use ipsr_node::search::Hit;

/// Totals over everything indexed.
pub type IndexStats = ipsr_node::listing::Totals;

/// Per-package counts; their sums over all packages are [`IndexStats`].
pub(crate) use ipsr_node::listing::Counts;

/// The title a package is known by: its newest release's title, or empty.
pub(crate) use ipsr_node::search::title;

/// The releases of a package that appear in "recent".
pub(crate) use ipsr_node::listing::recent_entries;

/// The read interface of an index, used by the gateway for every query.
///
/// Two backends implement it: [`StoreIndex`](crate::StoreIndex) (the node's
/// embedded store) and [`RedisIndex`](crate::RedisIndex). Given the same
/// records, both answer every query identically (a search, when its
/// candidates fit the caps both keep: `docs/redis.md`, section 4).
pub trait Index: Send + Sync + std::fmt::Debug {
    /// Every version of a package, or `None` if unknown.
    fn package<'a>(
        &'a self,
        key: &'a PackageKey,
    ) -> BoxFuture<'a, Result<Option<PackageState>, IndexError>>;

    /// One release (author + package + version), or `None` if unknown.
    fn release<'a>(
        &'a self,
        key: &'a ReleaseKey,
    ) -> BoxFuture<'a, Result<Option<ReleaseState>, IndexError>>;

    /// An author's identity documents and the one in force
    /// (`docs/records.md`, section 8); for an author without documents, an
    /// empty state (the implicit document).
    fn identity<'a>(
        &'a self,
        author: &'a AuthorId,
    ) -> BoxFuture<'a, Result<IdentityState, IndexError>>;

    /// [`package`](Self::package) and [`identity`](Self::identity) of its
    /// author, together (a package's view needs both): by default both
    /// queries at once.
    fn package_with_identity<'a>(
        &'a self,
        key: &'a PackageKey,
    ) -> BoxFuture<'a, Result<(Option<PackageState>, IdentityState), IndexError>> {
        Box::pin(async move { tokio::try_join!(self.package(key), self.identity(&key.author)) })
    }

    /// The packages an author has published, in name order.
    fn author<'a>(
        &'a self,
        author: &'a AuthorId,
    ) -> BoxFuture<'a, Result<Vec<PackageName>, IndexError>>;

    /// Up to `limit` packages after `after`, for walking every package a
    /// piece at a time (pass the last key back as `after`); each backend
    /// walks in an order of its own (the embedded store by key bytes, Redis
    /// by the text `A/N`).
    fn packages<'a>(
        &'a self,
        after: Option<&'a PackageKey>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<PackageKey>, IndexError>>;

    /// The most recent non-yanked releases across the network: their release
    /// records, by `created_at` (newest first; ties by `author/package@version`,
    /// greatest first). At most `limit`.
    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<SignedRecord>, IndexError>>;

    /// The releases of [`recent`](Self::recent), in its order, without
    /// their records (what a listing needs to find its packages).
    fn recent_keys(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ReleaseKey>, IndexError>> {
        Box::pin(async move {
            Ok(self
                .recent(limit)
                .await?
                .iter()
                .map(SignedRecord::release_key)
                .collect())
        })
    }

    /// Packages matching `query` by name and title, best first (see
    /// [`search`](crate::search)). At most `limit`.
    fn search<'a>(
        &'a self,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Hit>, IndexError>>;

    /// The signed record bytes held for a release (release slot, yank slot,
    /// conflict evidence), ordered by record id, for clients to verify.
    fn record_bytes<'a>(
        &'a self,
        key: &'a ReleaseKey,
    ) -> BoxFuture<'a, Result<Vec<Vec<u8>>, IndexError>>;

    /// Totals.
    fn stats(&self) -> BoxFuture<'_, Result<IndexStats, IndexError>>;
}
