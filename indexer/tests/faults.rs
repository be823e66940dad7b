//! Fault tests: Redis stopped and restarted (empty) while records keep
//! arriving; the indexer process killed with `kill -9` mid-batch and
//! restarted; two indexers fed the same records in different orders;
//! indexers resuming from old cursors of a log that was compacted since;
//! the indexer process reading a node that requires its API token.
//! Each ends with Redis holding exactly what the node's store holds. One
//! more files a record in Redis under an id its bytes do not hash to.
//!
//! Every test starts its own processes on free ports and stops them in a
//! drop guard, also when it fails.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Running, TestIndex};
use ipsr_indexer::{Index, RedisIndex, StoreIndex};
use ipsr_node::{ApiToken, Client};
use ipsr_proto::{PackageKey, SignedRecord};
use ipsr_testkit::{
    RedisServer, TIMEOUT, XorShift, cid, free_port, key, redis_url, release, wait_until, yank,
};

/// A history of `authors` × `packages` × 5 versions, with metadata fixes,
/// yanks, restores and CID conflicts; titles change with the versions.
fn history(authors: u8, packages: u8) -> Vec<SignedRecord> {
    const WORDS: [&str; 6] = ["alpha", "beta", "gamma", "delta", "omega", "sigma"];
    let mut out = Vec::new();
    let mut seq = 0;
    for a in 1..=authors {
        let k = key(a);
        for p in 0..packages {
            let package = format!("org.a{a}.pkg{p}");
            for v in 1..=5u64 {
                seq += 1;
                let version = format!("1.{v}.0");
                let title = format!("Pkg {p} {}", WORDS[usize::try_from(v).unwrap()]);
                let r = |seq, c, title: &str| {
                    release(&k, &version)
                        .package(&package)
                        .code(v)
                        .seq(seq)
                        .cid(cid(c))
                        .title(title)
                        .sign()
                };
                out.push(r(seq, u32::try_from(v).unwrap(), &title));
                if v % 2 == 0 {
                    seq += 1;
                    out.push(r(seq, u32::try_from(v).unwrap(), &format!("{title} fixed")));
                }
                if v == 5 && p % 2 == 0 {
                    seq += 1;
                    out.push(yank(&k, &version).package(&package).seq(seq).sign());
                }
                if v == 3 {
                    seq += 1;
                    out.push(r(seq, 1000 + u32::from(p), "repointed"));
                }
            }
        }
    }
    out
}

/// A deterministic shuffle (xorshift).
fn shuffled(mut records: Vec<SignedRecord>, seed: u64) -> Vec<SignedRecord> {
    let mut rng = XorShift::new(seed);
    for i in (1..records.len()).rev() {
        let j = usize::try_from(rng.below(i as u64 + 1)).unwrap();
        records.swap(i, j);
    }
    records
}

/// Redis answers every query as the node's store does.
async fn same_as_store(node: &Client, redis: &RedisIndex, records: &[SignedRecord]) {
    let store = StoreIndex::new(node.store().clone());
    let packages: BTreeSet<PackageKey> = records.iter().map(|r| r.record().package_key()).collect();
    for pk in &packages {
        assert_eq!(
            store.package(pk).await.unwrap(),
            redis.package(pk).await.unwrap(),
            "{pk}"
        );
        assert_eq!(
            store.author(&pk.author).await.unwrap(),
            redis.author(&pk.author).await.unwrap()
        );
    }
    for q in ["pkg", "alpha", "omega", "fixed", "repointed", "org a1"] {
        assert_eq!(
            store.search(q, 1000).await.unwrap(),
            redis.search(q, 1000).await.unwrap(),
            "{q}"
        );
    }
    assert_eq!(
        store.recent(1000).await.unwrap(),
        redis.recent(1000).await.unwrap()
    );
    assert_eq!(
        store.stats().await.unwrap(),
        redis.stats().await.unwrap(),
        "counters exact"
    );
}

