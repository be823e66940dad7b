//! Free ports on loopback.

use std::net::TcpListener;

/// A port that is free on loopback now, for a process started later to
/// bind. It is taken from 10000–19999, below Linux's ephemeral range
/// (32768–60999) and the testnet's ports ([`free_base_port`]): the kernel
/// hands ephemeral ports to every `:0` bind and every outgoing connection,
/// so a port picked there could be taken before the process binds it (a
/// node restarted on its old address then found it in use).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut x = (u64::from(std::process::id()) << 32)
        ^ nanos
        ^ CALLS
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        | 1;
    for _ in 0..1000 {
        // xorshift: another candidate each try.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 10_000 + (x % 10_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on loopback")
        .port()
}

/// A base port `P` such that the testnet's ports (`P..=P+n`,
/// `P+100..=P+100+n`, `P+200`) are free on loopback now.
pub fn free_base_port(nodes: u16) -> Option<u16> {
    let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
    // Spread the starting points by process id so parallel runs differ.
    let start = 20_000 + (std::process::id() % 300) as u16 * 100;
    (0..300u16)
        .map(|i| 20_000 + (start - 20_000 + i * 100) % 30_000)
        .find(|&p| (0..=nodes).all(|i| free(p + i) && free(p + 100 + i)) && free(p + 200))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_are_free() {
        let port = free_port();
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
        assert!((10_000..20_000).contains(&port), "{port}");
        let base = free_base_port(3).expect("a free range");
        assert!(TcpListener::bind(("127.0.0.1", base + 200)).is_ok());
    }
}
