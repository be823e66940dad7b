//! Group commit of records into the store (sans IO): one write at a time;
//! records that arrive while a write is in flight wait and go together in
//! the next one, so a busy node pays one transaction (and one `fsync`) for
//! many records instead of one each. An idle node writes each record at
//! once, as before.
//!
//! ```text
//! record ─► push ─ none in flight ─► write [record]
//!             └─── in flight ──────► queue
//! write done ─► finished ─ queue not empty ─► write [up to MAX_BATCH queued]
//!                   └───── empty ───────────► idle
//! ```
//!
//! The order of records is kept, within a write and from one write to the
//! next, so a release and the yank that follows it are applied in that
//! order.
//!
//! The queue is bounded: when the disk falls behind (a slow or stalled
//! `fsync`) and [`MAX_QUEUED`] records wait, the next one is handed back
//! ([`Push::Full`]) for the caller to shed (a gossiped record is ignored
//! and comes back by sync; a publish is refused with "try again later"),
//! so a stalled disk cannot make the node's memory grow with what its
//! peers send.

use std::collections::VecDeque;

/// The most records one write takes.
pub(crate) const MAX_BATCH: usize = 256;

/// The most records waiting for a write (four full writes; with records
/// of at most 10 KiB, at most 10 MiB of record bytes).
pub(crate) const MAX_QUEUED: usize = 4 * MAX_BATCH;

/// What became of a record handed to [`Writes::push`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a batch must be written and a refused record shed"]
pub(crate) enum Push<T> {
    /// No write was in flight: write this batch (the record alone) now.
    Write(Vec<T>),
    /// It waits for the write in flight to finish.
    Queued,
    /// The queue is full: the record is handed back, not written.
    Full(T),
}

/// Records waiting for the store, and whether a write is in flight.
#[derive(Debug)]
pub(crate) struct Writes<T> {
    queue: VecDeque<T>,
    in_flight: bool,
    max_batch: usize,
    max_queued: usize,
}

impl<T> Default for Writes<T> {
    fn default() -> Self {
        Self::new(MAX_BATCH, MAX_QUEUED)
    }
}

impl<T> Writes<T> {
    /// No write in flight, nothing queued; writes of at most `max_batch`,
    /// at most `max_queued` records waiting.
    pub(crate) fn new(max_batch: usize, max_queued: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            in_flight: false,
            max_batch: max_batch.max(1),
            max_queued,
        }
    }

    /// A record to write: written now (it alone) if no write is in flight,
    /// else queued for [`finished`](Self::finished), or handed back when
    /// the queue is full.
    pub(crate) fn push(&mut self, item: T) -> Push<T> {
        if !self.in_flight {
            self.in_flight = true;
            return Push::Write(vec![item]);
        }
        if self.queue.len() >= self.max_queued {
            return Push::Full(item);
        }
        self.queue.push_back(item);
        Push::Queued
    }

    /// The write in flight is done: the next batch to write (the oldest
    /// queued records, at most the batch size), or `None` when nothing
    /// waits.
    #[must_use = "a batch returned must be written"]
    pub(crate) fn finished(&mut self) -> Option<Vec<T>> {
        if self.queue.is_empty() {
            self.in_flight = false;
            return None;
        }
        let n = self.queue.len().min(self.max_batch);
        Some(self.queue.drain(..n).collect())
    }

    /// How many records wait for a write.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_writer_writes_at_once() {
        let mut w = Writes::new(4, 16);
        assert_eq!(w.push(1), Push::Write(vec![1]));
        assert_eq!(w.finished(), None);
        assert_eq!(
            w.push(2),
            Push::Write(vec![2]),
            "idle again after the write"
        );
    }

    #[test]
    fn records_arriving_during_a_write_go_together_in_order() {
        let mut w = Writes::new(4, 16);
        assert_eq!(w.push(0), Push::Write(vec![0]));
        for i in 1..=6 {
            assert_eq!(w.push(i), Push::Queued, "a write is in flight");
        }
        assert_eq!(w.queued(), 6);
        assert_eq!(
            w.finished(),
            Some(vec![1, 2, 3, 4]),
            "at most the batch size"
        );
        assert_eq!(w.push(7), Push::Queued, "still in flight");
        assert_eq!(w.finished(), Some(vec![5, 6, 7]));
        assert_eq!(w.finished(), None);
        assert_eq!(w.queued(), 0);
        assert_eq!(w.push(8), Push::Write(vec![8]));
    }

    #[test]
    fn a_stalled_write_bounds_the_queue_and_hands_records_back() {
        let mut w = Writes::new(4, 8);
        assert_eq!(w.push(0), Push::Write(vec![0]));
        // The write never finishes (a stalled disk): a flood of records.
        let mut refused = Vec::new();
        for i in 1..=10_000 {
            match w.push(i) {
                Push::Queued => {}
                Push::Full(back) => refused.push(back),
                Push::Write(batch) => panic!("a second write while one is in flight: {batch:?}"),
            }
            assert!(w.queued() <= 8, "the queue passed its bound");
        }
        assert_eq!(w.queued(), 8);
        assert_eq!(
            refused,
            (9..=10_000).collect::<Vec<_>>(),
            "each refused record is handed back"
        );
        // The disk catches up: what was queued is written, in order, and
        // there is room again.
        assert_eq!(w.finished(), Some(vec![1, 2, 3, 4]));
        assert_eq!(w.push(10_001), Push::Queued);
        assert_eq!(w.finished(), Some(vec![5, 6, 7, 8]));
        assert_eq!(w.finished(), Some(vec![10_001]));
        assert_eq!(w.finished(), None);
    }
}