/// The dump of a prefix without its cursors (which name the node).
async fn state_dump(index: &RedisIndex) -> Vec<(String, String)> {
    let mut dump = index.dump().await.unwrap();
    dump.retain(|(k, _)| !k.starts_with("cursor:"));
    dump
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart_while_records_arrive() {
    let mut server = RedisServer::start(free_port());
    let test = TestIndex::new(&server.url(), "restart");
    let (_dir, node) = common::node().await;
    let running = Running::start(&node, test.index.clone());
    let records = history(3, 6);
    let third = records.len() / 3;
    let publisher = {
        let (node, records) = (node.clone(), records.clone());
        tokio::spawn(async move {
            for r in records {
                node.publish(r).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    wait_until("a third is indexed", || async {
        running.metrics.cursor.load(Ordering::Relaxed) >= third as u64
    })
    .await;
    server.stop();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let port = server.port;
    let server = RedisServer::start(port);
    tokio::time::timeout(TIMEOUT, publisher)
        .await
        .unwrap()
        .unwrap();
    running.caught_up(&node).await;
    assert!(
        running.metrics.redis_errors.load(Ordering::Relaxed) > 0,
        "the outage was seen"
    );
    same_as_store(&node, &test.index, &records).await;

    // Again while idle: no record arrives, the indexer notices by itself.
    let mut server = server;
    server.stop();
    let server = RedisServer::start(port);
    let expected = StoreIndex::new(node.store().clone()).stats().await.unwrap();
    wait_until("the idle indexer fills the empty Redis again", || async {
        test.index.stats().await.ok() == Some(expected)
    })
    .await;
    same_as_store(&node, &test.index, &records).await;
    drop(test);
    drop(server);
}

/// The indexer binary; killed on drop.
struct Process(Child);

/// Records an indexer process writes per batch: small, so a kill at any
/// moment likely lands inside a batch.
const PROCESS_BATCH: &str = "5";

impl Process {
    fn start(api: &str, redis: &str, prefix: &str) -> Self {
        Self::start_with(api, redis, prefix, &[])
    }

    /// [`Process::start`] with more arguments.
    fn start_with(api: &str, redis: &str, prefix: &str, extra: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_ipsr-indexer"))
            .args([
                "--node",
                api,
                "--redis",
                redis,
                "--prefix",
                prefix,
                "--batch",
                PROCESS_BATCH,
            ])
            .args(extra)
            .env_remove("IPSR_NODE_TOKEN_FILE")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }

    fn kill9(&mut self) {
        let _ = self.0.kill(); // SIGKILL
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_indexer_mid_batch_and_restart() {
    let (_dir, node) = common::node().await;
    let records = history(4, 10);
    for r in &records {
        node.publish(r.clone()).await.unwrap();
    }
    let head = node.store().stats().unwrap().log_head;
    let api = common::api(&node).await;
    let peer = node.peer_id().to_string();
    // The kill must land before the indexer reaches the end, which a busy
    // machine can delay past it: then start over on fresh keys.
    let mut killed = None;
    for attempt in 1..=5 {
        let test = TestIndex::new(&redis_url(), &format!("kill9-{attempt}"));
        let mut process = Process::start(&api, &redis_url(), test.index.prefix());
        wait_until("some batches are in", || async {
            test.index.cursor(&peer).await.unwrap() >= 100
        })
        .await;
        process.kill9();
        let at_kill = test.index.cursor(&peer).await.unwrap();
        if at_kill < head {
            killed = Some(test);
            break;
        }
        eprintln!("attempt {attempt}: the indexer finished ({at_kill} of {head}) before the kill");
    }
    let test = killed.expect("one of 5 kills landed before the end");
    let process = Process::start(&api, &redis_url(), test.index.prefix());
    wait_until("the restarted indexer catches up", || async {
        test.index.cursor(&peer).await.unwrap() >= head
    })
    .await;
    drop(process);
    same_as_store(&node, &test.index, &records).await;
}

/// The indexer process reads a node whose API requires its token (an API
/// off loopback) with `--node-token-file`, the node's own token file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_indexer_process_reads_a_node_that_requires_its_token() {
    let (dir, node) = common::node().await;
    let records = history(1, 3);
    for r in &records {
        node.publish(r.clone()).await.unwrap();
    }
    let head = node.store().stats().unwrap().log_head;
    let (token, file) = ApiToken::load_or_create(dir.path()).unwrap();
    let api = common::api_with_token(&node, token).await;
    let peer = node.peer_id().to_string();
    let test = TestIndex::new(&redis_url(), "token");
    let process = Process::start_with(
        &api,
        &redis_url(),
        test.index.prefix(),
        &["--node-token-file", file.to_str().unwrap()],
    );
    wait_until("the indexer catches up", || async {
        test.index.cursor(&peer).await.unwrap() >= head
    })
    .await;
    drop(process);
    same_as_store(&node, &test.index, &records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_indexers_shuffled_end_equal() {
    let records = history(3, 5);
    let (_d1, node1) = common::node().await;
    let (_d2, node2) = common::node().await;
    for r in shuffled(records.clone(), 0x9e37_79b9_7f4a_7c15) {
        node1.publish(r).await.unwrap();
    }
    for r in shuffled(records.clone(), 0x2545_f491_4f6c_dd1d) {
        node2.publish(r).await.unwrap();
    }
    let one = TestIndex::new(&redis_url(), "shuffle-one");
    let two = TestIndex::new(&redis_url(), "shuffle-two");
    let shared = TestIndex::new(&redis_url(), "shuffle-shared");
    // node1 ─▶ one, node2 ─▶ two; node1 and node2 ─▶ shared, at once.
    let runs = [
        (Running::start(&node1, one.index.clone()), &node1),
        (Running::start(&node2, two.index.clone()), &node2),
        (Running::start(&node1, shared.index.clone()), &node1),
        (Running::start(&node2, shared.index.clone()), &node2),
    ];
    for (run, node) in &runs {
        run.caught_up(node).await;
    }
    same_as_store(&node1, &one.index, &records).await;
    let reference = state_dump(&one.index).await;
    assert!(
        reference.len() > 50,
        "a real keyspace ({} keys)",
        reference.len()
    );
    assert_eq!(
        reference,
        state_dump(&two.index).await,
        "different orders, same keys"
    );
    assert_eq!(
        reference,
        state_dump(&shared.index).await,
        "two writers at once, same keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_keeps_the_newest_whatever_the_batches() {
    // More recent entries than the cap in one batch (the writer adds only
    // the newest `cap` of them), against one record per batch (every entry
    // added, then trimmed): the same keys.
    let records = history(2, 4);
    let cap = 7;
    let whole = TestIndex::with_recent_cap(&redis_url(), "recent-whole", cap);
    let single = TestIndex::with_recent_cap(&redis_url(), "recent-single", cap);
    whole.index.apply(&records).await.unwrap();
    for r in &records {
        single.index.apply(std::slice::from_ref(r)).await.unwrap();
    }
    let recent = |dump: &[(String, String)]| {
        dump.iter()
            .filter(|(k, _)| k.ends_with("recent"))
            .cloned()
            .collect::<Vec<_>>()
    };
    let reference = state_dump(&single.index).await;
    let listed = whole.index.recent(cap * 2).await.unwrap();
    assert_eq!(listed.len(), cap, "recent holds exactly the cap");
    assert_eq!(recent(&reference).len(), 1, "{reference:?}");
    assert_eq!(recent(&state_dump(&whole.index).await), recent(&reference));
    assert_eq!(state_dump(&whole.index).await, reference);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_word_leaves_the_word_list_with_its_last_package() {
    let k = key(9);
    let rel = |package, version, seq, title| {
        release(&k, version)
            .package(package)
            .code(seq)
            .seq(seq)
            .cid(cid(1))
            .title(title)
            .sign()
    };
    let test = TestIndex::new(&redis_url(), "words");
    let words = |dump: Vec<(String, String)>| {
        dump.into_iter()
            .filter(|(key, _)| key.contains("words:{ze}"))
            .map(|(_, v)| v)
            .collect::<String>()
    };
    test.index
        .apply(&[
            rel("org.a.one", "1.0.0", 1, "Zebra notes"),
            rel("org.a.two", "1.0.0", 2, "Zebra maps"),
        ])
        .await
        .unwrap();
    assert!(words(state_dump(&test.index).await).contains("zebra"));
    assert_eq!(test.index.search("zeb", 10).await.unwrap().len(), 2);
    // One package drops the word: it stays listed for the other.
    test.index
        .apply(&[rel("org.a.one", "1.1.0", 3, "Plain notes")])
        .await
        .unwrap();
    assert!(words(state_dump(&test.index).await).contains("zebra"));
    assert_eq!(test.index.search("zeb", 10).await.unwrap().len(), 1);
    // The last one drops it: gone from the list and from search.
    test.index
        .apply(&[rel("org.a.two", "1.1.0", 4, "Plain maps")])
        .await
        .unwrap();
    assert!(!words(state_dump(&test.index).await).contains("zebra"));
    assert!(test.index.search("zeb", 10).await.unwrap().is_empty());
    assert_eq!(test.index.search("pla", 10).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn indexers_resuming_from_old_cursors_of_a_compacted_log_end_like_a_fresh_one() {
    // Three stages of records; records of a later stage supersede many of
    // an earlier one's, so their log entries are compacted (below the old
    // cursors and above them).
    let k = key(1);
    let fix = |seq: u64| {
        release(&k, "1.1.0")
            .package("org.a1.pkg0")
            .code(1)
            .seq(seq)
            .cid(cid(1))
            .title(format!("Pkg 0 churn {seq}"))
            .sign()
    };
    // Two records of one release with one seq, the lower first: the node
    // logs both (an equivocation every consumer must see).
    let twins = {
        let v = |t: &str| release(&k, "9.0.0").seq(500).cid(cid(9)).title(t);
        let (a, b) = (v("twin a").sign(), v("twin b").sign());
        if a.order(&b).is_lt() { [a, b] } else { [b, a] }
    };
    let stages: Vec<Vec<SignedRecord>> = vec![
        history(2, 3),
        (100..130).map(fix).chain([twins[0].clone()]).collect(),
        (200..230)
            .map(fix)
            .chain([
                twins[1].clone(),
                yank(&k, "1.1.0").package("org.a1.pkg0").seq(300).sign(),
            ])
            .collect(),
    ];
    let (_dir, node) = common::node().await;
    let api = common::api(&node).await;
    // After each stage (and before the first), an indexer reads the log
    // to its head and stops there.
    let mut tests = vec![TestIndex::new(&redis_url(), "compacted-0")];
    let mut heads = vec![0];
    for (i, stage) in stages.iter().enumerate() {
        for r in stage {
            node.publish(r.clone()).await.unwrap();
        }
        let test = TestIndex::new(&redis_url(), &format!("compacted-{}", i + 1));
        let run = Running::start_http(&api, test.index.clone());
        run.caught_up(&node).await;
        drop(run);
        heads.push(node.store().stats().unwrap().log_head);
        tests.push(test);
    }
    let stats = node.store().stats().unwrap();
    // Held records, plus the witness of the equivocation.
    assert_eq!(stats.log_entries, stats.records + 1, "{stats:?}");
    assert!(stats.log_head >= stats.log_entries + 60, "{stats:?}");

    // Each resumes from its old cursor; one more starts from nothing.
    let fresh = TestIndex::new(&redis_url(), "compacted-fresh");
    let runs: Vec<Running> = tests
        .iter()
        .chain([&fresh])
        .map(|t| Running::start_http(&api, t.index.clone()))
        .collect();
    for run in &runs {
        run.caught_up(&node).await;
    }
    let records: Vec<SignedRecord> = stages.concat();
    same_as_store(&node, &fresh.index, &records).await;
    let state = StoreIndex::new(node.store().clone());
    let twin = state
        .release(&twins[0].release_key())
        .await
        .unwrap()
        .unwrap();
    assert!(twin.is_equivocated());
    assert_eq!(
        fresh.index.release(&twins[0].release_key()).await.unwrap(),
        Some(twin)
    );
    let reference = state_dump(&fresh.index).await;
    for (test, head) in tests.iter().zip(&heads) {
        assert_eq!(
            state_dump(&test.index).await,
            reference,
            "resumed from cursor {head}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_read_while_it_is_replaced_is_whole() {
    // A writer re-signs one release again and again (each record replaces
    // the last, which leaves the record hash); readers of the release, of
    // recent and of the package never see a row without its records.
    let k = key(11);
    let test = TestIndex::new(&redis_url(), "read-while-replaced");
    let index = std::sync::Arc::new(test.index.clone());
    let first = release(&k, "1.0.0").code(1).seq(1).sign();
    index.apply(std::slice::from_ref(&first)).await.unwrap();
    let rkey = first.release_key();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (index, stop) = (index.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seq = 2;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = release(&k, "1.0.0").code(1).seq(seq).sign();
                index.apply(&[r]).await.unwrap();
                seq += 1;
                // 1,000 replacements a second of one release: a hundred
                // times what an author may sustain (10/s, node.md).
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            seq
        })
    };
    for _ in 0..2000 {
        let state = index.release(&rkey).await.expect("a whole release");
        assert!(state.is_some_and(|s| s.release().is_some()));
        assert_eq!(index.recent(5).await.expect("whole recent").len(), 1);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(
        written > 20,
        "the writer replaced the release {written} times"
    );
}

/// The name of `pk`'s key `kind` (`pkg`, `rel`, `rec`; `docs/redis.md`,
/// section 1) under `index`'s prefix, for tests that write Redis directly.
fn key_of(index: &RedisIndex, kind: &str, pk: &PackageKey) -> String {
    format!("{}{kind}:{{{}/{}}}", index.prefix(), pk.author, pk.package)
}

/// A connection of its own to the Redis at `url`, to write behind the
/// index's back.
async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// Records read back from Redis are decoded once and kept by record id
/// (`ipsr_node::decoded`), shared with the node's store. Redis is shared
/// storage, so a record whose bytes do not hash to the id they are filed
/// under (here: a release row pointed at a made-up id, whose `rec:` field
/// holds another record's bytes) must be read as those bytes say, and
/// never kept under the made-up id.
#[tokio::test]
async fn a_record_filed_in_redis_under_another_id_is_never_kept_under_it() {
    let url = redis_url();
    let test = TestIndex::new(&url, "tamper");
    let genuine = release(&key(90), "1.0.0").package("org.tamper.app").sign();
    let pk = genuine.record().release_key().package_key();
    test.index
        .apply(std::slice::from_ref(&genuine))
        .await
        .unwrap();

    // File the genuine bytes under a made-up id, and point the row at it.
    let made_up = ipsr_proto::RecordId::from_bytes([0x5a_u8; 32]);
    let (rel, rec) = (
        key_of(&test.index, "rel", &pk),
        key_of(&test.index, "rec", &pk),
    );
    let mut conn = raw_connection(&url).await;
    let row: String = redis::cmd("HGET")
        .arg(&rel)
        .arg("1.0.0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let genuine_hex = genuine.id().to_string();
    assert!(row.contains(&genuine_hex), "row {row}");
    let _: i64 = redis::cmd("HSET")
        .arg(&rel)
        .arg("1.0.0")
        .arg(row.replace(&genuine_hex, &made_up.to_string()))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(&rec)
        .arg(made_up.to_string())
        .arg(genuine.to_bytes())
        .query_async(&mut conn)
        .await
        .unwrap();

    // Read twice: the bytes are what they are, and the made-up id never
    // names them in the process's decoded records.
    for _ in 0..2 {
        let state = test.index.package(&pk).await.unwrap().unwrap();
        let read = state.releases().next().unwrap().release().unwrap().id();
        assert_eq!(read, genuine.id());
        let kept = ipsr_node::decoded::get_or_decode(made_up, b"not a record", |b| {
            SignedRecord::from_trusted_storage(b)
        });
        assert!(kept.is_err(), "a record was kept under the made-up id");
    }
}

/// A package read again is answered from the state read before only while
/// its `hash` in Redis is the one that state was read under: what another
/// writer (another gateway's indexer) adds or yanks is seen on the next
/// read, and keys changed under an unchanged hash are not read at all.
#[tokio::test]
async fn a_package_read_again_is_the_state_its_hash_in_redis_names() {
    use ipsr_indexer::RedisConfig;

    let url = redis_url();
    let test = TestIndex::new(&url, "kept");
    let mut config = RedisConfig::new(&url);
    config.prefix = test.index.prefix().to_owned();
    let other_writer = RedisIndex::open(&config).unwrap();
    let k = key(91);
    let first = release(&k, "1.0.0").package("org.kept.app").seq(1).sign();
    let pk = first.record().release_key().package_key();
    test.index
        .apply(std::slice::from_ref(&first))
        .await
        .unwrap();
    let versions = |state: &ipsr_proto::PackageState| -> Vec<(String, bool)> {
        state
            .releases()
            .map(|r| (r.key().version.to_string(), r.yank().is_some()))
            .collect()
    };
    // Both reads the gateway makes, which must agree (the one with the
    // identity first: it finds the state kept, or not, as the last read
    // left it).
    let read_both = async |index: &RedisIndex| {
        let with_identity = index.package_with_identity(&pk).await;
        let alone = index.package(&pk).await;
        match (alone, with_identity) {
            (Ok(a), Ok((b, identity))) => {
                assert_eq!(identity.author(), &pk.author);
                let (a, b) = (a.unwrap(), b.unwrap());
                assert_eq!(versions(&a), versions(&b));
                Ok(a)
            }
            (Err(a), Err(_)) => Err(a),
            (a, b) => panic!("the reads disagree: {a:?} and {b:?}"),
        }
    };
    let read = read_both(&test.index).await.unwrap();
    assert_eq!(versions(&read), [("1.0.0".to_owned(), false)]);

    // Another writer adds a release, then yanks the first: each shows.
    let changes = [
        (
            release(&k, "1.1.0").package("org.kept.app").seq(2).sign(),
            [("1.0.0".to_owned(), false), ("1.1.0".to_owned(), false)],
        ),
        (
            yank(&k, "1.0.0").package("org.kept.app").seq(3).sign(),
            [("1.0.0".to_owned(), true), ("1.1.0".to_owned(), false)],
        ),
    ];
    let mut read = read;
    for (record, expected) in changes {
        other_writer
            .apply(std::slice::from_ref(&record))
            .await
            .unwrap();
        read = read_both(&test.index).await.unwrap();
        assert_eq!(versions(&read), expected);
    }

    // The records removed under the same hash: the kept state answers.
    let (pkg, rec) = (
        key_of(&test.index, "pkg", &pk),
        key_of(&test.index, "rec", &pk),
    );
    let mut conn = raw_connection(&url).await;
    let _: i64 = redis::cmd("DEL")
        .arg(&rec)
        .query_async(&mut conn)
        .await
        .unwrap();
    let again = read_both(&test.index).await.unwrap();
    assert_eq!(versions(&again), versions(&read));
    // A reader that never read it rebuilds from the keys, and finds them
    // broken; so does this one once the hash moves.
    assert!(read_both(&other_writer).await.is_err());
    let _: i64 = redis::cmd("HSET")
        .arg(&pkg)
        .arg("hash")
        .arg("0".repeat(64))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(read_both(&test.index).await.is_err());
}
