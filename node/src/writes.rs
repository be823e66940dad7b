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

use std::collections::VecDeque;

/// The most records one write takes.
pub(crate) const MAX_BATCH: usize = 256;

/// Records waiting for the store, and whether a write is in flight.
#[derive(Debug)]
pub(crate) struct Writes<T> {
    queue: VecDeque<T>,
    in_flight: bool,
    max_batch: usize,
}

impl<T> Default for Writes<T> {
    fn default() -> Self {
        Self::new(MAX_BATCH)
    }
}

impl<T> Writes<T> {
    /// No write in flight, nothing queued; writes of at most `max_batch`.
    pub(crate) fn new(max_batch: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            in_flight: false,
            max_batch: max_batch.max(1),
        }
    }

    /// A record to write: the batch to write now (it alone) if no write is
    /// in flight, else `None` (it waits for [`finished`](Self::finished)).
    #[must_use = "a batch returned must be written"]
    pub(crate) fn push(&mut self, item: T) -> Option<Vec<T>> {
        if self.in_flight {
            self.queue.push_back(item);
            return None;
        }
        self.in_flight = true;
        Some(vec![item])
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
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_writer_writes_at_once() {
        let mut w = Writes::new(4);
        assert_eq!(w.push(1), Some(vec![1]));
        assert_eq!(w.finished(), None);
        assert_eq!(w.push(2), Some(vec![2]), "idle again after the write");
    }

    #[test]
    fn records_arriving_during_a_write_go_together_in_order() {
        let mut w = Writes::new(4);
        assert_eq!(w.push(0), Some(vec![0]));
        for i in 1..=6 {
            assert_eq!(w.push(i), None, "a write is in flight");
        }
        assert_eq!(w.queued(), 6);
        assert_eq!(
            w.finished(),
            Some(vec![1, 2, 3, 4]),
            "at most the batch size"
        );
        assert_eq!(w.push(7), None, "still in flight");
        assert_eq!(w.finished(), Some(vec![5, 6, 7]));
        assert_eq!(w.finished(), None);
        assert_eq!(w.queued(), 0);
        assert_eq!(w.push(8), Some(vec![8]));
    }
}
