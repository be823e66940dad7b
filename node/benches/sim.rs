//! Benchmark: a simulated IPSR network of thousands of nodes in this one
//! process (`ipsr_node::sim`, `docs/dev/simulation.md`): DHT joins, the
//! gossipsub mesh, records gossiped through every node's real service and
//! checked by `ipsr-proto`, provider records and lookups from far away.
//!
//! ```sh
//! cargo bench -p ipsr-node --bench sim -- --nodes 1000 --records 100 --seed 1
//! cargo bench -p ipsr-node --bench sim -- --nodes 10000 --records 100 --seed 1
//! ```
//!
//! It prints each phase's figures and wall time, the memory per node, and
//! ends with the line
//! `sim: nodes=N records=R delivered=D/T provider_lookups_ok=L/M p99_hops=H p99_ms=P`.
//! It asserts nothing; it stops by itself (`--max-secs`, 1200 by default).

use std::time::{Duration, Instant};

use clap::Parser;
use ipsr_node::sim::{Config, Sim, resident_bytes};
use ipsr_testkit::{cpu_secs, key, release, releases, tampered};

#[derive(Debug, Parser)]
#[command(about = "A simulated IPSR network in one process")]
struct Args {
    /// Nodes.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Records to publish (releases, each of its own content).
    #[arg(long, default_value_t = 100)]
    records: usize,
    /// Forged records to inject (each must be rejected at the first hop).
    #[arg(long, default_value_t = 0)]
    forgeries: usize,
    /// Provider lookups (default: one per record).
    #[arg(long)]
    lookups: Option<usize>,
    /// The seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Earlier nodes each node dials when it joins.
    #[arg(long, default_value_t = 3)]
    bootstrap: usize,
    /// Check every copy's signature instead of each distinct message once.
    #[arg(long)]
    verify_every_copy: bool,
    /// No IHAVE/IWANT (push along the mesh only).
    #[arg(long)]
    no_lazy_gossip: bool,
    /// Stop after this many seconds of wall time, whatever is left.
    #[arg(long, default_value_t = 1200)]
    max_secs: u64,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A phase's start: wall and CPU clocks.
struct Clock(Instant, f64);

impl Clock {
    fn start() -> Self {
        Self(Instant::now(), cpu_secs(None))
    }
}

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} s wall, {:.2} s cpu",
            self.0.elapsed().as_secs_f64(),
            cpu_secs(None) - self.1
        )
    }
}

fn peak_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Clock::start();
    let mut config = Config::new(args.nodes, args.seed);
    config.bootstrap = args.bootstrap;
    config.lookups = args.lookups;
    config.verify_every_copy = args.verify_every_copy;
    config.lazy_gossip = !args.no_lazy_gossip;
    config.deadline = Some(started.0 + Duration::from_secs(args.max_secs));
    let records = releases(args.records);
    // Releases of another author, their signatures broken.
    let forgeries: Vec<Vec<u8>> = (0..args.forgeries)
        .map(|i| tampered(&release(&key(99), &format!("6.6.{i}")).seq(1).sign()))
        .collect();
    let rss_before = resident_bytes().unwrap_or(0);
    println!(
        "sim: {} nodes, {} records, {} forgeries, seed {} (release build: {})",
        args.nodes,
        args.records,
        args.forgeries,
        args.seed,
        !cfg!(debug_assertions)
    );

    let t = Clock::start();
    let mut sim = Sim::new(config, records, forgeries)?;
    println!("identities and connections: {t}");

    let t = Clock::start();
    sim.join();
    let o = sim.outcome();
    println!(
        "join: {}; routing tables {:.1} peers a node; {} DHT requests",
        t,
        o.table_entries as f64 / args.nodes as f64,
        o.dht_requests
    );

    let t = Clock::start();
    let mesh = sim.form_mesh();
    println!(
        "mesh: {}; {} heartbeats, {} links, degree {}..{}, {} component(s)",
        t, mesh.rounds, mesh.links, mesh.min_degree, mesh.max_degree, mesh.components
    );

    let t = Clock::start();
    sim.gossip();
    let o = sim.outcome();
    println!(
        "gossip: {}, {} ms virtual; delivered {}/{} ({} by IWANT); hops {}; ms {}",
        t, o.gossip_span_ms, o.delivered, o.expected, o.pulled, o.gossip_hops, o.gossip_ms
    );
    println!(
        "gossip: {} duplicates dropped, {} rate-limited, {} rejected, {} forgeries held, {} signature checks",
        o.duplicates, o.rate_limited, o.rejected, o.forgeries_held, o.signature_checks
    );

    let t = Clock::start();
    sim.provide();
    let o = sim.outcome();
    println!(
        "provide: {}; {} provider records kept, {} refused",
        t, o.provider_records, o.provider_refused
    );

    let t = Clock::start();
    sim.look_up();
    let o = sim.outcome();
    println!(
        "lookups: {}; {}/{} found the provider ({} through a provider record); first provider at hop {}; ms {}; {} DHT requests in all",
        t,
        o.lookups_ok,
        o.lookups,
        o.lookups_from_records,
        o.lookup_hops,
        o.lookup_ms,
        o.dht_requests
    );

    let rss_after = resident_bytes().unwrap_or(0);
    let per_node = rss_after.saturating_sub(rss_before) / args.nodes.max(1) as u64;
    println!(
        "memory: rss {:.1} MiB -> {:.1} MiB (peak {:.1} MiB): {:.1} KiB a node",
        mib(rss_before),
        mib(rss_after),
        mib(peak_bytes().unwrap_or(0)),
        per_node as f64 / 1024.0
    );
    if o.truncated {
        println!(
            "stopped at --max-secs {}: the figures are partial",
            args.max_secs
        );
    }
    println!("total: {started}");
    println!("{o}");
    Ok(())
}
