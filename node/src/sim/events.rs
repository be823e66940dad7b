//! The virtual clock: a priority queue of timed events. Time is in
//! microseconds since the phase began; nothing sleeps. Events due at the
//! same microsecond come out in the order they were scheduled, so a run
//! is the same for a seed.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Virtual microseconds.
pub(crate) type Micros = u64;

#[derive(Debug)]
struct Entry<E> {
    at: Micros,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Events by due time, earliest first.
#[derive(Debug)]
pub(crate) struct Queue<E> {
    heap: BinaryHeap<Reverse<Entry<E>>>,
    seq: u64,
    now: Micros,
}

impl<E> Queue<E> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            seq: 0,
            now: 0,
        }
    }

    /// The time of the event last popped.
    pub(crate) fn now(&self) -> Micros {
        self.now
    }

    /// Schedules `event` at `at` (never before now).
    pub(crate) fn at(&mut self, at: Micros, event: E) {
        self.seq += 1;
        let at = at.max(self.now);
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// Schedules `event` `delay` after now.
    pub(crate) fn after(&mut self, delay: Micros, event: E) {
        self.at(self.now + delay, event);
    }

    /// The next event; the clock moves to its time.
    pub(crate) fn pop(&mut self) -> Option<E> {
        let Reverse(entry) = self.heap.pop()?;
        self.now = entry.at;
        Some(entry.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_in_scheduling_order() {
        let mut q = Queue::new();
        q.at(30, "c");
        q.at(10, "a");
        q.at(30, "d");
        q.at(20, "b");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|e| (q.now(), e))).collect();
        assert_eq!(order, vec![(10, "a"), (20, "b"), (30, "c"), (30, "d")]);
    }

    #[test]
    fn nothing_is_scheduled_in_the_past() {
        let mut q = Queue::new();
        q.at(50, 1);
        q.pop();
        q.at(10, 2);
        q.pop();
        assert_eq!(q.now(), 50);
    }
}
