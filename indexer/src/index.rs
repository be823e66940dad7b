//! The read interface the gateway queries, its answers, and the derivations
//! both backends share (a package's title, its counts, recent ordering).

use std::pin::Pin;

use ipsr_proto::AuthorId;
use ipsr_proto::{PackageKey, PackageName, PackageState, ReleaseKey, ReleaseState, SignedRecord};
use serde::{Deserialize, Serialize};

use crate::IndexError;

/// A boxed future, so that [`Index`] can be used as `&dyn Index`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A search result (see [`search`](crate::search)).
pub use ipsr_node::search::Hit;

/// Totals over everything indexed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStats {
    /// Packages (author + package) known.
    pub packages: u64,
    /// Releases (author + package + version) known.
    pub releases: u64,
    /// Records held: release slots, yank slots and conflict evidence.
    pub records: u64,
    /// Releases currently yanked.
    pub yanked: u64,
    /// Releases with a CID conflict or an equivocation.
    pub conflicts: u64,
}

/// Per-package counts; their sums over all packages are [`IndexStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub(crate) releases: u64,
    pub(crate) records: u64,
    pub(crate) yanked: u64,
    pub(crate) conflicts: u64,
}

impl Counts {
    pub(crate) fn of(state: &PackageState) -> Self {
        let mut c = Self::default();
        for r in state.releases() {
            c.releases += 1;
            c.records += r.records().len() as u64;
            c.yanked += u64::from(r.is_yanked());
            c.conflicts += u64::from(r.conflicting_cids().is_some() || r.is_equivocated());
        }
        c
    }

    pub(crate) fn add_to(&self, stats: &mut IndexStats) {
        stats.packages += 1;
        stats.releases += self.releases;
        stats.records += self.records;
        stats.yanked += self.yanked;
        stats.conflicts += self.conflicts;
    }
}

/// The title a package is known by: its newest release's title, or empty.
pub(crate) use ipsr_node::search::title;

/// The releases of a package that appear in "recent": not yanked, with a
/// release record; each with its record's `created_at`.
pub(crate) fn recent_entries(state: &PackageState) -> Vec<(u64, &ReleaseState, &SignedRecord)> {
    state
        .releases()
        .filter(|r| !r.is_yanked())
        .filter_map(|r| r.release().map(|rec| (rec.record().created_at(), r, rec)))
        .collect()
}

/// The read interface of an index, used by the gateway for every query.
///
/// Two backends implement it: [`StoreIndex`](crate::StoreIndex) (the node's
/// embedded store) and [`RedisIndex`](crate::RedisIndex). Given the same
/// records, both answer every query identically.
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

    /// The packages an author has published, in name order.
    fn author<'a>(
        &'a self,
        author: &'a AuthorId,
    ) -> BoxFuture<'a, Result<Vec<PackageName>, IndexError>>;

    /// The most recent non-yanked releases across the network: their release
    /// records, by `created_at` (newest first; ties by `author/package@version`,
    /// greatest first). At most `limit`.
    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<SignedRecord>, IndexError>>;

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
