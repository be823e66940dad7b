//! Rendered views: the micro-cache keeps each JSON view under the request
//! as sent, so a client can make one entry per spelling of a listing's
//! query. Thousands of large spellings, several times the cache's bound,
//! leave it and the gateway's resident memory within that bound; the
//! spellings are all answered, and honest views still are.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::wire::{ATTACKER, HONEST, connect, get, metric, read_answer, runtime};
use crate::{Gateway, procs};

const MIB: u64 = 1024 * 1024;
/// The cache's bound, `--view-cache-mib` (64 by default: a smaller one
/// fills with fewer requests).
const CAPACITY_MIB: u64 = 16;
const CAPACITY: u64 = CAPACITY_MIB * MIB;
/// How long each spelling's `platform` is (a request head may have 32 KiB).
const SPELLING: usize = 16 * 1024;
/// Spellings sent: 4,000 × 16 KiB, 62 MiB of keys were all kept.
const REQUESTS: usize = 4_000;
/// Keep-alive connections they are sent over.
const CONNECTIONS: usize = 4;
/// How much the gateway's resident memory may grow meanwhile: the cache's
/// bytes take up to 1.5 times as much memory (the allocator rounds each
/// large key up to its size classes and whole pages: 20 KiB for these),
/// plus what the connections and the runtime hold; far below what keeping
/// every spelling would take (about 100 MiB, measured).
const RSS_BOUND_KIB: u64 = CAPACITY_MIB * 1024 * 3 / 2 + 8 * 1024;

/// A listing spelled with a `platform` of [`SPELLING`] bytes unique to `i`:
/// a view of its own, empty (no package has that platform).
fn spelling(i: usize) -> String {
    let pad = "x".repeat(SPELLING - 8);
    format!("/api/v1/packages?limit=1&platform={pad}{i:08}")
}

/// Sends the spellings `from..to` one after another over one keep-alive
/// connection; returns how many were answered 200.
async fn send(gateway: SocketAddr, from: usize, to: usize) -> usize {
    let stream = connect(ATTACKER, gateway).await;
    let (mut reader, mut writer) = stream.into_split();
    let mut ok = 0;
    for i in from..to {
        let request = format!("GET {} HTTP/1.1\r\nHost: gateway\r\n\r\n", spelling(i));
        writer.write_all(request.as_bytes()).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut reader))
            .await
            .expect("an answer within 10 s")
            .expect("an answer");
        assert_eq!(answer.status, 200, "{answer:?}");
        let view: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(view["packages"].as_array().map(Vec::len), Some(0));
        ok += 1;
    }
    ok
}

#[test]
fn spellings_of_views_stay_within_the_caches_bound() {
    let dir = tempfile::tempdir().unwrap();
    procs::fill_store(&dir.path().join("gateway"), 100);
    let mut gateway = Gateway::start(
        dir.path(),
        &[
            "--rate-limit",
            "0",
            "--view-cache-mib",
            &CAPACITY_MIB.to_string(),
        ],
    );
    let to = gateway.addr();
    let rt = runtime();

    // An honest view, and the author it names.
    let listing = rt
        .block_on(get(HONEST, to, "/api/v1/packages?limit=1"))
        .expect("an answer");
    assert_eq!(listing.status, 200);
    let listing: serde_json::Value = serde_json::from_slice(&listing.body).unwrap();
    let package = format!(
        "/api/v1/package/{}/{}",
        listing["packages"][0]["author"].as_str().unwrap(),
        listing["packages"][0]["package"].as_str().unwrap()
    );
    let honest = rt.block_on(get(HONEST, to, &package)).expect("an answer");
    assert_eq!(honest.status, 200);
    // A few spellings first, so the allocator's and the runtime's own
    // growth is in the baseline.
    assert_eq!(rt.block_on(send(to, REQUESTS, REQUESTS + 200)), 200);
    let rss = gateway.peak_rss();
    let before = rss.before;
    let started = Instant::now();
    let answered = rt.block_on(async {
        let per = REQUESTS / CONNECTIONS;
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|c| tokio::spawn(send(to, c * per, (c + 1) * per)))
            .collect();
        let mut answered = 0;
        for task in tasks {
            answered += task.await.unwrap();
        }
        answered
    });
    let elapsed = started.elapsed();
    let peak = rss.stop();
    let (bytes, views) = rt.block_on(async {
        (
            metric(to, "ipsr_gateway_view_cache_bytes").await,
            metric(to, "ipsr_gateway_view_cache_views").await,
        )
    });
    eprintln!(
        "{REQUESTS} spellings of {SPELLING} B in {elapsed:?}: RSS {before} KiB before, \
         {peak} KiB at most; the cache holds {views} views, {bytes} B"
    );
    assert_eq!(answered, REQUESTS, "every spelling is answered");
    // The cache filled up to its bound, and no further.
    assert!(bytes <= CAPACITY as f64, "{bytes} B kept");
    assert!(bytes > (CAPACITY / 2) as f64, "only {bytes} B kept");
    assert!(
        views <= (CAPACITY / SPELLING as u64) as f64,
        "{views} views"
    );
    assert!(
        peak.saturating_sub(before) < RSS_BOUND_KIB,
        "resident memory grew by {} KiB",
        peak - before
    );

    // Honest views are still answered, as before.
    let again = rt.block_on(get(HONEST, to, &package)).expect("an answer");
    assert_eq!(again.status, 200);
    assert_eq!(again.body, honest.body);
}
