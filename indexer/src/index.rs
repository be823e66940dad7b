//! The read interface the gateway queries, its answers, and the derivations
//! both backends share (a package's title, its counts, recent ordering).

use std::pin::Pin;

use ipsr_proto::{AuthorId, IdentityState};
use ipsr_proto::{PackageKey, PackageName, PackageState, ReleaseKey, ReleaseState, SignedRecord};

use crate::IndexError;

/// A boxed future, so that [`Index`] can be used as `&dyn Index`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What names the state a package view was read from
/// ([`Index::package_view`]): from one index, equal tokens mean an equal
/// package state and an equal identity of its author, so what was rendered
/// from one may be served for the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewToken(Token);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// The embedded store's write generation.
    Generation(u64),
    /// SHA-256 over the package's Redis `hash` and the ids of its author's
    /// identity documents.
    Digest([u8; 32]),
}

impl ViewToken {
    /// The store's write generation read before the read.
    pub(crate) fn generation(generation: u64) -> Self {
        Self(Token::Generation(generation))
    }

    /// A Redis package `hash` and the fields of its author's `idn:{A}`
    /// (record ids: hashes of the documents' bytes), in any order.
    pub(crate) fn redis<'a>(hash: &str, identity_ids: impl IntoIterator<Item = &'a str>) -> Self {
        use sha2::{Digest, Sha256};
        let mut ids: Vec<&str> = identity_ids.into_iter().collect();
        ids.sort_unstable();
        let mut digest = Sha256::new();
        digest.update(hash.as_bytes());
        for id in ids {
            digest.update(b"\n");
            digest.update(id.as_bytes());
        }
        Self(Token::Digest(digest.finalize().into()))
    }
}

/// The answer to [`Index::package_view`].
// Returned once per read and moved up once; boxing `Read` would cost an
// allocation on every changed view for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum PackageView {
    /// The token the caller holds still names the current state.
    Unchanged,
    /// The package (`None` if unknown) and its author's identity, with the
    /// token that names them when the backend can name them.
    Read {
        state: Option<PackageState>,
        identity: IdentityState,
        token: Option<ViewToken>,
    },
}

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

    /// What a package's view is rendered from: [`PackageView::Unchanged`]
    /// when `known`, a token an earlier call returned for `key`, still
    /// names the current state; else what
    /// [`package_with_identity`](Self::package_with_identity) answers, and
    /// the token naming it. Every call asks the index (a check as cheap as
    /// the backend allows): a change by any writer shows on the next call.
    /// By default, nothing is named.
    fn package_view<'a>(
        &'a self,
        key: &'a PackageKey,
        known: Option<&'a ViewToken>,
    ) -> BoxFuture<'a, Result<PackageView, IndexError>> {
        let _ = known;
        Box::pin(async move {
            let (state, identity) = self.package_with_identity(key).await?;
            Ok(PackageView::Read {
                state,
                identity,
                token: None,
            })
        })
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
