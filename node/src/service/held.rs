//! Records from the future, held until this node's clock lets them in.
//!
//! A record whose `created_at` is more than an hour past this node's clock
//! is refused by verification (`from_future`), yet it is usually fine: the
//! author's clock or, as likely, this node's own is off. Such a record
//! (signature and every field already checked: `from_future` is the last
//! check) waits here, keyed by when it becomes acceptable by this node's
//! clock, and is checked again then, so the node ends up with it without
//! anyone gossiping it again.
//!
//! ```text
//!  check ─ from_future ─▶ hold(due) ─▶ [ due-ordered, ≤ MAX_HELD records,
//!                                        ≤ MAX_HELD_BYTES bytes ]
//!  tick(now) ◀── take_due(now): ≤ RECHECK_BATCH at a time ──┘ ─▶ check again
//! ```
//!
//! Bounded in count and bytes; a record due more than [`MAX_AHEAD`] from
//! now is not held at all. When full, the record due last goes first (a
//! new one that would be due last is not held), so what is soon acceptable
//! is kept. Pure bookkeeping: the caller gives the time.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ipsr_proto::RecordId;

/// Most records held.
pub(crate) const MAX_HELD: usize = 1024;
/// Most bytes of records held.
pub(crate) const MAX_HELD_BYTES: usize = 4 * 1024 * 1024;
/// How far ahead a record may be due and still be held.
pub(crate) const MAX_AHEAD: Duration = Duration::from_secs(24 * 60 * 60);
/// A held record is checked again this long after it becomes acceptable
/// by this node's clock (so a check never comes a hair too early, and a
/// clock that keeps jumping back costs a check a second at most).
pub(crate) const SLACK: Duration = Duration::from_secs(1);
/// Most held records handed back for checking per call of
/// [`Held::take_due`] (the rest are due at once, for the next call).
pub(crate) const RECHECK_BATCH: usize = 64;

/// What became of a record offered to [`Held::hold`] (the label of the
/// `records_future` metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Held until it is due; `evicted` records due later made room for it.
    Held {
        /// Records dropped to make room.
        evicted: usize,
    },
    /// The same record is held already.
    Duplicate,
    /// Due more than [`MAX_AHEAD`] from now: dropped.
    TooFar,
    /// Full of records due sooner: dropped.
    Full,
}

impl Hold {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Held { .. } => "held",
            Self::Duplicate => "duplicate",
            Self::TooFar => "too_far",
            Self::Full => "full",
        }
    }
}

/// The held records, in the order they are due.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// The records, by when they are due (and id, to tell them apart).
    queue: BTreeMap<(Instant, RecordId), Vec<u8>>,
    /// When each held record is due.
    due: HashMap<RecordId, Instant>,
    /// Bytes of all held records.
    bytes: usize,
}

impl Held {
    /// Holds `bytes`, a signed record, until `due`.
    pub(crate) fn hold(&mut self, bytes: Vec<u8>, due: Instant, now: Instant) -> Hold {
        if due.saturating_duration_since(now) > MAX_AHEAD {
            return Hold::TooFar;
        }
        // Records are accepted only in canonical encoding, so their bytes
        // name them.
        let id = RecordId::of(&bytes);
        if self.due.contains_key(&id) {
            return Hold::Duplicate;
        }
        let mut evicted = 0;
        while self.queue.len() >= MAX_HELD || self.bytes + bytes.len() > MAX_HELD_BYTES {
            match self.queue.last_key_value() {
                Some((&(last, _), _)) if last > due => {
                    if let Some(((_, gone), dropped)) = self.queue.pop_last() {
                        self.due.remove(&gone);
                        self.bytes -= dropped.len();
                        evicted += 1;
                    }
                }
                _ => return Hold::Full,
            }
        }
        self.bytes += bytes.len();
        self.due.insert(id, due);
        self.queue.insert((due, id), bytes);
        Hold::Held { evicted }
    }

