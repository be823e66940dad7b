//! Paced walks (`docs/node.md`, "Republish and re-provide"), pure: the
//! DHT republish walk over the releases and the re-provide walk over the
//! pins. A [`Walk`] reads one batch every tick, one read at a time, in key
//! order, and starts over at the end. Its batch follows the size of the set
//! ([`batch`]) so that a full pass takes at most a quarter of the TTL of
//! the records it renews ([`pass`]): at any size, every record is renewed
//! three times before it would expire. A pass that ends sooner (a small
//! set) is not followed by the next one before a pass's length has gone by
//! since it began: a node renews each record once a pass, not as often as
//! it can (100 nodes holding 200 releases re-put them every 3 minutes each,
//! and that DHT traffic alone filled two cores).
//!
//! ```text
//!   tick ──▶ start: (after, limit) ──▶ read (off the loop) ──▶ read: Page
//!                ▲                                               │
//!                └────── next, total (the set's size) ◀──────────┘
//! ```

use std::time::{Duration, Instant};

/// Full passes per TTL: a pass takes at most `ttl / PASSES_PER_TTL`.
pub(crate) const PASSES_PER_TTL: u32 = 4;

/// The longest a full pass may take for records that live `ttl`.
pub(crate) fn pass(ttl: Duration) -> Duration {
    ttl / PASSES_PER_TTL
}

/// Items to read per tick so that `total` items take at most `pass` at one
/// batch per `tick`: the pass has `pass / tick` ticks, one of which is kept
/// for the first read of a walk (which does not know the total yet and
/// reads `min`). At least `min`, and at least 1.
pub(crate) fn batch(total: u64, tick: Duration, pass: Duration, min: usize) -> usize {
    let ticks = (pass.as_nanos() / tick.as_nanos().max(1))
        .saturating_sub(1)
        .max(1);
    let per_tick = u128::from(total).div_ceil(ticks);
    usize::try_from(per_tick)
        .unwrap_or(usize::MAX)
        .max(min)
        .max(1)
}

/// A batch a walk read: its items, where the next batch starts (`None`:
/// the end was reached, the walk starts over), and the size of the whole
/// set, which paces the batches after it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page<C, T> {
    /// What to put or announce.
    pub(crate) items: Vec<T>,
    /// The last key read, when the batch was full.
    pub(crate) next: Option<C>,
    /// How many keys the set holds.
    pub(crate) total: u64,
}

/// A walk over a set of keys `C`, a batch per tick.
#[derive(Debug)]
pub(crate) struct Walk<C> {
    tick: Duration,
    pass: Duration,
    min: usize,
    /// Where the next batch starts (`None`: at the first key).
    cursor: Option<C>,
    /// When the next batch is due.
    next: Instant,
    /// Whether a read is under way (its outcome not yet back).
    reading: bool,
    /// The set's size at the last read (0 before the first).
    total: u64,
    /// When the current pass began.
    began: Instant,
}

impl<C: Clone> Walk<C> {
    /// A walk that reads a batch every `tick`, finishes a pass within
    /// `pass`, reads at least `min` keys a batch, and is due at `now`.
    pub(crate) fn new(tick: Duration, pass: Duration, min: usize, now: Instant) -> Self {
        Self {
            tick,
            pass,
            min,
            cursor: None,
            next: now,
            reading: false,
            total: 0,
            began: now,
        }
    }

    /// When the next batch is due; `None` while a read is under way (its
    /// outcome re-arms the walk).
    pub(crate) fn due(&self) -> Option<Instant> {
        (!self.reading).then_some(self.next)
    }

    /// The read to make at `now`, if one is due: after which key, and how
    /// many keys.
    pub(crate) fn start(&mut self, now: Instant) -> Option<(Option<C>, usize)> {
        if self.reading || now < self.next {
            return None;
        }
        self.next = now + self.tick;
        self.reading = true;
        if self.cursor.is_none() {
            self.began = now;
        }
        Some((self.cursor.clone(), self.limit()))
    }

    /// How many keys the next batch reads.
    pub(crate) fn limit(&self) -> usize {
        batch(self.total, self.tick, self.pass, self.min)
    }

    /// A read finished at `now`: the next batch starts after `next`, and
    /// the set holds `total` keys. When this read ended a pass, returns how
    /// long the pass took; the next pass waits until a pass's length after
    /// this one began.
    pub(crate) fn read(&mut self, next: Option<C>, total: u64, now: Instant) -> Option<Duration> {
        self.reading = false;
        self.total = total;
        let ended = next.is_none();
        self.cursor = next;
        if ended {
            self.next = self.next.max(self.began + self.pass);
        }
        ended.then(|| now.saturating_duration_since(self.began))
    }

    /// A read failed: the same batch is read again when next due.
    pub(crate) fn failed(&mut self) {
        self.reading = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);
    const TTL: Duration = Duration::from_secs(48 * 3600);

    /// Walks a set of `total` keys (the keys are their positions) from
    /// `t0`, each read taking `latency`, until the pass ends; returns how
    /// long it took, the largest batch and how many keys were read.
    fn full_pass(
        total: u64,
        tick: Duration,
        min: usize,
        latency: Duration,
    ) -> (Duration, usize, u64) {
        let t0 = Instant::now();
        let mut walk: Walk<u64> = Walk::new(tick, pass(TTL), min, t0);
        // A first pass learns the total; the second is the one measured.
        let mut now = t0;
        let mut passes = Vec::new();
        let (mut largest, mut read) = (0, 0);
        while passes.len() < 2 {
            let Some((after, limit)) = walk.start(now) else {
                now = walk.due().expect("no read is under way");
                continue;
            };
            let from = after.map_or(0, |k| k + 1);
            let to = (from + limit as u64).min(total);
            if passes.len() == 1 {
                largest = largest.max(limit);
                read += to - from;
            }
            let next = (to - from == limit as u64).then_some(to - 1);
            if let Some(took) = walk.read(next, total, now + latency) {
                passes.push(took);
            }
        }
        (passes[1], largest, read)
    }

