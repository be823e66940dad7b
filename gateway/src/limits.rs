//! Per-client rate limits (governor's GCRA, keyed by the client's address,
//! an IPv6 client by its /64). The caps on requests served and connections
//! open at once are the gateway's occupancy tables (`occupancy.rs`).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota};

use crate::occupancy::client_key;

/// How many client addresses the limiter remembers before it forgets the
/// idle ones (so a flood of addresses cannot grow it without bound).
const MAX_TRACKED: usize = 100_000;

/// A per-address limit of requests per second, or none.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl RateLimiter {
    /// `per_sec` requests per second per address (0: no limit), with bursts
    /// of up to `burst` above it.
    pub(crate) fn new(per_sec: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_sec).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_sec)).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { limiter }
    }

    /// Whether a request from `addr` may go ahead now.
    pub(crate) fn check(&self, addr: Option<IpAddr>) -> bool {
        let (Some(limiter), Some(addr)) = (&self.limiter, addr) else {
            return true;
        };
        if limiter.len() > MAX_TRACKED {
            limiter.retain_recent();
        }
        limiter.check_key(&client_key(addr)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_address_on_its_own() {
        let limiter = RateLimiter::new(1, 3);
        let a = Some("127.0.0.1".parse().unwrap());
        let b = Some("::1".parse().unwrap());
        assert!((0..3).all(|_| limiter.check(a)), "the burst passes");
        assert!(!limiter.check(a), "past the burst, refused");
        assert!(limiter.check(b), "another address has its own budget");
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = RateLimiter::new(0, 0);
        let a = Some("127.0.0.1".parse().unwrap());
        assert!((0..10_000).all(|_| limiter.check(a)));
    }
}
