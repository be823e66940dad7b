//! The [`Index`] backend on the node's embedded store: point queries use the
//! store's read API; `recent`, `search` and `stats` read the store's
//! catalog (its indexes, kept as records are written: `docs/node.md`).

use std::sync::Arc;

use ipsr_node::Store;
use ipsr_proto::SignedRecord;
use ipsr_proto::{AuthorId, PackageKey, PackageName, PackageState, ReleaseKey, ReleaseState};

use crate::IndexError;
use crate::index::{BoxFuture, Hit, Index, IndexStats};

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

    fn identity<'a>(
        &'a self,
        author: &'a AuthorId,
    ) -> BoxFuture<'a, Result<ipsr_proto::IdentityState, IndexError>> {
        let author = *author;
        Box::pin(self.blocking(move |s| Ok(s.identity(&author)?)))
    }

    fn package_with_identity<'a>(
        &'a self,
        key: &'a PackageKey,
    ) -> BoxFuture<'a, Result<(Option<PackageState>, ipsr_proto::IdentityState), IndexError>> {
        let key = key.clone();
        Box::pin(self.blocking(move |s| Ok(s.package_with_identity(&key)?)))
    }

    fn author<'a>(
        &'a self,
        author: &'a AuthorId,
    ) -> BoxFuture<'a, Result<Vec<PackageName>, IndexError>> {
        let author = *author;
        Box::pin(self.blocking(move |s| Ok(s.packages_of(&author)?)))
    }

    fn packages<'a>(
        &'a self,
        after: Option<&'a PackageKey>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<PackageKey>, IndexError>> {
        let after = after.cloned();
        Box::pin(self.blocking(move |s| Ok(s.package_keys(after.as_ref(), limit)?)))
    }

    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<SignedRecord>, IndexError>> {
        Box::pin(self.blocking(move |s| Ok(s.recent(limit)?)))
    }

    fn recent_keys(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ReleaseKey>, IndexError>> {
        Box::pin(self.blocking(move |s| Ok(s.recent_keys(limit)?)))
    }

    fn search<'a>(
        &'a self,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Hit>, IndexError>> {
        let query = query.to_owned();
        Box::pin(self.blocking(move |s| Ok(s.search(&query, limit)?)))
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
        Box::pin(self.blocking(|s| Ok(s.totals()?)))
    }
}
