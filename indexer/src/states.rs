//! Package states read before, each kept with a token that names what it
//! was read from, and answered again while a cheap check finds the same
//! token: both backends read a package far more often than it changes.
//!
//! * Redis (`redis_index`): the token is the package's content hash
//!   (`pkg:` `hash`, `docs/redis.md` section 1), a function of its release
//!   rows and of the identity it is in force under; the rows name their
//!   records by id (the hash of their bytes), so two reads that find the
//!   same hash rebuild the same state. A read of a kept package asks Redis
//!   for the hash alone (`HGET pkg: hash`). Every read still asks Redis: a
//!   state changed by any writer, anywhere, is seen on the next read.
//! * The embedded store (`embedded`): the token is the store's write
//!   generation ([`ipsr_node::Store::generation`]) read before the read.
//!   Every write moves it once done, so a state is served only until the
//!   next write is done, and one read while a write finished never is.

use std::sync::Arc;

use ipsr_proto::{PackageKey, PackageState};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// The most memory (by [`estimate`]) a backend's kept states may take.
pub(crate) const CAPACITY_BYTES: u64 = 16 * 1024 * 1024;

/// A value read under `token`.
#[derive(Debug)]
pub(crate) struct Kept<T, V> {
    token: T,
    pub(crate) value: V,
    /// [`estimate`]'s figure, made once when kept.
    weight: u64,
}

impl<T: PartialEq, V> Kept<T, V> {
    /// Whether `token`, what the backend names now, is the one this value
    /// was read under.
    pub(crate) fn is_current(&self, token: &T) -> bool {
        self.token == *token
    }
}

/// An estimate of a kept state's memory from its `records` records of
/// `record_bytes` bytes: their bytes twice (the signed payload and the
/// fields decoded from it), and the allocations of each record and
/// release.
pub(crate) fn estimate(state: &PackageState, records: usize, record_bytes: usize) -> u64 {
    let releases = state.releases().count() as u64;
    2 * record_bytes as u64 + 512 * records as u64 + 256 * releases + 256
}

/// A kept value weighs its estimate.
#[derive(Debug, Clone, Copy)]
struct Size;

impl<T, V> Weighter<PackageKey, Arc<Kept<T, V>>> for Size {
    fn weight(&self, _: &PackageKey, kept: &Arc<Kept<T, V>>) -> u64 {
        kept.weight
    }
}

/// The kept values of one backend (and its clones), by package.
pub(crate) struct States<T, V>(Cache<PackageKey, Arc<Kept<T, V>>, Size>);

impl<T, V> std::fmt::Debug for States<T, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("States")
            .field("kept", &self.0.len())
            .field("weight", &self.0.weight())
            .finish()
    }
}

impl<T, V> States<T, V> {
    /// At most `capacity_bytes` of values, by their estimates.
    pub(crate) fn new(capacity_bytes: u64) -> Self {
        // quick_cache sizes its shards from the expected number of items;
        // a small package weighs some 10 KiB.
        let items = usize::try_from(capacity_bytes / 10_240).unwrap_or(usize::MAX);
        Self(Cache::with_weighter(items.max(16), capacity_bytes, Size))
    }

    /// The value kept for `pk`, if any, with its token.
    pub(crate) fn get(&self, pk: &PackageKey) -> Option<Arc<Kept<T, V>>> {
        self.0.get(pk)
    }

    /// Keeps `value`, read for `pk` under `token`, weighing `weight`
    /// ([`estimate`]).
    pub(crate) fn keep(&self, pk: PackageKey, token: T, value: V, weight: u64) {
        self.0.insert(
            pk,
            Arc::new(Kept {
                token,
                value,
                weight,
            }),
        );
    }

    /// The estimated memory of what is kept.
    #[cfg(test)]
    pub(crate) fn weight(&self) -> u64 {
        self.0.weight()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ipsr_proto::{AuthorKey, PackageKey, PackageState};

    use super::{States, estimate};

    /// However many packages are read, the kept states stay within the
    /// capacity, and the one read last is kept.
    #[test]
    fn kept_states_stay_within_their_capacity() {
        const CAPACITY: u64 = 1024 * 1024;
        let states = States::<Option<String>, PackageState>::new(CAPACITY);
        let author = AuthorKey::from_seed(&[7; 32]).author_id();
        let pk = |i: usize| PackageKey {
            author,
            package: format!("org.bound.p{i}").parse().unwrap(),
        };
        // Each (four records of 4 KiB in all, no release) weighs this.
        const WEIGHT: u64 = 2 * 4096 + 512 * 4 + 256;
        for i in 0..1000 {
            let state = PackageState::new(pk(i));
            let weight = estimate(&state, 4, 4096);
            states.keep(pk(i), Some("h".repeat(64)), state, weight);
            assert!(states.weight() <= CAPACITY, "{} after {i}", states.weight());
        }
        assert!(states.weight() > CAPACITY / 2, "{}", states.weight());
        assert!(states.get(&pk(999)).is_some());
        let kept = (0..1000).filter(|i| states.get(&pk(*i)).is_some()).count();
        assert!(
            kept <= usize::try_from(CAPACITY / WEIGHT).unwrap(),
            "{kept} kept"
        );
    }
}
