//! Free ports on loopback.

use std::net::TcpListener;

/// A port that is free on loopback now.
pub fn free_port() -> u16 {
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
        let base = free_base_port(3).expect("a free range");
        assert!(TcpListener::bind(("127.0.0.1", base + 200)).is_ok());
    }
}
