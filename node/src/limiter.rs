//! Per-peer rate limits for inbound work: a token bucket per peer. Sans-IO:
//! the caller passes the current time.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;

/// Token buckets by peer. Forget a peer when it disconnects, so the map is
/// bounded by the connection limit.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<PeerId, (f64, Instant)>,
}

impl Limiter {
    /// `rate` tokens per second, at most `burst` saved up.
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `peer`; false when it has none left.
    pub(crate) fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        let (tokens, last) = self.buckets.entry(peer).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
}
