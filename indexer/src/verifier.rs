//! The verifying pool: decodes and verifies log entries on several
//! threads, keeping their order, each thread with its own cache of the
//! authors' checked keys.

use std::sync::atomic::{AtomicUsize, Ordering};

use ipsr_proto::{KeyCache, Signed, SignedRecord};

use crate::source::Entry;

/// A log entry's position and its verification result.
pub type Verdict = (u64, Result<Signed, ipsr_proto::VerifyError>);

/// Decodes and verifies log entries on several threads, keeping order. Each
/// thread has its own [`KeyCache`] of the authors' decompressed keys, kept
/// from one call to the next, so an author's key is checked once per
/// thread, not once per record (the result is the same as
/// [`SignedRecord::verify`]'s).
#[derive(Debug)]
pub struct Verifier {
    /// One per thread.
    caches: Vec<KeyCache>,
}

/// Entries below which one thread verifies a whole page (starting threads
/// costs more than it saves).
const MIN_PARALLEL: usize = 64;

/// Entries a verifying thread takes at a time.
const VERIFY_CHUNK: usize = 25;

impl Verifier {
    /// A verifier using up to `threads` threads (at least 1), each with a
    /// cache of [`KeyCache::DEFAULT_CAPACITY`] keys.
    pub fn new(threads: usize) -> Self {
        Self {
            caches: (0..threads.max(1)).map(|_| KeyCache::default()).collect(),
        }
    }

    /// The most threads it uses.
    pub fn threads(&self) -> usize {
        self.caches.len()
    }

    /// Decodes and verifies every entry, on up to [`threads`](Self::threads)
    /// threads; the results are in the order of `entries`.
    pub fn verify(&mut self, entries: &[Entry]) -> Vec<Verdict> {
        fn run(entries: &[Entry], keys: &mut KeyCache) -> Vec<Verdict> {
            entries
                .iter()
                .map(|e| {
                    let result = SignedRecord::from_bytes(&e.bytes)
                        .and_then(|r| r.verify_any_at_cached(ipsr_proto::now_ms(), keys));
                    (e.position, result)
                })
                .collect()
        }
        let threads = self.caches.len();
        if threads <= 1 || entries.len() < MIN_PARALLEL {
            return match self.caches.first_mut() {
                Some(keys) => run(entries, keys),
                None => run(entries, &mut KeyCache::new(0)),
            };
        }
        // The threads take small chunks in turn, so that they finish
        // together even when one of them gets less of the CPU.
        let chunks: Vec<&[Entry]> = entries.chunks(VERIFY_CHUNK).collect();
        let next = AtomicUsize::new(0);
        let mut done: Vec<(usize, Vec<Verdict>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .caches
                .iter_mut()
                .map(|keys| {
                    let (chunks, next) = (&chunks, &next);
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(chunk) = chunks.get(i) else {
                                return out;
                            };
                            out.push((i, run(chunk, keys)));
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        done.sort_unstable_by_key(|(i, _)| *i);
        done.into_iter().flat_map(|(_, v)| v).collect()
    }
}

/// Decodes and verifies every entry, on up to `threads` threads, keeping
/// order: [`Verifier::verify`] with a new [`Verifier`].
pub fn verify_all(entries: Vec<Entry>, threads: usize) -> Vec<Verdict> {
    Verifier::new(threads).verify(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log entry `i`: release 1.0.`i` of one author, its signature
    /// broken when `broken`.
    fn entry(i: u64, broken: bool) -> Entry {
        let key = ipsr_testkit::key(3);
        let mut bytes = ipsr_testkit::release(&key, &format!("1.0.{i}"))
            .code(i)
            .created_at(1)
            .sign()
            .to_bytes();
        if broken {
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
        }
        Entry { position: i, bytes }
    }

    #[test]
    fn verifier_keeps_its_caches_and_still_rejects() {
        let mut verifier = Verifier::new(2);
        assert_eq!(verifier.threads(), 2);
        // Pages after the first find the author's key in the caches; every
        // tenth entry has a broken signature.
        for page in 0..3u64 {
            let entries: Vec<Entry> = (1..=100)
                .map(|i| page * 100 + i)
                .map(|i| entry(i, i.is_multiple_of(10)))
                .collect();
            let out = verifier.verify(&entries);
            assert_eq!(out.len(), 100);
            for ((position, result), e) in out.iter().zip(&entries) {
                assert_eq!(*position, e.position);
                let plain = SignedRecord::from_bytes(&e.bytes).and_then(SignedRecord::verify_any);
                assert_eq!(result.as_ref().ok(), plain.as_ref().ok());
                assert_eq!(result.is_err(), e.position.is_multiple_of(10));
            }
        }
    }

    #[test]
    fn verify_all_keeps_order_and_flags_bad_entries() {
        let entries: Vec<Entry> = (1..=100u64).map(|i| entry(i, i == 50)).collect();
        let out = verify_all(entries, 3);
        assert_eq!(
            out.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            (1..=100).collect::<Vec<_>>()
        );
        assert_eq!(out.iter().filter(|(_, r)| r.is_err()).count(), 1);
        assert!(out[49].1.is_err());
    }
}
