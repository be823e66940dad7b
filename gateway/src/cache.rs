//! A micro-cache of rendered JSON views: the hot read routes (a package, a
//! release, an author, a listing) are answered from bytes rendered at most
//! a TTL ago ([`VIEW_TTL`] by default; zero turns the cache off), and never
//! from before the node's log last changed, so a record this gateway has
//! stored shows at once and one indexed by another gateway's indexer into a
//! shared Redis shows within the TTL.

use std::time::{Duration, Instant};

use bytes::Bytes;
use quick_cache::sync::Cache;

/// How long a rendered view may be served, by default.
pub const VIEW_TTL: Duration = Duration::from_secs(1);
/// How many rendered views are kept (the least used go first).
const CAPACITY: usize = 10_000;

#[derive(Debug, Clone)]
struct Entry {
    at: Instant,
    head: u64,
    body: Bytes,
}

/// Rendered views by request path and query.
#[derive(Debug)]
pub(crate) struct ViewCache {
    entries: Cache<String, Entry>,
    ttl: Duration,
}

impl ViewCache {
    /// A cache whose views live `ttl` (zero: nothing is kept).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            entries: Cache::new(CAPACITY),
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
        let cache = ViewCache::new(VIEW_TTL);
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
        let off = ViewCache::new(Duration::ZERO);
        off.put("a".into(), 7, Bytes::from_static(b"{}"));
        assert_eq!(off.get("a", 7), None);
    }
}