    #[test]
    fn a_pass_over_a_million_keys_ends_within_a_quarter_of_the_ttl() {
        let (took, largest, read) = full_pass(1_000_000, MINUTE, 64, Duration::from_secs(5));
        assert_eq!(read, 1_000_000, "every key once");
        assert!(took <= pass(TTL), "{took:?}");
        assert!(
            took >= pass(TTL) - MINUTE * 2,
            "no faster than needed: {took:?}"
        );
        // 12 h of minutes, less one: 719 batches of 1 391.
        assert_eq!(largest, 1_391);
    }

    #[test]
    fn a_pass_that_ends_early_waits_for_the_next_pass_length() {
        let t0 = Instant::now();
        let mut walk: Walk<u64> = Walk::new(MINUTE, pass(TTL), 64, t0);
        // 100 keys: two batches, a minute apart.
        let (after, limit) = walk.start(t0).unwrap();
        assert_eq!((after, limit), (None, 64));
        assert_eq!(walk.read(Some(63), 100, t0), None);
        let (after, _) = walk.start(t0 + MINUTE).unwrap();
        assert_eq!(after, Some(63));
        assert_eq!(walk.read(None, 100, t0 + MINUTE), Some(MINUTE));
        // The next pass starts a pass's length (12 h) after this one began,
        // not a tick later.
        assert_eq!(walk.due(), Some(t0 + pass(TTL)));
        assert_eq!(walk.start(t0 + MINUTE * 2), None);
        assert_eq!(walk.start(t0 + pass(TTL) - MINUTE), None);
        assert_eq!(walk.start(t0 + pass(TTL)), Some((None, 64)));
        // An empty set at start: nothing to renew until a pass later.
        let mut empty: Walk<u64> = Walk::new(MINUTE, pass(TTL), 64, t0);
        empty.start(t0).unwrap();
        empty.read(None, 0, t0);
        assert_eq!(empty.due(), Some(t0 + pass(TTL)));
    }

    #[test]
    fn small_sets_go_at_the_minimum_batch_and_big_ones_keep_pace() {
        let (took, largest, _) = full_pass(100, MINUTE, 64, Duration::ZERO);
        assert_eq!((took, largest), (MINUTE, 64), "two batches of 64");
        // At a fixed 64 a minute, a pass over more than 92 160 keys took
        // over a day; now every size stays within a quarter of the TTL.
        for total in [10_000, 100_000, 250_000, 10_000_000] {
            let (took, _, read) = full_pass(total, MINUTE, 64, Duration::from_secs(1));
            assert_eq!(read, total);
            assert!(took <= pass(TTL), "{total}: {took:?}");
        }
    }

    #[test]
    fn the_batch_is_arithmetic_on_the_total_the_tick_and_the_pass() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        assert_eq!(batch(0, MINUTE, hours(12), 64), 64);
        assert_eq!(batch(719 * 64, MINUTE, hours(12), 64), 64);
        assert_eq!(batch(719 * 64 + 1, MINUTE, hours(12), 64), 65);
        assert_eq!(batch(1_000_000, MINUTE, hours(12), 1), 1_391);
        // A tick as long as the pass (or longer, or zero) reads it all.
        assert_eq!(batch(5_000, hours(12), hours(12), 1), 5_000);
        assert_eq!(batch(5_000, hours(24), hours(12), 1), 5_000);
        assert_eq!(batch(5_000, Duration::ZERO, hours(12), 1), 1);
        assert_eq!(batch(u64::MAX, MINUTE, MINUTE, 0), usize::MAX);
    }

    #[test]
    fn one_read_at_a_time_and_a_failed_one_is_read_again() {
        let t0 = Instant::now();
        let mut walk: Walk<u64> = Walk::new(MINUTE, pass(TTL), 10, t0);
        assert_eq!(walk.due(), Some(t0));
        assert_eq!(walk.start(t0), Some((None, 10)));
        assert_eq!(walk.due(), None, "the read re-arms it");
        assert_eq!(walk.start(t0 + MINUTE * 5), None, "one at a time");
        assert_eq!(walk.read(Some(9), 1_000, t0 + MINUTE), None);
        assert_eq!(walk.due(), Some(t0 + MINUTE));
        assert_eq!(walk.start(t0 + MINUTE - Duration::from_millis(1)), None);
        assert_eq!(walk.start(t0 + MINUTE), Some((Some(9), 10)));
        walk.failed();
        assert_eq!(walk.start(t0 + MINUTE * 2), Some((Some(9), 10)));
        // The end: the pass took two minutes, and the next starts over a
        // pass's length after this one began.
        assert_eq!(walk.read(None, 1_000, t0 + MINUTE * 2), Some(MINUTE * 2));
        assert_eq!(walk.start(t0 + MINUTE * 3), None);
        assert_eq!(
            walk.start(t0 + pass(TTL)).map(|(after, _)| after),
            Some(None)
        );
    }
}
