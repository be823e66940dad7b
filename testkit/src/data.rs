//! Seeded test data: the same on every run, not compressible, no two chunks
//! alike.

/// A xorshift64 generator (13, 7, 17): fast and the same on every run, for
/// test data, shuffles and jitter; never for secrets.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator in state `state`, used as it is (a zero state stays
    /// zero: give a non-zero one).
    pub fn new(state: u64) -> Self {
        Self(state)
    }

    /// The next state.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// The next state modulo `n` (which must not be 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Fills `out` with the little-endian bytes of the next states, eight
    /// bytes a state (the last state cut to what is left).
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// `len` pseudo-random bytes from a seeded xorshift generator: not
/// compressible, no two chunks alike, the same on every run. Test data for
/// content (imports, transfers, downloads).
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = XorShift::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    (0..len).map(|_| (rng.next_u64() >> 24) as u8).collect()
}

/// `len` seeded pseudo-random bytes as a [`std::io::Read`]er, for files
/// too large to hold in memory (a gigabyte to upload): eight bytes a
/// generator state, so much faster than [`pattern`] (whose bytes these are
/// not). The bytes do not depend on how they are read.
#[derive(Debug, Clone)]
pub struct PatternReader {
    rng: XorShift,
    /// The current state's bytes; `used` of them are given out.
    word: [u8; 8],
    used: usize,
    left: u64,
}

impl PatternReader {
    /// `len` bytes from `seed`.
    pub fn new(seed: u64, len: u64) -> Self {
        Self {
            rng: XorShift::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            word: [0; 8],
            used: 8,
            left: len,
        }
    }

    /// The bytes at `ranges` (each within the length, in increasing order,
    /// not overlapping), read through to the last of them.
    pub fn slices(mut self, ranges: &[std::ops::Range<u64>]) -> Vec<Vec<u8>> {
        use std::io::Read;
        let mut at = 0u64;
        let mut out = Vec::new();
        for range in ranges {
            assert!(at <= range.start, "ranges in increasing order");
            std::io::copy(
                &mut (&mut self).take(range.start - at),
                &mut std::io::sink(),
            )
            .expect("a pattern never fails");
            let mut bytes = Vec::new();
            (&mut self)
                .take(range.end - range.start)
                .read_to_end(&mut bytes)
                .expect("a pattern never fails");
            out.push(bytes);
            at = range.end;
        }
        out
    }
}

impl std::io::Read for PatternReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let mut out = &mut buf[..n];
        while !out.is_empty() {
            if self.used == 8 {
                if out.len() >= 8 {
                    // Whole states straight into the buffer.
                    let whole = out.len() / 8 * 8;
                    let (words, rest) = out.split_at_mut(whole);
                    self.rng.fill(words);
                    out = rest;
                    continue;
                }
                self.word = self.rng.next_u64().to_le_bytes();
                self.used = 0;
            }
            let take = (8 - self.used).min(out.len());
            out[..take].copy_from_slice(&self.word[self.used..self.used + take]);
            self.used += take;
            out = &mut out[take..];
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_seeded_and_stable() {
        // The bytes `ipsr-testnet` made before the kit took the generator
        // over: data (and CIDs of it) stay what they were.
        assert_eq!(
            pattern(1, 8),
            [0x0b, 0x02, 0xe5, 0x36, 0xa1, 0x4e, 0xd6, 0x1a]
        );
        assert_eq!(pattern(7, 4), [0xd4, 0x21, 0x93, 0x5f]);
        assert_eq!(pattern(1, 8), pattern(1, 16)[..8]);
        assert_ne!(pattern(1, 64), pattern(2, 64));
        let a = pattern(7, 1 << 20);
        assert_ne!(a[..4096], a[4096..8192], "no two chunks alike");
    }

    #[test]
    fn pattern_reader_gives_the_same_bytes_however_read() {
        use std::io::Read;
        let mut whole = Vec::new();
        PatternReader::new(3, 1000).read_to_end(&mut whole).unwrap();
        assert_eq!(whole.len(), 1000);
        let mut pieces = Vec::new();
        let mut reader = PatternReader::new(3, 1000);
        for size in [1usize, 3, 8, 13, 64, 5].iter().cycle() {
            let mut buf = vec![0; *size];
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            pieces.extend_from_slice(&buf[..n]);
        }
        assert_eq!(pieces, whole);
        let slices = PatternReader::new(3, 1000).slices(&[5..9, 9..9, 500..1000]);
        assert_eq!(
            slices,
            vec![whole[5..9].to_vec(), Vec::new(), whole[500..].to_vec()]
        );
    }

    #[test]
    fn fill_writes_the_states_little_endian() {
        let mut a = XorShift::new(0x9e37_79b9_7f4a_7c15);
        let mut bytes = [0u8; 12];
        a.fill(&mut bytes);
        let mut b = XorShift::new(0x9e37_79b9_7f4a_7c15);
        assert_eq!(bytes[..8], b.next_u64().to_le_bytes());
        assert_eq!(bytes[8..], b.next_u64().to_le_bytes()[..4]);
        assert!(XorShift::new(5).below(3) < 3);
    }
}
