//! Rate limits for inbound work, token buckets: [`Limiter`] per peer
//! (gossip records, DHT puts, sync requests) and [`AuthorLimiter`] per
//! author (records one author may have accepted and passed on). Sans-IO:
//! the caller passes the current time.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use ipsr_proto::AuthorId;
use libp2p::PeerId;

/// One token bucket: `tokens` as of `last`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// How fast buckets fill and how much they hold.
#[derive(Debug, Clone, Copy)]
struct Rate {
    per_sec: f64,
    burst: f64,
}

impl Rate {
    fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
        }
    }

    fn full(&self, now: Instant) -> Bucket {
        Bucket {
            tokens: self.burst,
            last: now,
        }
    }

    /// Brings `bucket` up to `now`.
    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.last = now;
    }

    /// When `bucket` (as of its `last`) is full again.
    fn full_at(&self, bucket: &Bucket) -> Instant {
        let missing = (self.burst - bucket.tokens).max(0.0);
        let secs = if self.per_sec > 0.0 {
            missing / self.per_sec
        } else if missing > 0.0 {
            // Never refills: keep it as long as anything.
            f64::from(u32::MAX)
        } else {
            0.0
        };
        bucket.last + Duration::from_secs_f64(secs)
    }
}

/// Token buckets by peer. Forget a peer when it disconnects, so the map is
/// bounded by the connection limit.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: Rate,
    buckets: HashMap<PeerId, Bucket>,
}

impl Limiter {
    /// `rate` tokens per second, at most `burst` saved up.
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: Rate::new(rate, burst),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `peer`; false when it has none left.
    pub(crate) fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        let rate = self.rate;
        let bucket = self.buckets.entry(peer).or_insert_with(|| rate.full(now));
        rate.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops the state of a disconnected peer.
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.buckets.remove(peer);
    }
}

/// Token buckets by author, in a bounded table (`docs/node.md`, "Record
/// gossip").
///
/// A record is let through when it can take a token from its author's
/// bucket ([`try_take`](Self::try_take)), and the token is given back when
/// the record turned out not to be news ([`give_back`](Self::give_back)):
/// replaying an author's old records, which anyone can, does not use up
/// the author's budget, and records checked at the same time cannot take
/// more than the bucket holds.
///
/// Only authors whose bucket is not full are kept (a full bucket is the
/// same as none). When the table is full, the author whose bucket will be
/// full soonest is forgotten to make room.
#[derive(Debug)]
pub(crate) struct AuthorLimiter {
    /// `None`: no limit.
    rate: Option<Rate>,
    cap: usize,
    buckets: HashMap<AuthorId, Bucket>,
    /// When each kept bucket is full again, soonest first.
    full_at: BTreeSet<(Instant, AuthorId)>,
}

impl AuthorLimiter {
    /// `rate` records per author per second (0: no limit), at most `burst`
    /// saved up, for at most `cap` authors at once.
    pub(crate) fn new(rate: u32, burst: u32, cap: usize) -> Self {
        Self {
            rate: (rate > 0).then(|| Rate::new(rate, burst)),
            cap: cap.max(1),
            buckets: HashMap::new(),
            full_at: BTreeSet::new(),
        }
    }

    /// Takes a token for a record of `author`: whether it may be let
    /// through now.
    pub(crate) fn try_take(&mut self, author: AuthorId, now: Instant) -> bool {
        self.change(author, now, -1.0)
    }

    /// Gives back the token a record of `author` took: it was not news
    /// (or not stored).
    pub(crate) fn give_back(&mut self, author: AuthorId, now: Instant) {
        self.change(author, now, 1.0);
    }

