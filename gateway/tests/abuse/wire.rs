//! Raw HTTP/1.1 over TCP, for what no client library sends: requests from
//! a chosen source address, bodies that stall or never end, answers read
//! while the body is still being written.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipsr_testkit::connect_from;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::task::JoinHandle;

/// The attacker's address.
pub const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// Another client's address (loopback answers the whole 127/8).
pub const HONEST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// The largest answer head read.
const MAX_HEAD: usize = 64 * 1024;
/// The largest answer body read.
const MAX_BODY: usize = 1024 * 1024;

/// A runtime for the clients of one test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value (the name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    /// The `code` of a JSON error body.
    pub fn code(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        json["code"].as_str().map(str::to_owned)
    }
}

/// A connection from `from` to `to`.
pub async fn connect(from: IpAddr, to: SocketAddr) -> TcpStream {
    connect_from(from, to)
        .await
        .unwrap_or_else(|| panic!("cannot connect from {from} to {to}"))
}

/// Reads one answer: its head, and its body when it has a
/// `Content-Length`. `None` when the connection ends (or fails) first.
pub async fn read_answer(reader: &mut (impl AsyncRead + Unpin)) -> Option<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut answer = Answer {
        status,
        head,
        body: buf[end + 4..].to_vec(),
    };
    let length: usize = answer
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    while answer.body.len() < length {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(answer)
}

/// A request on its way: the connection's writing half, and its answer,
/// read meanwhile.
pub struct Sending {
    pub writer: OwnedWriteHalf,
    answer: JoinHandle<Option<Answer>>,
    started: Instant,
}

impl Sending {
    /// Connects from `from` to `to`, sends `head` and the body's `first`
    /// bytes, and reads the answer (for at most `limit`) while the caller
    /// writes more.
    pub async fn start(
        from: IpAddr,
        to: SocketAddr,
        head: &str,
        first: &[u8],
        limit: Duration,
    ) -> Self {
        let started = Instant::now();
        let (mut reader, mut writer) = connect(from, to).await.into_split();
        let answer = tokio::spawn(async move {
            tokio::time::timeout(limit, read_answer(&mut reader))
                .await
                .ok()
                .flatten()
        });
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(first).await;
        Self {
            writer,
            answer,
            started,
        }
    }

    /// Whether the answer came (or the connection ended).
    pub fn answered(&self) -> bool {
        self.answer.is_finished()
    }

    /// Writes one body byte every `every` until answered, the connection
    /// fails, or `limit` after the start.
    pub async fn drip(&mut self, every: Duration, limit: Duration) {
        while !self.answered() && self.started.elapsed() < limit {
            tokio::time::sleep(every).await;
            if self.writer.write_all(b"x").await.is_err() {
                break;
            }
        }
    }

    /// The answer, and how long after the start it came.
    pub async fn answer(self) -> (Option<Answer>, Duration) {
        let answer = self.answer.await.unwrap();
        (answer, self.started.elapsed())
    }
}

/// Sends `request` from `from` and reads the answer, within `limit`.
pub async fn exchange(
    from: IpAddr,
    to: SocketAddr,
    request: &[u8],
    limit: Duration,
) -> Option<Answer> {
    let mut stream = connect(from, to).await;
    tokio::time::timeout(limit, async {
        stream.write_all(request).await.ok()?;
        read_answer(&mut stream).await
    })
    .await
    .ok()
    .flatten()
}

/// `GET path` from `from`, answered within 10 s.
pub async fn get(from: IpAddr, to: SocketAddr, path: &str) -> Option<Answer> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n");
    exchange(from, to, request.as_bytes(), Duration::from_secs(10)).await
}

/// The head of a `POST /api/v1/publish` with `headers` (each ending in
/// CRLF).
pub fn publish_head(to: SocketAddr, headers: &str) -> String {
    format!("POST /api/v1/publish HTTP/1.1\r\nHost: {to}\r\n{headers}\r\n")
}

/// A gateway metric's value, read from `/metrics` by [`HONEST`]; 0 when
/// not there.
pub async fn metric(to: SocketAddr, series: &str) -> f64 {
    let answer = get(HONEST, to, "/metrics").await.expect("/metrics answers");
    assert_eq!(answer.status, 200);
    String::from_utf8_lossy(&answer.body)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// How many requests or connections the gateway refused for `reason`.
pub async fn refused(to: SocketAddr, reason: &str) -> f64 {
    metric(
        to,
        &format!("ipsr_gateway_refused_total{{reason=\"{reason}\"}}"),
    )
    .await
}
