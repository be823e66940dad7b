//! The [`Index`] backend on the node's embedded store: point queries use the
//! store's read API; `recent`, `search` and `stats` read the store's
//! catalog (its indexes, kept as records are written: `docs/node.md`).
//!
//! A package read (with its author's identity) is kept ([`crate::states`])
//! under the store's write generation, and answered again without a store
//! read until the next write is done.
//!
//! Store calls block, so they run in tokio's blocking pool, except one: a
//! package read again whose last read found at most [`INLINE_RELEASES`]
//! releases runs on the runtime's own thread. Handing such a read to the
//! pool (a thread woken, then the task woken back) cost more than the read
//! itself, a third of the requests an uncached package view could serve
//! (`docs/dev/performance.md`). A package read for the first time, one
//! with more releases, and every scan still go to the pool, so what runs
//! inline is bounded by the size last seen (a package grows by at most its
//! author's record budget between two reads).

use std::sync::Arc;

use ipsr_node::Store;
use ipsr_proto::{
    AuthorId, IdentityState, PackageKey, PackageName, PackageState, ReleaseKey, ReleaseState,
    SignedRecord,
};
use quick_cache::sync::Cache;

use crate::IndexError;
use crate::index::{BoxFuture, Hit, Index, IndexStats, PackageView, ViewToken};
use crate::states::{self, States};

/// The most releases a package may have had at its last read to be read
/// again on the runtime's thread.
pub(crate) const INLINE_RELEASES: usize = 16;
/// How many packages known to be small are remembered (the least used go
/// first; about 100 bytes each).
const KNOWN_SMALL: usize = 16_384;

/// An [`Index`] over a node's embedded [`Store`].
#[derive(Debug, Clone)]
pub struct StoreIndex {
    store: Arc<Store>,
    /// Packages whose last read found at most [`INLINE_RELEASES`] releases.
    small: Arc<Cache<PackageKey, ()>>,
    /// Packages and their authors' identities read before, by the store's
    /// write generation they were read under.
    kept: Arc<States<u64, (PackageState, IdentityState)>>,
}

impl StoreIndex {
    /// Queries `store` (e.g. `client.store().clone()` of an in-process node).
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            small: Arc::new(Cache::new(KNOWN_SMALL)),
            kept: Arc::new(States::new(states::CAPACITY_BYTES)),
        }
    }

    /// Package `key` and its author's identity, and the write generation
    /// they were read under: kept, while no write has been done since they
    /// were read, or read (then kept under the generation read before: a
    /// write that finishes during the read moves it, so what was read is
    /// then never answered again).
    async fn read_package(
        &self,
        key: &PackageKey,
    ) -> Result<(u64, Option<PackageState>, IdentityState), IndexError> {
        let generation = self.store.generation();
        if let Some(kept) = self.kept.get(key)
            && kept.is_current(&generation)
        {
            let (state, identity) = &kept.value;
            return Ok((generation, Some(state.clone()), identity.clone()));
        }
        let (state, identity) = self.package_read(key).await?;
        if let Some(state) = &state {
            let (records, bytes) = state
                .releases()
                .flat_map(|r| r.records().into_values())
                .fold((0, 0), |(n, bytes), r| (n + 1, bytes + r.payload().len()));
            let weight = states::estimate(state, records, bytes);
            self.kept.keep(
                key.clone(),
                generation,
                (state.clone(), identity.clone()),
                weight,
            );
        }
        Ok((generation, state, identity))
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

    /// Package `key` and its author's identity from the store: on the
    /// runtime's thread when the package is known to be small, else in the
    /// blocking pool; then remembers whether it is small by what it found.
    async fn package_read(
        &self,
        key: &PackageKey,
    ) -> Result<(Option<PackageState>, IdentityState), IndexError> {
        let known = self.is_known_small(key);
        let found = if known {
            self.store.package_with_identity(key)?
        } else {
            let owned = key.clone();
            self.blocking(move |s| Ok(s.package_with_identity(&owned)?))
                .await?
        };
        let small = matches!(&found.0, Some(state) if state.releases().count() <= INLINE_RELEASES);
        // Only a change is written: a hot package is not inserted again on
        // every read.
        match (known, small) {
            (false, true) => self.small.insert(key.clone(), ()),
            (true, false) => {
                self.small.remove(key);
            }
            _ => {}
        }
        Ok(found)
    }

    /// Whether the last read of `key` found at most [`INLINE_RELEASES`]
    /// releases (so the next one runs on the runtime's thread).
    fn is_known_small(&self, key: &PackageKey) -> bool {
        self.small.get(key).is_some()
    }
}

