//! `cargo bench -p ipsr-gateway --bench search`: what searches and listings
//! cost a gateway on its embedded store with 100,000 packages
//! (`IPSR_BENCH_PACKAGES` changes the count). Fills the store, measures in
//! this process a full read of every package for one query (the baseline,
//! `ipsr_node::search::scan`, what every search cost before the catalog),
//! then starts a gateway on the store and prints its CPU time per request
//! for each route next to that baseline (issue 18: under 5 ms for
//! `/?q=word` and `/api/v1/packages?q=word`).

#![allow(clippy::unwrap_used)]

#[path = "../tests/procs/mod.rs"]
mod procs;

use std::time::{Duration, Instant};

use ipsr_testkit::{agent_with_timeout, cpu_secs, dir_bytes};

/// Requests per route.
const REQUESTS: u32 = 200;

fn main() {
    // `cargo test --benches` runs this without `--bench`; only measure
    // under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let packages = std::env::var("IPSR_BENCH_PACKAGES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    procs::fill_store(dir.path(), packages);
    println!(
        "stored {packages} packages in {:.1} s (store {:.0} MiB)",
        started.elapsed().as_secs_f64(),
        dir_bytes(dir.path()) as f64 / 1048576.0
    );

    // The baseline: reading every package, as each search did before.
    let scan_ms = {
        let store = ipsr_node::Store::open(&dir.path().join("store.redb")).unwrap();
        let (cpu, runs) = (cpu_secs(None), 3);
        for _ in 0..runs {
            ipsr_node::search::scan(&store, "camera", 1000).unwrap();
        }
        (cpu_secs(None) - cpu) * 1000.0 / f64::from(runs)
    };
    println!("baseline: a full read for `camera`: {scan_ms:.1} ms CPU");

    // Without the view cache: each request is answered from the index, as
    // one that varies its query would be.
    let (mut proc, http, _api) = procs::gateway(dir.path(), &["--view-cache-ms", "0"]);
    let pid = proc.child().id();
    let agent = agent_with_timeout(Duration::from_secs(60));
    // The node's start-up work (republish walks) settles first.
    std::thread::sleep(Duration::from_secs(5));
    let idle = {
        let cpu = cpu_secs(Some(pid));
        std::thread::sleep(Duration::from_secs(2));
        (cpu_secs(Some(pid)) - cpu) / 2.0
    };
    println!("gateway idle: {:.1} ms CPU per second", idle * 1000.0);
    println!(
        "{:<44} {:>10} {:>10} {:>12}",
        "route", "CPU ms", "wall ms", "vs baseline"
    );
    for route in [
        "/?q=camera",
        "/api/v1/packages?q=camera",
        "/api/v1/packages?q=notes",
        "/api/v1/packages?q=cam",
        "/api/v1/packages?q=camera+notes",
        "/",
        "/api/v1/packages",
        "/api/v1/packages?cursor=980&limit=20",
    ] {
        let url = format!("{http}{route}");
        let get = || {
            let response = agent.get(&url).call().unwrap();
            assert_eq!(response.status(), 200, "{route}");
        };
        get();
        let (cpu, wall) = (cpu_secs(Some(pid)), Instant::now());
        for _ in 0..REQUESTS {
            get();
        }
        let wall = wall.elapsed().as_secs_f64();
        let used = (cpu_secs(Some(pid)) - cpu - idle * wall).max(0.0);
        let n = f64::from(REQUESTS);
        let cpu_ms = used * 1000.0 / n;
        println!(
            "{route:<44} {cpu_ms:>10.2} {:>10.2} {:>11.4}x",
            wall * 1000.0 / n,
            cpu_ms / scan_ms
        );
    }
    drop(proc);
}
