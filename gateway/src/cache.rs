//! A micro-cache of rendered JSON views: the hot read routes (a package, a
//! release, an author, a listing) are answered from bytes rendered at most
//! a TTL ago ([`VIEW_TTL`] by default; zero turns the cache off), and never
//! from before the node's log last changed, so a record this gateway has
//! stored shows at once and one indexed by another gateway's indexer into a
//! shared Redis shows within the TTL.
//!
//! The cache is bounded by bytes, not by views: views are kept under the
//! path as sent, so a client can make one entry per spelling of a path,
//! and one view (an author's, a package with many versions) can be large.

use std::time::{Duration, Instant};

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// How long a rendered view may be served, by default.
pub const VIEW_TTL: Duration = Duration::from_secs(1);
/// The most bytes of rendered views (with their keys) kept by default; the
/// least used go first.
pub const VIEW_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Views expected, to size the cache's table (a package view is about
/// 3 KiB).
const ESTIMATED_VIEWS: usize = 10_000;
/// What an entry costs beside its key's and body's bytes.
const ENTRY_OVERHEAD: u64 = 96;

/// An entry weighs its bytes.
#[derive(Debug, Clone, Copy)]
struct Size;

impl Weighter<String, Entry> for Size {
    fn weight(&self, key: &String, entry: &Entry) -> u64 {
        (key.len() + entry.body.len()) as u64 + ENTRY_OVERHEAD
    }
}

#[derive(Debug, Clone)]
struct Entry {
    at: Instant,
    head: u64,
    body: Bytes,
}

/// Rendered views by request path and query.
#[derive(Debug)]
pub(crate) struct ViewCache {
    entries: Cache<String, Entry, Size>,
    ttl: Duration,
}

impl ViewCache {
    /// A cache of at most `bytes` of views living `ttl` (zero: nothing is
    /// kept).
    pub(crate) fn new(ttl: Duration, bytes: u64) -> Self {
        Self {
            entries: Cache::with_weighter(ESTIMATED_VIEWS, bytes, Size),
            ttl,
        }
    }

    /// The view rendered for `key`, if it is fresh: younger than the TTL
    /// and rendered at log head `head`.
    pub(crate) fn get(&self, key: &str, head: u64) -> Option<Bytes> {
        self.entries
            .get(key)
            .filter(|e| e.head == head && e.at.elapsed() < self.ttl)
            .map(|e| e.body)
    }

    /// The view for `key` at log head `head`: the fresh one kept, or what
    /// `render` makes (then kept).
    pub(crate) async fn get_or_render<E>(
        &self,
        key: String,
        head: u64,
        render: impl Future<Output = Result<Bytes, E>>,
    ) -> Result<Bytes, E> {
        if let Some(body) = self.get(&key, head) {
            return Ok(body);
        }
        let body = render.await?;
        self.put(key, head, body.clone());
        Ok(body)
    }

    /// The bytes its views and keys weigh now, by the bound's measure.
    pub(crate) fn bytes(&self) -> u64 {
        self.entries.weight()
    }

    /// How many views it keeps now.
    pub(crate) fn count(&self) -> usize {
        self.entries.len()
    }

    /// Keeps `body`, rendered for `key` at log head `head`.
    pub(crate) fn put(&self, key: String, head: u64, body: Bytes) {
        if self.ttl.is_zero() {
            return;
        }
        self.entries.insert(
            key,
            Entry {
                at: Instant::now(),
                head,
                body,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_only_at_the_same_head_and_within_the_ttl() {
        let cache = ViewCache::new(VIEW_TTL, VIEW_CACHE_BYTES);
        cache.put("a".into(), 7, Bytes::from_static(b"{}"));
        assert_eq!(cache.get("a", 7).as_deref(), Some(&b"{}"[..]));
        assert_eq!(cache.get("a", 8), None, "the log moved on");
        assert_eq!(cache.get("b", 7), None);
        let old = Entry {
            at: Instant::now() - VIEW_TTL,
            head: 7,
            body: Bytes::new(),
        };
        cache.entries.insert("c".into(), old);
        assert_eq!(cache.get("c", 7), None, "too old");
        let off = ViewCache::new(Duration::ZERO, VIEW_CACHE_BYTES);
        off.put("a".into(), 7, Bytes::from_static(b"{}"));
        assert_eq!(off.get("a", 7), None);
    }

    #[test]
    fn many_spellings_of_large_views_stay_within_the_bytes_bound() {
        const BOUND: u64 = 4 * 1024 * 1024;
        let cache = ViewCache::new(VIEW_TTL, BOUND);
        // A view of a package with many versions, under 2,000 spellings of
        // its path (each percent-encoding is another key): 500 MiB if all
        // were kept.
        let view = Bytes::from(vec![b'x'; 256 * 1024]);
        let mut kept_last = 0;
        for i in 0..2_000 {
            let key = format!("package/%6{i}/com.example.app");
            cache.put(key.clone(), 7, view.clone());
            assert!(
                cache.entries.weight() <= BOUND,
                "{} bytes kept, over the bound",
                cache.entries.weight()
            );
            kept_last += usize::from(cache.get(&key, 7).is_some());
        }
        assert!(
            cache.entries.len() <= 16,
            "{} views kept",
            cache.entries.len()
        );
        assert!(kept_last > 1_000, "views are still kept: {kept_last}");
        // Small views are kept by the thousand all the same.
        let small = ViewCache::new(VIEW_TTL, BOUND);
        for i in 0..1_000 {
            small.put(format!("package/{i}"), 7, Bytes::from(vec![b'x'; 3 * 1024]));
        }
        assert!(
            small.entries.len() >= 900,
            "{} small views kept",
            small.entries.len()
        );
    }
}