impl Index for StoreIndex {
    fn package<'a>(
        &'a self,
        key: &'a PackageKey,
    ) -> BoxFuture<'a, Result<Option<PackageState>, IndexError>> {
        Box::pin(async move { Ok(self.read_package(key).await?.1) })
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
        Box::pin(async move {
            let (_, state, identity) = self.read_package(key).await?;
            Ok((state, identity))
        })
    }

    /// The token is the store's write generation: unchanged while no write
    /// has been done since the view's read.
    fn package_view<'a>(
        &'a self,
        key: &'a PackageKey,
        known: Option<&'a ViewToken>,
    ) -> BoxFuture<'a, Result<PackageView, IndexError>> {
        Box::pin(async move {
            if known == Some(&ViewToken::generation(self.store.generation())) {
                return Ok(PackageView::Unchanged);
            }
            let (generation, state, identity) = self.read_package(key).await?;
            Ok(PackageView::Read {
                state,
                identity,
                token: Some(ViewToken::generation(generation)),
            })
        })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ipsr_testkit::{key, release};

    use super::*;

    /// A store in `dir` holding release 1.0.0 of one package of `key(seed)`,
    /// and an index over it: the store, the index, the release, its package.
    fn one_release(
        dir: &tempfile::TempDir,
        seed: u8,
    ) -> (Arc<Store>, StoreIndex, SignedRecord, PackageKey) {
        let store = Arc::new(Store::open(&dir.path().join("store.redb")).unwrap());
        let index = StoreIndex::new(store.clone());
        let first = release(&key(seed), "1.0.0").sign();
        let package = first.record().release_key().package_key();
        store.apply(vec![first.clone()]).unwrap();
        (store, index, first, package)
    }

    #[tokio::test]
    async fn only_a_package_last_seen_small_is_read_on_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let (store, index, _, package) = one_release(&dir, 7);
        let author = key(7);

        // A package never read, or not there, goes to the blocking pool,
        // and one that is not there is never remembered.
        let absent = release(&author, "1.0.0")
            .package("org.example.absent")
            .sign();
        let absent = absent.record().release_key().package_key();
        let (state, _) = index.package_with_identity(&absent).await.unwrap();
        assert!(state.is_none());
        assert!(!index.is_known_small(&absent));
        assert!(!index.is_known_small(&package));

        // Read once: small, so the next read runs inline, and finds the
        // same as the store.
        let (state, _) = index.package_with_identity(&package).await.unwrap();
        assert_eq!(state.unwrap().releases().count(), 1);
        assert!(index.is_known_small(&package));
        let inline = index.package(&package).await.unwrap().unwrap();
        let versions = |state: &PackageState| -> Vec<String> {
            state.releases().map(|r| r.key().to_string()).collect()
        };
        let stored = store.package(&package).unwrap().unwrap();
        assert_eq!(versions(&inline), versions(&stored));

        // Grown past the bound: the read that sees it forgets the package,
        // so the next read goes to the pool again.
        let more: Vec<_> = (1..=INLINE_RELEASES)
            .map(|n| release(&author, &format!("1.{n}.0")).sign())
            .collect();
        store.apply(more).unwrap();
        let grown = index.package(&package).await.unwrap().unwrap();
        assert_eq!(grown.releases().count(), INLINE_RELEASES + 1);
        assert!(!index.is_known_small(&package));
        let (state, _) = index.package_with_identity(&package).await.unwrap();
        assert_eq!(state.unwrap().releases().count(), INLINE_RELEASES + 1);
        assert!(!index.is_known_small(&package));
    }

    /// A kept package is answered until the next write is done, and only
    /// then: a new release, a new identity show on the next read; a
    /// duplicate (no write) leaves it kept.
    #[tokio::test]
    async fn a_kept_package_is_answered_only_until_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let (store, index, first, package) = one_release(&dir, 7);
        let author = key(7);
        let versions = |state: Option<PackageState>| -> usize { state.unwrap().releases().count() };

        let (state, identity) = index.package_with_identity(&package).await.unwrap();
        assert_eq!(versions(state), 1);
        assert_eq!(identity.identity().seq, 0);
        let kept = index.kept.get(&package).expect("kept after a read");
        assert!(kept.is_current(&store.generation()));
        // A duplicate writes nothing: still kept, still answered.
        store.apply(vec![first]).unwrap();
        assert!(kept.is_current(&store.generation()));
        assert_eq!(versions(index.package(&package).await.unwrap()), 1);

        store.apply(vec![release(&author, "1.1.0").sign()]).unwrap();
        assert!(!kept.is_current(&store.generation()));
        assert_eq!(versions(index.package(&package).await.unwrap()), 2);
        let (state, _) = index.package_with_identity(&package).await.unwrap();
        assert_eq!(versions(state), 2);

        let doc = ipsr_proto::Identity {
            name: "Seven".into(),
            created_at: 5,
            seq: 5,
            ..ipsr_proto::Identity::implicit(author.author_id())
        }
        .sign(&[&author])
        .unwrap();
        store
            .apply_signed(vec![ipsr_proto::Signed::Identity(doc)])
            .unwrap();
        let (state, identity) = index.package_with_identity(&package).await.unwrap();
        assert_eq!(versions(state), 2);
        assert_eq!(identity.identity().name, "Seven");
        // A package not there is not kept.
        let absent = release(&author, "1.0.0")
            .package("org.example.absent")
            .sign();
        let absent = absent.record().release_key().package_key();
        assert!(index.package(&absent).await.unwrap().is_none());
        assert!(index.kept.get(&absent).is_none());
    }

    /// Reads racing writes: what a reader sees never goes back (an answer
    /// kept from before a write is never served after it), and once the
    /// writes are done, every read finds all of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_racing_writes_never_go_back() {
        const RELEASES: usize = 200;
        let dir = tempfile::tempdir().unwrap();
        let (store, index, _, package) = one_release(&dir, 9);
        let writer = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                let author = key(9);
                for n in 1..RELEASES {
                    let record = release(&author, &format!("1.{n}.0")).sign();
                    store.apply(vec![record]).unwrap();
                }
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (index, package) = (index.clone(), package.clone());
                tokio::spawn(async move {
                    let mut seen = 0;
                    let mut reads = 0;
                    while seen < RELEASES {
                        let count = index
                            .package(&package)
                            .await
                            .unwrap()
                            .unwrap()
                            .releases()
                            .count();
                        assert!(count >= seen, "read {count} releases after {seen}");
                        seen = count;
                        reads += 1;
                        tokio::task::yield_now().await;
                    }
                    reads
                })
            })
            .collect();
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            writer.await.unwrap();
            for reader in readers {
                assert!(reader.await.unwrap() > 0);
            }
        })
        .await
        .expect("the writes and reads end within 60 s");
        let (state, _) = index.package_with_identity(&package).await.unwrap();
        assert_eq!(state.unwrap().releases().count(), RELEASES);
    }
}
