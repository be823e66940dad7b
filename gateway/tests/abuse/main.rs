//! The abuse suite: each attack of a hostile client or peer, run against a
//! real `ipsr-gateway` process (and `ipsr-node`s where a peer attacks) on
//! loopback, bounded in count and time. Each test asserts the bound that
//! holds (resident memory, request slots, disk, status codes) and that
//! honest requests are still answered. Every process is killed when its
//! test ends, also on failure.
//!
//! One module per surface; `docs/dev/abuse.md` lists the attacks and the
//! bounds.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

#[path = "../procs/mod.rs"]
mod procs;

mod body;
mod churn;
mod disk;
mod proxy;
mod range;
mod search;
mod slots;
mod views;
mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ipsr_testkit::{Proc, cpu_secs, rss_kib};

/// A gateway process on loopback with its own data dir.
pub(crate) struct Gateway {
    /// Its HTTP base URL, `http://127.0.0.1:PORT`.
    pub http: String,
    /// Its libp2p address with `/p2p/…`, for nodes to bootstrap from.
    pub p2p: String,
    /// The base URL of its node API (`docs/node-api.md`).
    pub api: String,
    pub proc: Proc,
    pub data: PathBuf,
}

impl Gateway {
    /// Starts `ipsr-gateway` with its data dir under `dir` and `extra`
    /// arguments, and waits until it serves HTTP.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        let data = dir.join("gateway");
        let mut args = procs::node_args(&data);
        args.extend(["--http".into(), "127.0.0.1:0".into()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_ipsr-gateway"));
        let proc = Proc::spawn(Command::new(bin).args(&args));
        let p2p = proc.expect_line("listening on: ");
        let api = proc.expect_line("api: ");
        let http = proc.expect_line("gateway: ");
        let http = http.split_whitespace().next().unwrap().to_owned();
        Self {
            http,
            p2p,
            api,
            proc,
            data,
        }
    }

    /// Its resident memory now, in KiB.
    pub fn rss_kib(&mut self) -> u64 {
        rss_kib(Some(self.proc.child().id())).expect("the gateway runs")
    }

    /// Starts sampling its resident memory ([`PeakRss`]), from its
    /// resident memory now.
    pub fn peak_rss(&mut self) -> PeakRss {
        let from = self.rss_kib();
        PeakRss::start(self.proc.child().id(), from)
    }

    /// The CPU time it used so far, in seconds.
    pub fn cpu_secs(&mut self) -> f64 {
        cpu_secs(Some(self.proc.child().id()))
    }

    /// Adds the file `body` yields to its node (`POST /v1/content` with
    /// `profile`), streamed, and returns its CID.
    pub fn add(&self, body: impl std::io::Read + 'static, profile: &str) -> String {
        procs::add_content(&self.api, body, profile)
    }

    /// Its `host:port`, for raw TCP clients.
    pub fn authority(&self) -> &str {
        self.http.trim_start_matches("http://")
    }

    /// The value of `metric` (a full name with labels) in its metrics
    /// (the gateway's and its node's), 0 when absent.
    pub fn metric(&self, metric: &str) -> u64 {
        let text = ipsr_testkit::agent()
            .get(format!("{}/metrics", self.http))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(metric)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    }

    /// Its HTTP address, for raw TCP clients.
    pub fn addr(&self) -> SocketAddr {
        self.authority()
            .parse()
            .expect("the gateway prints host:port")
    }
}

/// The highest resident memory of a process while an attack runs, sampled
/// every 20 ms on a thread of its own until [`stop`](Self::stop)ped.
pub(crate) struct PeakRss {
    /// What it was when sampling started, in KiB.
    pub before: u64,
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<()>,
    pid: u32,
}

impl PeakRss {
    fn start(pid: u32, before: u64) -> Self {
        let (peak, done) = (
            Arc::new(AtomicU64::new(before)),
            Arc::new(AtomicBool::new(false)),
        );
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Some(kib) = rss_kib(Some(pid)) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Self {
            before,
            peak,
            done,
            sampler,
            pid,
        }
    }

    /// Stops sampling; the highest resident memory seen (and now), in KiB.
    pub fn stop(self) -> u64 {
        self.done.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap();
        let now = rss_kib(Some(self.pid)).unwrap_or(0);
        self.peak.load(Ordering::Relaxed).max(now)
    }
}

/// An `ipsr-node` process on loopback with its own data dir: a peer of the
/// gateway.
pub(crate) struct Node {
    /// The base URL of its node API.
    pub api: String,
    pub proc: Proc,
    pub data: PathBuf,
}

impl Node {
    /// Starts `ipsr-node run` with its data dir `dir/name`, joining through
    /// `bootstrap`, with `extra` arguments; waits until it serves its API.
    pub fn start(dir: &Path, name: &str, bootstrap: &str, extra: &[&str]) -> Self {
        let data = dir.join(name);
        let mut args = vec!["run".to_owned()];
        args.extend(procs::node_args(&data));
        args.extend(["--bootstrap".into(), bootstrap.into()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let proc = Proc::spawn(Command::new(procs::binary("ipsr-node")).args(&args));
        let api = proc.expect_line("api: ");
        Self { api, proc, data }
    }
}
