//! Package states read before, by package, each under the content hash its
//! keys had (`pkg:` `hash`, `docs/redis.md` section 1).
//!
//! The hash is a function of the release rows and the identity the state
//! is in force under, and the rows name their records by id (the hash of
//! their bytes), so two reads that find the same hash rebuild the same
//! state. A read of a package kept here asks Redis for its hash alone
//! (`HGET pkg: hash`) and, while it is the one kept, answers with the kept
//! state instead of reading and rebuilding every row and record again.
//! Every read still asks Redis: a state changed by any writer, anywhere,
//! is seen on the next read.

use std::sync::Arc;

use ipsr_proto::{PackageKey, PackageState};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// The most memory (by [`Size`]'s estimate) the kept states may take.
pub(super) const CAPACITY_BYTES: u64 = 16 * 1024 * 1024;

/// A state and the hash of the keys it was rebuilt from.
#[derive(Debug)]
pub(super) struct Kept {
    hash: String,
    pub(super) state: PackageState,
    /// [`Size`]'s estimate, made once from the bytes read.
    weight: u64,
}

impl Kept {
    /// Whether `hash`, what Redis holds now (`None`: no package), is the
    /// one this state was read under.
    pub(super) fn is_current(&self, hash: Option<&str>) -> bool {
        hash == Some(self.hash.as_str())
    }
}

/// An estimate of a kept state's memory: its records' bytes, twice (the
/// signed payload and the fields decoded from it), and the allocations of
/// each record and release.
#[derive(Debug, Clone, Copy)]
struct Size;

impl Weighter<PackageKey, Arc<Kept>> for Size {
    fn weight(&self, _: &PackageKey, kept: &Arc<Kept>) -> u64 {
        kept.weight
    }
}

/// The kept states of one keyspace (one [`RedisIndex`](super::RedisIndex)
/// and its clones).
pub(super) struct States(Cache<PackageKey, Arc<Kept>, Size>);

impl States {
    /// At most `capacity_bytes` of states, by [`Size`]'s estimate.
    pub(super) fn new(capacity_bytes: u64) -> Self {
        // quick_cache sizes its shards from the expected number of items;
        // a small package weighs some 10 KiB.
        let items = usize::try_from(capacity_bytes / 10_240).unwrap_or(usize::MAX);
        Self(Cache::with_weighter(items.max(16), capacity_bytes, Size))
    }

    /// The state kept for `pk`, if any, with its hash.
    pub(super) fn get(&self, pk: &PackageKey) -> Option<Arc<Kept>> {
        self.0.get(pk)
    }

    /// Keeps `state`, rebuilt from keys whose hash was `hash` and whose
    /// records took `record_bytes` bytes in `records` records.
    pub(super) fn keep(
        &self,
        hash: String,
        state: &PackageState,
        records: usize,
        record_bytes: usize,
    ) {
        let releases = state.releases().count() as u64;
        let weight = 2 * record_bytes as u64 + 512 * records as u64 + 256 * releases + 256;
        let key = state.key().clone();
        self.0.insert(
            key,
            Arc::new(Kept {
                hash,
                state: state.clone(),
                weight,
            }),
        );
    }

    /// The estimated memory of what is kept.
    #[cfg(test)]
    pub(super) fn weight(&self) -> u64 {
        self.0.weight()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ipsr_proto::{AuthorKey, PackageKey, PackageState};

    use super::States;

    /// However many packages are read, the kept states stay within the
    /// capacity, and the one read last is kept.
    #[test]
    fn kept_states_stay_within_their_capacity() {
        const CAPACITY: u64 = 1024 * 1024;
        let states = States::new(CAPACITY);
        let author = AuthorKey::from_seed(&[7; 32]).author_id();
        let pk = |i: usize| PackageKey {
            author,
            package: format!("org.bound.p{i}").parse().unwrap(),
        };
        // Each (four records of 4 KiB in all, no release) weighs this.
        const WEIGHT: u64 = 2 * 4096 + 512 * 4 + 256;
        for i in 0..1000 {
            states.keep("h".repeat(64), &PackageState::new(pk(i)), 4, 4096);
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
