//! Request slots and connections: hundreds of slow bodies from one address
//! cannot take every request slot (another address is answered all along,
//! the slow ones are refused or timed out), and connections that send
//! their headers too slowly, or nothing, or too many from one address, are
//! closed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsr_testkit::{IdleFlood, poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Gateway;
use crate::wire::{
    ATTACKER, Answer, HONEST, Sending, connect, get, metric, publish_head, refused, runtime,
};

/// Slow clients from the attacker's address.
const SLOW: usize = 300;
/// How often each sends one byte of its body.
const DRIP: Duration = Duration::from_secs(2);
/// How long a slow client keeps going without an answer.
const GIVE_UP: Duration = Duration::from_secs(30);

/// A publish whose body comes one byte every [`DRIP`]; its answer, if any
/// came before the connection ended or [`GIVE_UP`].
async fn slow_body(to: SocketAddr) -> Option<Answer> {
    let head = publish_head(
        to,
        "Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n",
    );
    let mut sending = Sending::start(ATTACKER, to, &head, b"", GIVE_UP).await;
    sending.drip(DRIP, GIVE_UP).await;
    sending.answer().await.0
}

#[test]
fn slow_bodies_from_one_address_leave_slots_for_others() {
    let dir = tempfile::tempdir().unwrap();
    // 128 slots: the slow clients outnumber them.
    let gateway = Gateway::start(
        dir.path(),
        &["--max-concurrent", "128", "--body-timeout-secs", "4"],
    );
    let to = gateway.addr();
    let rt = runtime();
    let started = Instant::now();
    let (probes, slow) = rt.block_on(async {
        let slow: Vec<_> = (0..SLOW).map(|_| tokio::spawn(slow_body(to))).collect();
        // While they drip: the home page and /healthz from another address.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut probes = Vec::new();
        for i in 0..20 {
            let path = if i % 2 == 0 { "/healthz" } else { "/" };
            let answer = get(HONEST, to, path).await;
            probes.push((path, answer.map(|a| a.status)));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut answers = Vec::new();
        for task in slow {
            answers.push(task.await.unwrap());
        }
        (probes, answers)
    });
    let elapsed = started.elapsed();
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for answer in &slow {
        let key = answer.as_ref().map_or("closed".to_owned(), |a| {
            format!("{} {}", a.status, a.code().unwrap_or_default())
        });
        *statuses.entry(key).or_default() += 1;
    }
    eprintln!("probes: {probes:?}\n{SLOW} slow bodies: {statuses:?} in {elapsed:?}");
    assert!(
        probes.iter().all(|(_, status)| *status == Some(200)),
        "{probes:?}"
    );
    for answer in slow.iter().flatten() {
        assert!(
            matches!(answer.status, 408 | 429 | 503),
            "a slow body got {answer:?}"
        );
        if answer.status != 408 {
            assert_eq!(answer.header("retry-after"), Some("1"), "{answer:?}");
        }
    }
    let count = |status: u16| slow.iter().flatten().filter(|a| a.status == status).count();
    assert!(
        count(408) > 0,
        "some slow bodies held a slot, then timed out"
    );
    assert!(
        count(429) > 0,
        "some were refused as over their address's share"
    );
    assert!(
        elapsed < GIVE_UP,
        "every slow body ended in time: {elapsed:?}"
    );
    let refusals = rt.block_on(async {
        (
            refused(to, "client_busy").await,
            refused(to, "body_timeout").await,
        )
    });
    assert!(refusals.0 > 0.0 && refusals.1 > 0.0, "{refusals:?}");
}

#[test]
fn slow_headers_idle_connections_and_too_many_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(
        dir.path(),
        &[
            "--header-timeout-secs",
            "1",
            "--max-connections-per-client",
            "8",
        ],
    );
    let to = gateway.addr();
    let rt = runtime();

    // Headers one byte every 300 ms: closed at the header timeout.
    let (closed_after, answer) = rt.block_on(async {
        let started = Instant::now();
        let mut stream = connect(HONEST, to).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let mut answer = Vec::new();
        loop {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                },
                () = tokio::time::sleep(Duration::from_millis(300)) => {
                    if stream.write_all(b"a").await.is_err() {
                        break;
                    }
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "still open after 10 s"
            );
        }
        (
            started.elapsed(),
            String::from_utf8_lossy(&answer).into_owned(),
        )
    });
    eprintln!("slow headers: closed after {closed_after:?}, answer {answer:?}");
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");

    // 20 idle connections from one address: 8 are taken and closed at the
    // header timeout, the others at once.
    let flood = IdleFlood::start(ATTACKER, to, 20);
    let open = rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        metric(to, "ipsr_gateway_open_connections").await
    });
    // Its own share, and the connection asking.
    assert!(open <= 9.0, "{open} connections open");
    poll(Duration::from_secs(10), || {
        (flood.closed_by_target() >= 20).then_some(())
    })
    .unwrap_or_else(|| panic!("closed: {}", flood.closed_by_target()));
    // Those it kept are closed at the header timeout.
    flood.stop_reopening();
    poll(Duration::from_secs(10), || {
        (flood.open_now() == 0).then_some(())
    })
    .unwrap_or_else(|| panic!("still open: {}", flood.open_now()));
    let (healthz, per_client, header_timeouts) = rt.block_on(async {
        (
            get(HONEST, to, "/healthz").await.map(|a| a.status),
            refused(to, "connections_per_client").await,
            refused(to, "header_timeout").await,
        )
    });
    eprintln!(
        "idle flood: {} opened, {} closed; refused {per_client} at accept, \
         {header_timeouts} at the header timeout",
        flood.opened(),
        flood.closed_by_target()
    );
    assert_eq!(healthz, Some(200));
    assert!(per_client > 0.0);
    // The slow headers and the eight idle connections.
    assert!(header_timeouts >= 9.0, "{header_timeouts}");
}
