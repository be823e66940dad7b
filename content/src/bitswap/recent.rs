//! CIDs this node wanted recently, so that a correct block that arrives
//! after its want ended is taken as a harmless duplicate, not as an
//! unsolicited block. Pure bookkeeping: the time is an argument.
//!
//! Why blocks arrive late: a want ends when its block arrives, when we
//! cancel it, or when the peer says DontHave or goes away; a server may
//! already have the block on the wire by then. Some servers (older Helia
//! releases; kubo had the same race) also send a block a second time when
//! a new wantlist comes in while they are still sending it.
//!
//! The set is node-wide, not per peer: a correct block for a CID that
//! anyone was asked for lately costs its sender nothing. It is bounded two
//! ways: an entry lasts `window` after the want ended, and only the last
//! `cap` ended wants are kept (the oldest goes first).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use cid::Cid;

/// Recently ended wants, bounded by age and count.
#[derive(Debug)]
pub(crate) struct RecentWants {
    window: Duration,
    cap: usize,
    /// The last time each CID's want ended.
    ended: HashMap<Cid, Instant>,
    /// Every end in time order; an entry is stale when `ended` holds a later
    /// time for its CID. At most `cap` entries.
    order: VecDeque<(Instant, Cid)>,
}

impl RecentWants {
    /// Remembers ended wants for `window`, at most `cap` of them.
    pub(crate) fn new(window: Duration, cap: usize) -> Self {
        Self {
            window,
            cap,
            ended: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Notes that a want for `cid` ended at `now`.
    pub(crate) fn ended(&mut self, cid: Cid, now: Instant) {
        if self.cap == 0 {
            return;
        }
        self.expire(now);
        while self.order.len() >= self.cap {
            self.pop_oldest();
        }
        self.ended.insert(cid, now);
        self.order.push_back((now, cid));
    }

    /// Whether a want for `cid` ended within the window before `now`.
    pub(crate) fn contains(&self, cid: &Cid, now: Instant) -> bool {
        self.ended
            .get(cid)
            .is_some_and(|&at| now.saturating_duration_since(at) <= self.window)
    }

    /// Forgets ends older than the window.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(&(at, _)) = self.order.front() {
            if now.saturating_duration_since(at) <= self.window {
                break;
            }
            self.pop_oldest();
        }
    }

    /// CIDs remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ended.len()
    }

    fn pop_oldest(&mut self) {
        if let Some((at, cid)) = self.order.pop_front()
            && self.ended.get(&cid) == Some(&at)
        {
            self.ended.remove(&cid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Block, RAW};

    fn cid(n: u32) -> Cid {
        *Block::hash(cid::Version::V1, RAW, n.to_le_bytes().to_vec())
            .unwrap()
            .cid()
    }

    #[test]
    fn an_ended_want_is_recent_for_the_window() {
        let t0 = Instant::now();
        let mut recent = RecentWants::new(Duration::from_secs(60), 100);
        assert!(!recent.contains(&cid(1), t0));
        recent.ended(cid(1), t0);
        assert!(recent.contains(&cid(1), t0));
        assert!(recent.contains(&cid(1), t0 + Duration::from_secs(60)));
        assert!(!recent.contains(&cid(1), t0 + Duration::from_secs(61)));
        assert!(!recent.contains(&cid(2), t0));
        recent.expire(t0 + Duration::from_secs(61));
        assert_eq!(recent.len(), 0);
    }

    #[test]
    fn a_later_end_extends_the_window() {
        let t0 = Instant::now();
        let mut recent = RecentWants::new(Duration::from_secs(60), 100);
        recent.ended(cid(1), t0);
        recent.ended(cid(1), t0 + Duration::from_secs(50));
        // The first end's entry expires, the second keeps the CID.
        recent.expire(t0 + Duration::from_secs(100));
        assert!(recent.contains(&cid(1), t0 + Duration::from_secs(100)));
        assert!(!recent.contains(&cid(1), t0 + Duration::from_secs(111)));
    }

    #[test]
    fn the_count_is_capped_oldest_first() {
        let t0 = Instant::now();
        let mut recent = RecentWants::new(Duration::from_secs(60), 3);
        for n in 0..10 {
            recent.ended(cid(n), t0 + Duration::from_millis(u64::from(n)));
            assert!(recent.order.len() <= 3);
            assert!(recent.len() <= 3);
        }
        let now = t0 + Duration::from_millis(10);
        assert!((0..7).all(|n| !recent.contains(&cid(n), now)));
        assert!((7..10).all(|n| recent.contains(&cid(n), now)));
    }

    #[test]
    fn a_zero_cap_remembers_nothing() {
        let t0 = Instant::now();
        let mut recent = RecentWants::new(Duration::from_secs(60), 0);
        recent.ended(cid(1), t0);
        assert!(!recent.contains(&cid(1), t0));
    }
}
