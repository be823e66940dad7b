//! Record churn: one author posts records that replace each other, for one
//! release, as fast as the gateway's node API takes them. Each is a valid,
//! signed record (keys cost nothing), so only limits and compaction stand
//! between it and every node's disk.
//!
//! ```text
//!   churning author ──POST /v1/records──▶ gateway ──gossip──▶ peer (ipsr-node)
//!   honest author ────POST /v1/records──▶ peer ────gossip──▶ gateway
//! ```
//!
//! Both run the shipped defaults: an author's records are taken at 10 a
//! second after a burst of 200; past that a publish gets `429
//! author_rate_limited` and nothing is stored or gossiped. Bounds asserted:
//! each node's log holds one entry per record held (the replaced ones are
//! compacted), the peer kept no more of the churn than the gateway passed
//! on, each data dir grows by less than 1 MiB, and an honest author's
//! release still arrives.

use std::time::{Duration, Instant};

use ipsr_proto::AuthorKey;
use ipsr_testkit::{agent, dir_bytes, key, release, wait_for};
use serde_json::Value;

use crate::{Gateway, Node};

/// Records posted at most, and for at most this long.
const POSTS: u64 = 1000;
const POSTING: Duration = Duration::from_secs(30);

fn get(url: &str) -> (u16, Value) {
    let mut response = agent().get(url).call().unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn post(api: &str, record: &ipsr_proto::SignedRecord) -> (u16, Value) {
    let mut response = agent()
        .post(format!("{api}/v1/records"))
        .header("content-type", "application/octet-stream")
        .send(record.to_bytes())
        .unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

fn status(api: &str) -> Value {
    let (code, json) = get(&format!("{api}/v1/status"));
    assert_eq!(code, 200, "{json}");
    json
}

fn number(json: &Value, field: &str) -> u64 {
    json[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {json}"))
}

/// Record `seq` of the churn: one release, a description as long as a
/// record may carry (4 000 bytes), each seq replacing the one before.
fn churn(key: &AuthorKey, seq: u64) -> ipsr_proto::SignedRecord {
    release(key, "1.0.0")
        .package("com.example.churn")
        .seq(seq)
        .metadata(|m| m.description = format!("{seq:>8} ").repeat(400))
        .sign()
}

/// Whether the node at `api` holds a release of `author`'s package.
fn holds(api: &str, author: &AuthorKey, package: &str) -> bool {
    let url = format!("{api}/v1/packages/{}/{package}", author.author_id());
    get(&url).0 == 200
}

#[test]
fn a_churning_author_is_throttled_and_leaves_the_logs_and_disks_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(dir.path(), &[]);
    let peer = Node::start(dir.path(), "peer", &gateway.p2p, &[]);

    // The two are joined when a first record goes across by gossip.
    let first = release(&key(1), "1.0.0")
        .package("org.example.first")
        .sign();
    wait_for("the gateway has a peer", || {
        (number(&status(&gateway.api), "peers") > 0).then_some(())
    });
    assert_eq!(post(&gateway.api, &first).0, 200);
    wait_for("the first record reaches the peer", || {
        holds(&peer.api, &key(1), "org.example.first").then_some(())
    });
    let before = (dir_bytes(&gateway.data), dir_bytes(&peer.data));

    let churner = key(2);
    let (mut taken, mut refused) = (0u64, 0u64);
    let started = Instant::now();
    for seq in 1..=POSTS {
        if started.elapsed() > POSTING {
            break;
        }
        match post(&gateway.api, &churn(&churner, seq)) {
            (200, answer) => {
                assert_eq!(answer["change"], if seq == 1 { "new" } else { "replaced" });
                taken += 1;
            }
            (429, answer) => {
                assert_eq!(answer["code"], "author_rate_limited", "{answer}");
                refused += 1;
            }
            (code, answer) => panic!("{code} {answer}"),
        }
    }
    let posting = started.elapsed();

    // An honest author publishes on the peer; it reaches the gateway.
    let honest = key(3);
    let release_of_honest = release(&honest, "2.0.0")
        .package("org.example.honest")
        .sign();
    assert_eq!(post(&peer.api, &release_of_honest).0, 200);
    wait_for("the honest release reaches the gateway", || {
        holds(&gateway.api, &honest, "org.example.honest").then_some(())
    });
    wait_for("the churn reaches the peer", || {
        holds(&peer.api, &churner, "com.example.churn").then_some(())
    });

    let (g, p) = (status(&gateway.api), status(&peer.api));
    let after = (dir_bytes(&gateway.data), dir_bytes(&peer.data));
    println!(
        "churn: {} posted in {posting:?}: {taken} taken, {refused} refused (429); \
         gateway log_head {} log_entries {} records {}; peer log_head {} log_entries {} \
         records {}; data dirs {} → {} bytes (gateway), {} → {} bytes (peer)",
        taken + refused,
        g["log_head"],
        g["log_entries"],
        g["records"],
        p["log_head"],
        p["log_entries"],
        p["records"],
        before.0,
        after.0,
        before.1,
        after.1,
    );

    // The author got its burst and its rate, not every post.
    let budget = 200 + 10 * (posting.as_secs() + 1);
    assert!(
        taken >= 1 && taken <= budget,
        "{taken} taken, budget {budget}"
    );
    if taken + refused > budget {
        assert!(refused > 0);
    }
    let throttled = gateway.metric("ipsr_records_throttled_total{source=\"local\"}");
    assert_eq!(throttled, refused);

    // Each log holds one entry per record held (three releases), however
    // many replaced each other; positions went on counting.
    for (name, s) in [("gateway", &g), ("peer", &p)] {
        assert_eq!(number(s, "records"), 3, "{name}: {s}");
        assert_eq!(number(s, "log_entries"), 3, "{name}: {s}");
    }
    assert_eq!(number(&g, "log_head"), taken + 2);
    let (code, log) = get(&format!("{}/v1/log?after=0&limit=1000", gateway.api));
    assert_eq!(code, 200);
    assert_eq!(log["entries"].as_array().unwrap().len(), 3, "{log}");
    // The peer kept no more of the churn than the gateway passed on.
    assert!(number(&p, "log_head") <= taken + 2, "peer {p}");

    // The disks: freed pages are reused; a log of every post would hold
    // `taken` × 4 KB and more.
    let bound = 1024 * 1024;
    assert!(after.0 < before.0 + bound, "gateway {before:?} → {after:?}");
    assert!(after.1 < before.1 + bound, "peer {before:?} → {after:?}");
}
