//! Which unpinned blocks to evict when a write would pass the
//! blockstore's limit, sans-IO: the blocks by when they were last written
//! or read, the blocks downloads under way hold, and the choice of the
//! least recently used ones that no pin keeps (`docs/content.md`, "Caps,
//! quotas and eviction").
//!
//! ```text
//!  oldest ──────────────────────────────────────────────► newest
//!   [a 1M] [b 2M, pinned] [c 1M, held] [d 1M] [e 2M] ...
//!   victims(need 2M): a, d          (b is kept, c is held)
//! ```

use std::collections::{BTreeMap, HashMap};

/// A stored block as eviction sees it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    len: u64,
    tick: u64,
}

/// The blocks of a store in order of last use, and the blocks held by
/// downloads under way (never evicted). Blocks are named by their file
/// name. About 200 bytes of memory per block (two copies of the
/// 55-character name, map entries).
#[derive(Debug, Default)]
pub(crate) struct Recency {
    slots: HashMap<Box<str>, Slot>,
    order: BTreeMap<u64, Box<str>>,
    next: u64,
    held: HashMap<Box<str>, u32>,
}

impl Recency {
    /// Records a stored block as used now (also when it was known).
    pub(crate) fn insert(&mut self, name: &str, len: u64) {
        let tick = self.tick();
        if let Some(old) = self.slots.insert(name.into(), Slot { len, tick }) {
            self.order.remove(&old.tick);
        }
        self.order.insert(tick, name.into());
    }

    /// Marks a known block as used now.
    pub(crate) fn touch(&mut self, name: &str) {
        let tick = self.tick();
        if let Some(slot) = self.slots.get_mut(name) {
            self.order.remove(&slot.tick);
            slot.tick = tick;
            self.order.insert(tick, name.into());
        }
    }

    /// Forgets a removed block; returns its length if it was known.
    pub(crate) fn remove(&mut self, name: &str) -> Option<u64> {
        let slot = self.slots.remove(name)?;
        self.order.remove(&slot.tick);
        Some(slot.len)
    }

    /// The length of a known block.
    pub(crate) fn len_of(&self, name: &str) -> Option<u64> {
        self.slots.get(name).map(|s| s.len)
    }

    /// Holds `name` against eviction (once more), also before it is
    /// stored.
    pub(crate) fn hold(&mut self, name: &str) {
        *self.held.entry(name.into()).or_default() += 1;
    }

    /// Lets go of one [`hold`](Self::hold) of `name`.
    pub(crate) fn unhold(&mut self, name: &str) {
        if let Some(n) = self.held.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(name);
            }
        }
    }

    /// Whether a download holds `name`.
    pub(crate) fn is_held(&self, name: &str) -> bool {
        self.held.contains_key(name)
    }

    /// The least recently used blocks, oldest first, that are neither held
    /// nor `kept` (reachable from a pin), until they add up to `need`
    /// bytes, or all there are. Returns them with their lengths and the
    /// bytes they free.
    pub(crate) fn victims(
        &self,
        need: u64,
        kept: impl Fn(&str) -> bool,
    ) -> (Vec<(Box<str>, u64)>, u64) {
        let mut out = Vec::new();
        let mut freed = 0u64;
        for name in self.order.values() {
            if freed >= need {
                break;
            }
            if self.held.contains_key(name) || kept(name) {
                continue;
            }
            let len = self.slots.get(name).map_or(0, |s| s.len);
            freed += len;
            out.push((name.clone(), len));
        }
        (out, freed)
    }

    fn tick(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn names(v: &[(Box<str>, u64)]) -> Vec<&str> {
        v.iter().map(|(n, _)| &**n).collect()
    }

    #[test]
    fn evicts_the_least_recently_used_first() {
        let mut r = Recency::default();
        for (name, len) in [("a", 10), ("b", 20), ("c", 30), ("d", 40)] {
            r.insert(name, len);
        }
        r.touch("a");
        let (v, freed) = r.victims(25, |_| false);
        assert_eq!((names(&v), freed), (vec!["b", "c"], 50));
        let (v, freed) = r.victims(0, |_| false);
        assert!(v.is_empty() && freed == 0);
        // Asking for more than there is: everything, oldest first.
        let (v, freed) = r.victims(1000, |_| false);
        assert_eq!((names(&v), freed), (vec!["b", "c", "d", "a"], 100));
    }

    #[test]
    fn pinned_and_held_blocks_are_never_chosen() {
        let mut r = Recency::default();
        for name in ["a", "b", "c", "d"] {
            r.insert(name, 10);
        }
        let pinned: HashSet<&str> = ["a"].into();
        r.hold("b");
        r.hold("b");
        r.hold("x"); // held before it is stored
        let (v, _) = r.victims(100, |n| pinned.contains(n));
        assert_eq!(names(&v), vec!["c", "d"]);
        r.unhold("b");
        assert!(r.is_held("b"), "held twice, let go once");
        r.unhold("b");
        r.insert("x", 10);
        let (v, _) = r.victims(100, |n| pinned.contains(n));
        assert_eq!(names(&v), vec!["b", "c", "d"]);
    }

    #[test]
    fn removal_and_reinsertion_keep_the_order_consistent() {
        let mut r = Recency::default();
        r.insert("a", 1);
        r.insert("b", 2);
        r.insert("a", 3);
        assert_eq!((r.slots.len(), r.len_of("a")), (2, Some(3)));
        assert_eq!(r.remove("b"), Some(2));
        assert_eq!(r.remove("b"), None);
        r.touch("b"); // unknown: nothing happens
        let (v, freed) = r.victims(100, |_| false);
        assert_eq!((names(&v), freed), (vec!["a"], 3));
        assert_eq!(r.order.len(), r.slots.len());
    }
}