    /// When the next held record is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|(&(due, _), _)| due)
    }

    /// Takes out up to [`RECHECK_BATCH`] records due at `now`, soonest
    /// first.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < RECHECK_BATCH
            && let Some(entry) = self.queue.first_entry()
            && entry.key().0 <= now
        {
            let ((_, id), bytes) = entry.remove_entry();
            self.due.remove(&id);
            self.bytes -= bytes.len();
            out.push(bytes);
        }
        out
    }

    /// How many records are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// How many bytes are held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A distinct small record stand-in (the area only hashes bytes).
    fn bytes(n: u32, len: usize) -> Vec<u8> {
        let mut b = n.to_be_bytes().to_vec();
        b.resize(len.max(4), 0);
        b
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn records_come_back_when_due_soonest_first_a_batch_at_a_time() {
        let t0 = Instant::now();
        let mut held = Held::default();
        assert_eq!(
            held.hold(bytes(1, 8), t0 + secs(20), t0),
            Hold::Held { evicted: 0 }
        );
        assert_eq!(
            held.hold(bytes(2, 8), t0 + secs(10), t0),
            Hold::Held { evicted: 0 }
        );
        assert_eq!(held.hold(bytes(2, 8), t0 + secs(10), t0), Hold::Duplicate);
        assert_eq!(held.next_due(), Some(t0 + secs(10)));
        assert!(held.take_due(t0 + secs(9)).is_empty());
        assert_eq!(held.take_due(t0 + secs(30)), vec![bytes(2, 8), bytes(1, 8)]);
        assert_eq!((held.len(), held.bytes(), held.next_due()), (0, 0, None));
        // Many due at once: a batch per call, the rest still due.
        for n in 0..RECHECK_BATCH as u32 + 1 {
            held.hold(bytes(n, 8), t0 + secs(1), t0);
        }
        assert_eq!(held.take_due(t0 + secs(1)).len(), RECHECK_BATCH);
        assert_eq!(held.next_due(), Some(t0 + secs(1)));
        assert_eq!(held.take_due(t0 + secs(1)).len(), 1);
    }

    #[test]
    fn nothing_due_more_than_a_day_ahead_is_held() {
        let t0 = Instant::now();
        let mut held = Held::default();
        let too_far = t0 + MAX_AHEAD + Duration::from_millis(1);
        assert_eq!(held.hold(bytes(1, 8), too_far, t0), Hold::TooFar);
        assert_eq!(
            held.hold(bytes(1, 8), t0 + MAX_AHEAD, t0),
            Hold::Held { evicted: 0 }
        );
        assert_eq!(held.len(), 1);
    }

    #[test]
    fn when_full_the_record_due_last_goes_first() {
        let t0 = Instant::now();
        let mut held = Held::default();
        for n in 0..MAX_HELD as u32 {
            let due = t0 + secs(10 + u64::from(n));
            assert_eq!(held.hold(bytes(n, 8), due, t0), Hold::Held { evicted: 0 });
        }
        let last = t0 + secs(10 + MAX_HELD as u64 - 1);
        // A record due after all of them is not held...
        assert_eq!(held.hold(bytes(9999, 8), last + secs(1), t0), Hold::Full);
        assert_eq!(held.len(), MAX_HELD);
        // ... one due sooner than the last takes its place.
        assert_eq!(
            held.hold(bytes(9998, 8), t0 + secs(1), t0),
            Hold::Held { evicted: 1 }
        );
        assert_eq!(held.len(), MAX_HELD);
        assert_eq!(held.next_due(), Some(t0 + secs(1)));
        let mut all = Vec::new();
        loop {
            let batch = held.take_due(last);
            if batch.is_empty() {
                break;
            }
            all.extend(batch);
        }
        assert_eq!(all.len(), MAX_HELD);
        assert!(
            !all.contains(&bytes(MAX_HELD as u32 - 1, 8)),
            "the last one went"
        );
        assert_eq!(held.len(), 0);
    }

    #[test]
    fn the_bytes_held_are_bounded_too() {
        let t0 = Instant::now();
        let mut held = Held::default();
        let size = ipsr_proto::limits::MAX_RECORD_BYTES;
        let fit = (MAX_HELD_BYTES / size) as u32;
        for n in 0..fit {
            held.hold(bytes(n, size), t0 + secs(100 + u64::from(n)), t0);
        }
        assert_eq!(held.len(), fit as usize);
        assert_eq!(
            held.hold(bytes(fit, size), t0 + secs(50_000), t0),
            Hold::Full
        );
        assert_eq!(
            held.hold(bytes(fit + 1, size), t0 + secs(1), t0),
            Hold::Held { evicted: 1 }
        );
        assert!(held.bytes() <= MAX_HELD_BYTES);
        assert_eq!(held.len(), fit as usize);
        // Room for several small records takes one large eviction.
        let mut small = Held::default();
        small.hold(bytes(0, MAX_HELD_BYTES), t0 + secs(50), t0);
        assert_eq!(small.hold(bytes(1, 8), t0 + secs(60), t0), Hold::Full);
        assert_eq!(
            small.hold(bytes(1, 8), t0 + secs(40), t0),
            Hold::Held { evicted: 1 }
        );
        assert_eq!(small.bytes(), 8);
    }
}