    /// Adds `by` tokens to `author`'s bucket if that leaves it at zero or
    /// more (and at most the burst): whether it did.
    fn change(&mut self, author: AuthorId, now: Instant, by: f64) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        self.forget_full(now);
        let mut bucket = match self.buckets.get(&author) {
            Some(bucket) => *bucket,
            // A full bucket: nothing to give back to.
            None if by > 0.0 => return true,
            None => rate.full(now),
        };
        rate.refill(&mut bucket, now);
        if bucket.tokens + by < 0.0 {
            return false;
        }
        let old = self.buckets.get(&author).map(|b| rate.full_at(b));
        if let Some(old) = old {
            self.full_at.remove(&(old, author));
        } else if self.buckets.len() >= self.cap
            && let Some((_, soonest)) = self.full_at.pop_first()
        {
            self.buckets.remove(&soonest);
        }
        bucket.tokens = (bucket.tokens + by).min(rate.burst);
        if bucket.tokens >= rate.burst {
            // Full: the same as no bucket.
            self.buckets.remove(&author);
        } else {
            self.full_at.insert((rate.full_at(&bucket), author));
            self.buckets.insert(author, bucket);
        }
        true
    }

    /// Authors kept now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Drops the buckets that are full by `now`.
    fn forget_full(&mut self, now: Instant) {
        while let Some(&(at, author)) = self.full_at.first()
            && at <= now
        {
            self.full_at.pop_first();
            self.buckets.remove(&author);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ipsr_testkit::key;

    use super::*;

    #[test]
    fn bursts_then_refills_per_peer() {
        let mut l = Limiter::new(10, 5);
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        assert_eq!((0..8).filter(|_| l.allow(a, t0)).count(), 5);
        assert!(l.allow(b, t0), "peers have their own buckets");
        assert!(!l.allow(a, t0 + Duration::from_millis(50)));
        assert!(l.allow(a, t0 + Duration::from_millis(150)));
        // Refill never exceeds the burst.
        let later = t0 + Duration::from_secs(100);
        assert_eq!((0..8).filter(|_| l.allow(a, later)).count(), 5);
        l.forget(&a);
        assert!(!l.buckets.contains_key(&a));
    }

    /// Offers `n` records of `author` at `now`, all news; returns how many
    /// got through.
    fn offer(l: &mut AuthorLimiter, author: AuthorId, n: usize, now: Instant) -> usize {
        (0..n).filter(|_| l.try_take(author, now)).count()
    }

    #[test]
    fn an_author_gets_its_burst_then_its_rate() {
        let mut l = AuthorLimiter::new(4, 10, 100);
        let (a, b) = (key(1).author_id(), key(2).author_id());
        let t0 = Instant::now();
        assert_eq!(offer(&mut l, a, 50, t0), 10);
        assert_eq!(offer(&mut l, b, 3, t0), 3, "authors have their own buckets");
        // Four a second after that: over 10 s, 40 more of 400 offered.
        let through: usize = (1..=40)
            .map(|i| offer(&mut l, a, 10, t0 + Duration::from_millis(250 * i)))
            .sum();
        assert_eq!(through, 40);
        // A bucket left alone refills to its burst, never past it.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(offer(&mut l, a, 50, later), 10);
    }

    #[test]
    fn tokens_given_back_cost_nothing_and_never_pass_the_burst() {
        let mut l = AuthorLimiter::new(1, 3, 100);
        let a = key(1).author_id();
        let t0 = Instant::now();
        // Records that were not news (duplicates, replays) cost nothing.
        for _ in 0..100 {
            assert!(l.try_take(a, t0));
            l.give_back(a, t0);
        }
        assert_eq!(l.len(), 0, "back to full, so forgotten");
        // Giving back more than was taken leaves it full.
        l.give_back(a, t0);
        assert_eq!(offer(&mut l, a, 10, t0), 3);
        // Ten at once (checked concurrently): three get through.
        l.give_back(a, t0);
        assert_eq!(offer(&mut l, a, 10, t0), 1);
        assert!(!l.try_take(a, t0 + Duration::from_millis(900)));
        assert!(l.try_take(a, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn the_table_is_bounded_and_full_buckets_are_forgotten() {
        let mut l = AuthorLimiter::new(1, 2, 3);
        let t0 = Instant::now();
        let authors: Vec<AuthorId> = (1..=5).map(|s| key(s).author_id()).collect();
        // Author 0 empties its bucket (full again in 2 s); 1 and 2 take one
        // token each a little later (full again in 1 s from then).
        offer(&mut l, authors[0], 2, t0);
        offer(&mut l, authors[1], 1, t0 + Duration::from_millis(10));
        offer(&mut l, authors[2], 1, t0 + Duration::from_millis(20));
        assert_eq!(l.len(), 3);
        // A fourth author: the table is full, and the bucket full soonest
        // (author 1's) goes; the emptied one stays closed.
        offer(&mut l, authors[3], 1, t0 + Duration::from_millis(30));
        assert_eq!(l.len(), 3);
        assert!(!l.try_take(authors[0], t0 + Duration::from_millis(30)));
        assert!(!l.buckets.contains_key(&authors[1]));
        // Once full again, buckets are dropped.
        l.give_back(authors[4], t0 + Duration::from_secs(5));
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn rate_zero_is_no_limit() {
        let mut l = AuthorLimiter::new(0, 1, 1);
        let a = key(1).author_id();
        assert_eq!(offer(&mut l, a, 1000, Instant::now()), 1000);
        assert_eq!(l.len(), 0);
    }
}
