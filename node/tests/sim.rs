//! The network simulator (`ipsr_node::sim`, `docs/dev/simulation.md`) at a
//! small size, so the suite runs it: 250 nodes, each dialling 3 random
//! earlier ones, 20 releases gossiped from random nodes, one forgery
//! injected, every release's content provided in the DHT and looked up
//! from nodes far from its provider. The bench runs the same at 1,000 and
//! 10,000 nodes.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ipsr_node::sim::{self, Config, Outcome, ProvideNear};
use ipsr_testkit::{T0, key, release, releases, tampered};

const NODES: usize = 250;
const RECORDS: usize = 20;
const LOOKUPS: usize = 40;

fn config(seed: u64) -> Config {
    let mut c = Config::new(NODES, seed);
    c.lookups = Some(LOOKUPS);
    // The records' clock (they are created at T0 + seq), a day later.
    c.unix_ms = T0 + 24 * 60 * 60 * 1000;
    c.deadline = Some(Instant::now() + Duration::from_secs(300));
    c
}

fn run(config: Config) -> Outcome {
    let forgery = tampered(&release(&key(99), "6.6.6").seq(1).sign());
    let outcome = sim::run(config, releases(RECORDS), vec![forgery]).unwrap();
    assert!(!outcome.truncated, "the run hit its deadline: {outcome:?}");
    outcome
}

#[test]
fn every_record_reaches_every_node_and_every_provider_is_found() {
    let o = run(config(1));
    let expected = (RECORDS * (NODES - 1)) as u64;
    assert_eq!((o.delivered, o.expected), (expected, expected), "{o:?}");
    assert_eq!((o.lookups_ok, o.lookups), (LOOKUPS, LOOKUPS), "{o:?}");
    assert_eq!(o.lookups_from_records, LOOKUPS, "{o:?}");
    // Each release's provider record sits on the k = 20 closest nodes.
    assert_eq!(
        (o.provider_records, o.provider_refused),
        (20 * RECORDS as u64, 0)
    );
    // The forgery is rejected by the nodes it was sent to and goes no
    // further; valid records are checked once each (the verdict is reused).
    assert_eq!(o.forgeries_held, 0);
    assert!(o.rejected >= 1, "{o:?}");
    assert_eq!(o.signature_checks, RECORDS as u64 + 1);
    assert!(o.duplicates > 0 && o.lookup_hops.p99 >= 1 && o.lookup_ms.p99 > 0);
    assert!(o.gossip_hops.max >= 2 && o.mesh.components == 1, "{o:?}");
    let line = o.to_string();
    assert!(
        line.starts_with(&format!(
            "sim: nodes={NODES} records={RECORDS} delivered={expected}/{expected} \
             provider_lookups_ok={LOOKUPS}/{LOOKUPS} p99_hops="
        )),
        "{line}"
    );
}

#[test]
fn a_seed_gives_the_same_run_and_another_seed_another() {
    let a = run(config(7));
    assert_eq!(a, run(config(7)));
    assert_ne!(a, run(config(8)));
}

#[test]
fn provider_records_put_away_from_the_key_are_not_found() {
    let mut c = config(1);
    c.provide_near = ProvideNear::Opposite;
    let o = run(c);
    // Gossip is untouched; lookups walk to the key's half of the keyspace,
    // and the provider records sit in the other half. A lookup finds the
    // provider only when it happens to ask the provider itself (in 250
    // nodes a lookup asks about a fifth of them).
    assert_eq!(o.delivered, o.expected);
    assert_eq!(o.provider_records, 20 * RECORDS as u64);
    assert_eq!(o.lookups, LOOKUPS);
    assert!(o.lookups_from_records < LOOKUPS / 10, "{o:?}");
    assert!(o.lookups_ok < LOOKUPS / 2, "{o:?}");
}
