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
