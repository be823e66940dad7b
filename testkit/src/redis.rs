//! Redis for tests: the shared server named by `IPSR_TEST_REDIS_URL`, with a
//! key prefix per test, and private servers a test may stop and start.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll;

/// The shared test Redis: `IPSR_TEST_REDIS_URL`, by default
/// `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("IPSR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test (or run) uses in the shared Redis:
/// `ipsr-test:NAME:PID:NANOS:`.
pub fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    format!("ipsr-test:{name}:{}:{nanos}:", std::process::id())
}

/// A private `redis-server` on `port` (no persistence), killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts it and waits until it accepts connections; panics when
    /// `redis-server` is missing or does not start within 20 s.
    pub fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server (is it installed?): {e}"));
        let server = Self {
            port,
            child: Some(child),
        };
        poll(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .unwrap_or_else(|| panic!("redis-server did not start on port {port}"));
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGKILL: it keeps nothing anyway) and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_differ() {
        assert_ne!(unique_prefix("a"), unique_prefix("a"));
        assert!(unique_prefix("name").starts_with("ipsr-test:name:"));
    }

    #[test]
    fn a_private_server_serves_until_stopped() {
        let mut server = RedisServer::start(crate::free_port());
        assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port));
        server.stop();
        assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
    }
}
