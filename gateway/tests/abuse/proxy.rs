//! Behind a reverse proxy (`docs/dev/abuse.md`, "Behind a reverse proxy"):
//! every client comes from the proxy's address. With `--trusted-proxy` the
//! gateway attributes a request from the proxy to the client its
//! `X-Forwarded-For` names, so one client's burst does not rate-limit the
//! proxy's other clients, and a client cannot escape its limit by writing
//! the header itself, through the proxy or around it.
//!
//! ```text
//!  "clients" 10.0.x.y ─► 127.0.0.2 (the trusted proxy: these tests) ─┐
//!                                                                   ├─► gateway
//!  127.0.0.1 (not trusted, sends X-Forwarded-For of its own) ───────┘
//! ```
//!
//! The rate limit is 1 a second with bursts of 2, so of a quick run of
//! requests keyed alike all but a few are refused, however slow the
//! machine: each test counts refusals that a wrong key would not give.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::Gateway;
use crate::wire::{ATTACKER, Answer, HONEST, Sending, connect, exchange, publish_head, runtime};

/// The trusted proxy's address.
const PROXY: IpAddr = HONEST;
/// Requests in each quick run.
const RUN: usize = 12;
/// Of a run keyed as one client, at least this many are refused: at most
/// 2 pass at once and 1 more a second, so this leaves the run about 4 s.
/// Keyed apart (each request a client of its own), none is refused.
const REFUSED_AT_LEAST: usize = 6;

/// `GET /` from `from` with one `X-Forwarded-For` header per entry of
/// `forwarded`.
async fn get_forwarded(from: IpAddr, to: SocketAddr, forwarded: &[&str]) -> Answer {
    let mut request = format!("GET / HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n");
    for value in forwarded {
        request.push_str(&format!("X-Forwarded-For: {value}\r\n"));
    }
    request.push_str("\r\n");
    exchange(from, to, request.as_bytes(), Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no answer from {from} with {forwarded:?}"))
}

/// What a run of requests from `from` got: how many were answered 200 and
/// how many `429 rate_limited`; `forwarded(i)` is request `i`'s headers.
async fn run(
    from: IpAddr,
    to: SocketAddr,
    forwarded: impl Fn(usize) -> Vec<String>,
) -> (usize, usize) {
    let started = Instant::now();
    let (mut ok, mut limited) = (0, 0);
    for i in 0..RUN {
        let headers = forwarded(i);
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let answer = get_forwarded(from, to, &headers).await;
        match (answer.status, answer.code().as_deref()) {
            (200, _) => ok += 1,
            (429, Some("rate_limited")) => {
                assert_eq!(answer.header("retry-after"), Some("1"));
                limited += 1;
            }
            _ => panic!("{headers:?} got {answer:?}"),
        }
    }
    eprintln!(
        "from {from}, e.g. {:?}: {ok} answered, {limited} rate-limited in {:?}",
        forwarded(0),
        started.elapsed()
    );
    (ok, limited)
}

#[test]
fn a_trusted_proxys_clients_are_rate_limited_each_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(
        dir.path(),
        &["--trusted-proxy", "127.0.0.2", "--rate-limit", "1"],
    );
    let to = gateway.addr();
    let rt = runtime();
    rt.block_on(async {
        // One client through the proxy, quickly: limited.
        let (_, limited) = run(PROXY, to, |_| vec!["10.0.0.1".into()]).await;
        assert!(limited >= REFUSED_AT_LEAST, "10.0.0.1 is limited");

        // The proxy's other clients are answered all along: each has a
        // budget of its own (keyed by the proxy, most would be refused).
        let (ok, _) = run(PROXY, to, |i| vec![format!("10.0.1.{i}")]).await;
        assert_eq!(ok, RUN, "every other client of the proxy is answered");

        // The limited client writes its own header, naming a new address
        // each time: the proxy appends the real one, which is what counts.
        let (_, limited) = run(PROXY, to, |i| vec![format!("10.0.2.{i}, 10.0.0.1")]).await;
        assert!(limited >= REFUSED_AT_LEAST, "forged entries on the left");
        // The same with its forged header apart from the proxy's.
        let (_, limited) = run(PROXY, to, |i| {
            vec![format!("10.0.3.{i}"), "10.0.0.1".into()]
        })
        .await;
        assert!(
            limited >= REFUSED_AT_LEAST,
            "forged header before the proxy's"
        );
        // Garbage after a forged address: attributed to the proxy itself,
        // never to the address the client wrote.
        let (_, limited) = run(PROXY, to, |i| vec![format!("10.0.4.{i}, garbage")]).await;
        assert!(limited >= REFUSED_AT_LEAST, "a malformed entry");

        // A client that reaches the gateway around the proxy names a new
        // client each time: an untrusted peer is its own client.
        let (_, limited) = run(ATTACKER, to, |i| vec![format!("10.0.5.{i}")]).await;
        assert!(limited >= REFUSED_AT_LEAST, "an untrusted peer's header");
    });
}

#[test]
fn without_trusted_proxies_a_proxys_clients_share_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(dir.path(), &["--rate-limit", "1"]);
    let to = gateway.addr();
    let (_, limited) = runtime().block_on(run(PROXY, to, |i| vec![format!("10.0.1.{i}")]));
    assert!(
        limited >= REFUSED_AT_LEAST,
        "the default is unchanged: the peer is the client"
    );
}

#[test]
fn request_slots_and_connections_behind_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(
        dir.path(),
        &[
            "--trusted-proxy",
            "127.0.0.2/31",
            "--rate-limit",
            "0",
            "--max-per-client",
            "2",
            "--max-connections-per-client",
            "4",
            "--body-timeout-secs",
            "4",
        ],
    );
    let to = gateway.addr();
    let rt = runtime();
    rt.block_on(async {
        // 10.0.0.1 holds its two slots with bodies that never come.
        let head = publish_head(
            to,
            "Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\
             X-Forwarded-For: 10.0.0.1\r\n",
        );
        let limit = Duration::from_secs(20);
        let mut slow = Vec::new();
        for _ in 0..2 {
            slow.push(Sending::start(PROXY, to, &head, b"", limit).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = get_forwarded(PROXY, to, &["10.0.0.1"]).await;
        assert_eq!(
            (busy.status, busy.code().as_deref()),
            (429, Some("client_busy")),
            "10.0.0.1 holds its share"
        );
        for other in ["10.0.0.2", "2001:db8::1"] {
            let answer = get_forwarded(PROXY, to, &[other]).await;
            assert_eq!(answer.status, 200, "{other} has slots of its own");
        }
        let own = get_forwarded(PROXY, to, &[]).await;
        assert_eq!(own.status, 200, "the proxy's own request, no header");
        for sending in slow {
            let (answer, after) = sending.answer().await;
            let answer = answer.expect("a slow body is answered");
            assert_eq!(answer.status, 408, "after {after:?}: {answer:?}");
        }

        // The proxy (127.0.0.2/31) holds more connections than a client
        // may: the total cap alone holds it. 127.0.0.1 is still capped.
        let mut idle = Vec::new();
        for _ in 0..10 {
            idle.push(connect(PROXY, to).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let answer = get_forwarded(PROXY, to, &["10.0.0.3"]).await;
        assert_eq!(
            answer.status, 200,
            "the proxy's 11th connection: {answer:?}"
        );
        for _ in 0..4 {
            idle.push(connect(ATTACKER, to).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let refused = get_forwarded(ATTACKER, to, &[]).await;
        assert_eq!(
            (refused.status, refused.code().as_deref()),
            (429, Some("client_busy")),
            "127.0.0.1's 5th connection"
        );
    });
}
