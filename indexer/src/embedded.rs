//! The [`Index`] backend on the node's embedded store: point queries use the
//! store's read API; `recent`, `search` and `stats` scan every package (fine
//! for one machine's store; the Redis backend keeps indexes for them).

use std::sync::Arc;

use ipsr_node::Store;
use ipsr_proto::SignedRecord;
use ipsr_proto::{AuthorId, PackageKey, PackageName, PackageState, ReleaseKey, ReleaseState};

use crate::index::{BoxFuture, Counts, Hit, Index, IndexStats, recent_entries};
use crate::{IndexError, search};

/// Release keys read from the store per page while scanning.
const SCAN_PAGE: usize = 1000;

/// An [`Index`] over a node's embedded [`Store`].
#[derive(Debug, Clone)]
pub struct StoreIndex {
    store: Arc<Store>,
}

impl StoreIndex {
    /// Queries `store` (e.g. `client.store().clone()` of an in-process node).
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, IndexError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, IndexError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(IndexError::Task)?
    }
}

/// Calls `f` with every package in the store, in key order.
fn scan_packages(store: &Store, mut f: impl FnMut(PackageState)) -> Result<(), IndexError> {
    let mut after: Option<ReleaseKey> = None;
    let mut last: Option<PackageKey> = None;
    loop {
        let page = store.release_keys(after.as_ref(), SCAN_PAGE)?;
        let Some(tail) = page.last().cloned() else {
            return Ok(());
        };
        for key in page {
            let package = key.package_key();
            if last.as_ref() == Some(&package) {
                continue;
            }
            if let Some(state) = store.package(&package)? {
                f(state);
            }
            last = Some(package);
        }
        after = Some(tail);
    }
}

impl Index for StoreIndex {
    fn package<'a>(
        &'a self,
        key: &'a PackageKey,
    ) -> BoxFuture<'a, Result<Option<PackageState>, IndexError>> {
        let key = key.clone();
        Box::pin(self.blocking(move |s| Ok(s.package(&key)?)))
    }

    fn release<'a>(
        &'a self,
        key: &'a ReleaseKey,
    ) -> BoxFuture<'a, Result<Option<ReleaseState>, IndexError>> {
        let key = key.clone();
        Box::pin(self.blocking(move |s| Ok(s.release(&key)?)))
    }

    fn author<'a>(
        &'a self,
        author: &'a AuthorId,
    ) -> BoxFuture<'a, Result<Vec<PackageName>, IndexError>> {
        let author = *author;
        Box::pin(self.blocking(move |s| Ok(s.packages_of(&author)?)))
    }

    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<SignedRecord>, IndexError>> {
        Box::pin(self.blocking(move |s| {
            let mut all: Vec<(u64, String, SignedRecord)> = Vec::new();
            scan_packages(s, |state| {
                for (at, release, record) in recent_entries(&state) {
                    all.push((at, release.key().to_string(), record.clone()));
                }
            })?;
            all.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
            Ok(all.into_iter().take(limit).map(|(_, _, r)| r).collect())
        }))
    }

    fn search<'a>(
        &'a self,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Hit>, IndexError>> {
        let query = query.to_owned();
        Box::pin(self.blocking(move |s| Ok(search::in_store(s, &query, limit)?)))
    }

    fn record_bytes<'a>(
        &'a self,
        key: &'a ReleaseKey,
    ) -> BoxFuture<'a, Result<Vec<Vec<u8>>, IndexError>> {
        let key = key.clone();
        Box::pin(self.blocking(move |s| {
            Ok(s.release(&key)?
                .map(|r| r.records().values().map(|r| r.to_bytes()).collect())
                .unwrap_or_default())
        }))
    }

    fn stats(&self) -> BoxFuture<'_, Result<IndexStats, IndexError>> {
        Box::pin(self.blocking(|s| {
            let mut stats = IndexStats::default();
            scan_packages(s, |state| Counts::of(&state).add_to(&mut stats))?;
            Ok(stats)
        }))
    }
}
