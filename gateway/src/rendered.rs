//! Package views kept as rendered bytes under the [`ViewToken`] the index
//! named their state by ([`Index::package_view`](ipsr_indexer::Index)).
//!
//! Unlike the micro-cache ([`crate::cache`]), nothing here is served
//! without asking the index: every request still reads the package's token
//! (on Redis, its `hash` and its author's identity ids), and a kept view is
//! served only while the token is the one it was rendered under. What it
//! saves is the rest: rebuilding the state and identity, and rendering
//! the JSON. So it works with the micro-cache off, where every answer must
//! be as fresh as the index.
//!
//! Bounded by bytes; only views of packages the index knows are kept.

use bytes::Bytes;
use ipsr_indexer::ViewToken;
use ipsr_proto::PackageKey;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// The most bytes of views (with their keys) kept; the least used go first.
pub(crate) const RENDERED_BYTES: u64 = 16 * 1024 * 1024;
/// Views expected, to size the table (a package view is about 3 KiB).
const ESTIMATED_VIEWS: usize = 4_096;
/// What an entry costs beside its body: the key's name and the token.
const ENTRY_OVERHEAD: u64 = 256;

/// A view and the token of what it was rendered from.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    pub(crate) token: ViewToken,
    pub(crate) body: Bytes,
}

/// An entry weighs its body and a fixed overhead.
#[derive(Debug, Clone, Copy)]
struct Size;

impl Weighter<PackageKey, Rendered> for Size {
    fn weight(&self, key: &PackageKey, view: &Rendered) -> u64 {
        (key.package.as_str().len() + view.body.len()) as u64 + ENTRY_OVERHEAD
    }
}

/// Rendered package views, by package.
#[derive(Debug)]
pub(crate) struct RenderedViews(Cache<PackageKey, Rendered, Size>);

impl RenderedViews {
    /// At most `bytes` of views.
    pub(crate) fn new(bytes: u64) -> Self {
        Self(Cache::with_weighter(ESTIMATED_VIEWS, bytes, Size))
    }

    /// The view kept for `key`, if any, with its token.
    pub(crate) fn get(&self, key: &PackageKey) -> Option<Rendered> {
        self.0.get(key)
    }

    /// Keeps `body`, rendered for `key` from the state `token` names.
    pub(crate) fn keep(&self, key: PackageKey, token: ViewToken, body: Bytes) {
        self.0.insert(key, Rendered { token, body });
    }

    /// The bytes kept now, by the bound's measure.
    pub(crate) fn bytes(&self) -> u64 {
        self.0.weight()
    }

    /// How many views are kept now.
    pub(crate) fn count(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use ipsr_indexer::{Index, PackageView, StoreIndex};
    use ipsr_proto::AuthorKey;

    use super::*;

    /// However many large views of however many packages are kept, they
    /// stay within the bound, and small ones are kept by the thousand.
    #[tokio::test]
    async fn views_stay_within_their_bytes() {
        const BOUND: u64 = 4 * 1024 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let store = ipsr_node::Store::open(&dir.path().join("store")).unwrap();
        let index = StoreIndex::new(Arc::new(store));
        let author = AuthorKey::from_seed(&[3; 32]).author_id();
        let key = |i: usize| PackageKey {
            author,
            package: format!("org.bound.p{i}").parse().unwrap(),
        };
        let PackageView::Read {
            token: Some(token), ..
        } = index.package_view(&key(0), None).await.unwrap()
        else {
            panic!("the embedded store names every read");
        };
        let views = RenderedViews::new(BOUND);
        let large = Bytes::from(vec![b'x'; 256 * 1024]);
        for i in 0..2_000 {
            views.keep(key(i), token.clone(), large.clone());
            assert!(views.bytes() <= BOUND, "{} bytes after {i}", views.bytes());
        }
        assert!(views.0.len() <= 16, "{} large views kept", views.0.len());
        assert!(views.get(&key(1_999)).is_some(), "the last one is kept");
        let small = RenderedViews::new(BOUND);
        for i in 0..1_000 {
            small.keep(key(i), token.clone(), Bytes::from(vec![b'x'; 3 * 1024]));
        }
        assert!(small.0.len() >= 900, "{} small views kept", small.0.len());
    }
}
