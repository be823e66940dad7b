//! A flood of idle TCP connections, as an attacker who wants to keep new
//! peers out would send: each connection comes from a chosen source
//! address, never sends a byte, and is opened again soon after the target
//! closes it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;
use tokio::sync::oneshot;

/// How long a flood connection waits before it opens again after the
/// target closed it (bounds the connection rate: at most `n` per this).
const REOPEN_AFTER: Duration = Duration::from_millis(100);
/// How long it waits after a failed connect.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// `n` idle TCP connections to a target, kept up by a thread of their own
/// until dropped.
#[derive(Debug)]
pub struct IdleFlood {
    counts: Arc<Counts>,
    reopen: Arc<AtomicBool>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Counts {
    opened: AtomicU64,
    closed: AtomicU64,
    open: AtomicU64,
}

impl IdleFlood {
    /// Starts `n` idle connections from `from` (a port the system picks)
    /// to `to`. On Linux every `127.x.y.z` is loopback, so `127.0.0.2` is a
    /// second source address on one machine.
    pub fn start(from: IpAddr, to: SocketAddr, n: usize) -> Self {
        let counts = Arc::new(Counts::default());
        let reopen = Arc::new(AtomicBool::new(true));
        let (stop, stopped) = oneshot::channel();
        let thread = {
            let (counts, reopen) = (counts.clone(), reopen.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the flood");
                runtime.block_on(async move {
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..n {
                        tasks.spawn(hold(from, to, counts.clone(), reopen.clone()));
                    }
                    // Sent or dropped: stop either way.
                    let _ = stopped.await;
                    tasks.abort_all();
                });
            })
        };
        Self {
            counts,
            reopen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Connections opened so far.
    pub fn opened(&self) -> u64 {
        self.counts.opened.load(Ordering::Relaxed)
    }

    /// Connections the target closed (or reset) so far.
    pub fn closed_by_target(&self) -> u64 {
        self.counts.closed.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open_now(&self) -> u64 {
        self.counts.open.load(Ordering::Relaxed)
    }

    /// Stops opening connections again: those open stay idle until the
    /// target closes them, so [`open_now`](Self::open_now) falls to zero
    /// only if the target closes idle connections.
    pub fn stop_reopening(&self) {
        self.reopen.store(false, Ordering::Relaxed);
    }
}

impl Drop for IdleFlood {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One flood connection: open, wait for the target to close it, again.
async fn hold(from: IpAddr, to: SocketAddr, counts: Arc<Counts>, reopen: Arc<AtomicBool>) {
    while reopen.load(Ordering::Relaxed) {
        let Some(mut stream) = connect_from(from, to).await else {
            tokio::time::sleep(RETRY_AFTER).await;
            continue;
        };
        counts.opened.fetch_add(1, Ordering::Relaxed);
        counts.open.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 256];
        // Whatever the target says, never answer; end on close or reset.
        while let Ok(1..) = stream.read(&mut buf).await {}
        counts.open.fetch_sub(1, Ordering::Relaxed);
        counts.closed.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(REOPEN_AFTER).await;
    }
}

/// A TCP connection from `from` (a port the system picks) to `to`, or
/// `None` when it cannot be made within 5 s. On Linux every `127.x.y.z`
/// is loopback: `127.0.0.2` is a second client address on one machine.
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> Option<tokio::net::TcpStream> {
    let socket = match to {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .ok()?;
    socket.bind(SocketAddr::new(from, 0)).ok()?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(to))
        .await
        .ok()?
        .ok()
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;
    use crate::poll;

    #[test]
    fn connections_come_from_the_chosen_address_stay_idle_and_come_back() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let flood = IdleFlood::start(
            "127.0.0.2".parse().unwrap(),
            listener.local_addr().unwrap(),
            3,
        );
        let mut accepted = Vec::new();
        for _ in 0..3 {
            let (stream, peer) = listener.accept().unwrap();
            assert_eq!(peer.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
            accepted.push(stream);
        }
        poll(Duration::from_secs(20), || {
            (flood.open_now() == 3).then_some(())
        })
        .expect("three open");
        // Closed by the target: opened again.
        accepted.clear();
        for _ in 0..3 {
            accepted.push(listener.accept().unwrap().0);
        }
        poll(Duration::from_secs(20), || {
            (flood.closed_by_target() == 3 && flood.opened() == 6).then_some(())
        })
        .expect("three closed and three more opened");
        // Not any more after `stop_reopening`.
        flood.stop_reopening();
        accepted.clear();
        poll(Duration::from_secs(20), || {
            (flood.open_now() == 0).then_some(())
        })
        .expect("all closed");
        std::thread::sleep(REOPEN_AFTER * 3);
        assert_eq!(flood.opened(), 6);
    }
}
