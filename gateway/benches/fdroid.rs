//! `cargo bench -p ipsr-gateway --bench fdroid`: the F-Droid repository of
//! a gateway on its embedded store with 10,000 Android packages
//! (`IPSR_BENCH_PACKAGES` changes the count): how long the first request
//! waits for the index to be built, the size of each index file, and wrk's
//! requests per second for `entry.jar` and `index-v2.json` (unchanged, so
//! served from the build) and for a poll that gets 304, next to nginx
//! serving the same files in the same run (issue 20's target: at least 0.5
//! of nginx when unchanged).
//!
//! Needs `wrk` and `nginx` (`apt-get install wrk nginx-light`).
//! `IPSR_BENCH_SECONDS` changes each wrk run's duration (10).

#![allow(clippy::unwrap_used)]

#[path = "../tests/procs/mod.rs"]
mod procs;
mod wrk;

use std::time::{Duration, Instant};

use ipsr_proto::Platform;
use ipsr_testkit::{agent_with_timeout, free_port};
use wrk::{nginx, wrk_with};

fn main() {
    let Some(secs) = wrk::setup() else { return };
    let packages = std::env::var("IPSR_BENCH_PACKAGES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gateway");
    procs::fill_store_with(&data, packages, |i, r| {
        let mut sha = [0u8; 32];
        sha[..8].copy_from_slice(&(i as u64).to_be_bytes());
        r.platform(Platform::android())
            .code(1 + (i as u64 % 50))
            .size(4_000_000 + i as u64)
            .file_name("app.apk")
            .sha256(sha)
            .summary("An app to measure the F-Droid index with")
            .metadata(|m| {
                m.description = "Lorem ipsum dolor sit amet. ".repeat(10);
                m.license = "GPL-3.0-or-later".into();
                m.categories = vec!["tools".into()];
                m.min_sdk = 24;
                m.target_sdk = 34;
                m.permissions = vec!["android.permission.INTERNET".into()];
                m.signing_cert_sha256 = Some([7; 32]);
            })
    });
    let (_gateway, http, _api) = procs::gateway(&data, &[]);
    let agent = agent_with_timeout(Duration::from_secs(300));
    let get = |path: &str| {
        let started = Instant::now();
        let mut response = agent.get(format!("{http}{path}")).call().unwrap();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap();
        let tag = response.headers()["etag"].to_str().unwrap().to_owned();
        (body, tag, started.elapsed())
    };
    let (_, _, first) = get("/fdroid/repo/entry.jar");
    let (_, _, again) = get("/fdroid/repo/entry.jar");
    println!(
        "{packages} packages: the first request built the index in {:.0} ms; the next took {:.1} ms",
        first.as_secs_f64() * 1000.0,
        again.as_secs_f64() * 1000.0
    );

    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let mut tags = Vec::new();
    for file in ["entry.jar", "index-v2.json", "index-v1.jar"] {
        let (body, tag, _) = get(&format!("/fdroid/repo/{file}"));
        println!("{file:<14} {:>10} bytes", body.len());
        std::fs::write(www.join(file), &body).unwrap();
        tags.push((file, tag));
    }
    let port = free_port();
    let _nginx = nginx(dir.path(), port);
    println!(
        "{:<34} {:>12} {:>12} {:>8} {:>10}",
        "wrk -t1 -c50", "gateway r/s", "nginx r/s", "ratio", "p99 ms"
    );
    for (file, tag) in &tags[..2] {
        for conditional in [false, true] {
            let ours = format!("{http}/fdroid/repo/{file}");
            let theirs = format!("http://127.0.0.1:{port}/{file}");
            // Each server's own ETag (nginx's is its file's time and size).
            let nginx_tag = agent.get(&theirs).call().unwrap().headers()["etag"]
                .to_str()
                .unwrap()
                .to_owned();
            let (ours_h, theirs_h) = (
                format!("If-None-Match: {tag}"),
                format!("If-None-Match: {nginx_tag}"),
            );
            let pick = |h| if conditional { vec![h] } else { Vec::new() };
            let (ours_h, theirs_h) = (pick(ours_h.as_str()), pick(theirs_h.as_str()));
            let _ = wrk_with(&ours, 1, &ours_h);
            let g = wrk_with(&ours, secs, &ours_h);
            let n = wrk_with(&theirs, secs, &theirs_h);
            let label = if conditional {
                format!("{file} (304)")
            } else {
                (*file).to_owned()
            };
            println!(
                "{label:<34} {:>12.0} {:>12.0} {:>8.2} {:>10.2}",
                g.requests_per_sec,
                n.requests_per_sec,
                g.requests_per_sec / n.requests_per_sec,
                g.p99_ms
            );
            assert_eq!(g.errors, 0, "the gateway answered errors");
        }
    }
}
