//! `cargo bench -p ipsr-gateway --bench range`: what a `Range` request
//! costs the gateway. Adds a 1 GiB file (unixfs-v1-2025: 1024 leaves of
//! 1 MiB under one root; `IPSR_BENCH_RANGE_MIB` changes the size) to a
//! gateway process's node, then prints the gateway's CPU time per request
//! for the last byte (`bytes=-1`) next to a baseline in the same run: one
//! whole 1 MiB leaf (`bytes=0-1048575`). A ranged read descends the DAG by
//! its `blocksizes`, so the last byte costs about what one leaf costs,
//! whatever the file's size (issue 18; `docs/dev/abuse.md`).

#![allow(clippy::unwrap_used)]

#[path = "../tests/procs/mod.rs"]
mod procs;

use std::time::{Duration, Instant};

use ipsr_testkit::{PatternReader, agent_with_timeout, cpu_secs};

const MIB: u64 = 1024 * 1024;
/// Requests per measured range.
const REQUESTS: u32 = 50;

fn main() {
    // `cargo test --benches` runs this without `--bench`; only measure
    // under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let size = std::env::var("IPSR_BENCH_RANGE_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1024)
        * MIB;
    let dir = tempfile::tempdir().unwrap();
    let (mut proc, http, api) = procs::gateway(dir.path(), &[]);
    let pid = proc.child().id();
    let agent = agent_with_timeout(Duration::from_secs(60));

    let started = Instant::now();
    let cid = procs::add_content(&api, PatternReader::new(1, size), "unixfs-v1-2025");
    println!(
        "added {} MiB as {cid} in {:.1} s",
        size / MIB,
        started.elapsed().as_secs_f64()
    );

    let url = format!("{http}/ipfs/{cid}");
    let measure = |range: &str, len: u64| {
        let get = || {
            let (status, _, body) = procs::get_range(&agent, &url, range);
            assert_eq!((status, body.len() as u64), (206, len), "{range}");
        };
        // One warm-up (page cache), then the measured requests.
        get();
        let (cpu, wall) = (cpu_secs(Some(pid)), Instant::now());
        for _ in 0..REQUESTS {
            get();
        }
        let n = f64::from(REQUESTS);
        (
            (cpu_secs(Some(pid)) - cpu) / n * 1000.0,
            wall.elapsed().as_secs_f64() / n * 1000.0,
        )
    };
    let leaf = measure(&format!("bytes=0-{}", MIB - 1), MIB);
    let last = measure("bytes=-1", 1);
    println!(
        "GET /ipfs/{{cid}} of {} MiB, {REQUESTS} requests each, gateway CPU (and wall) a request:",
        size / MIB
    );
    println!(
        "  one whole 1 MiB leaf (bytes=0-{}): {:>7.2} ms CPU  {:>7.2} ms",
        MIB - 1,
        leaf.0,
        leaf.1
    );
    println!(
        "  the last byte (bytes=-1):            {:>7.2} ms CPU  {:>7.2} ms",
        last.0, last.1
    );
    println!(
        "  the last byte costs {:.2}x one leaf (target: about 1, whatever the size)",
        last.0 / leaf.0.max(0.01)
    );
}
