//! In-process tests of package content across nodes: DHT providers,
//! Bitswap, parallel download, bad providers, restarts, pins bounded by
//! the stated size, the store's limit and eviction.
//!
//! ```text
//!   a ─ b ─ c      a adds a file; c, which knows only b, finds a through
//!                  the DHT and downloads from it
//! ```

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use ipsr_content::blockstore::BlockstoreError;
use ipsr_content::fetch::FetchError;
use ipsr_content::unixfs::Profile;
use ipsr_content::{ContentError, PinSpec};
use ipsr_node::{Client, Config};
use ipsr_testkit::{TIMEOUT, pattern, wait_until};
use libp2p::Multiaddr;
use sha2::{Digest, Sha256};

mod common;

async fn node() -> (tempfile::TempDir, Client, Multiaddr) {
    common::node(|_| {}).await
}

/// Connects `from` to `to` and waits until both see it and identify ran:
/// each side has the other (or an earlier peer) in its DHT routing table.
async fn connect(from: &Client, to: &Client, to_addr: &Multiaddr) {
    from.dial(to_addr.clone()).await.unwrap();
    let peer = to.peer_id();
    wait_until("connected", || async {
        from.peers().await.unwrap().contains(&peer)
    })
    .await;
    wait_until("identify added both to the DHT", || async {
        from.dht_peers().await.unwrap() >= 1 && to.dht_peers().await.unwrap() >= 1
    })
    .await;
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_finds_a_provider_through_the_dht_and_downloads_20_mib() {
    let (_da, a, a_addr) = node().await;
    let (_db, b, b_addr) = node().await;
    let (_dc, c, _) = node().await;
    connect(&b, &a, &a_addr).await;
    connect(&c, &b, &b_addr).await;

    let file = Bytes::from(pattern(1, 20 * 1024 * 1024));
    let added = a
        .content()
        .add_bytes(file.clone(), Profile::V1_2025, Some("test".into()))
        .await
        .unwrap();
    assert_eq!(added.size, file.len() as u64);
    assert_eq!(added.blocks, 21, "20 leaves of 1 MiB and the root");
    // The announcement is sent in the background: once b (the only DHT
    // server c knows) kept it, c, which never heard of the file, learns
    // from the DHT that a provides it.
    wait_until("b kept a's provider record", || async {
        common::provider_records(&b, "kept").await >= 1
    })
    .await;
    let mut providers = c.find_providers(added.root);
    let found = tokio::time::timeout(TIMEOUT, providers.recv())
        .await
        .unwrap();
    assert_eq!(found, Some(a.peer_id()));

    let (got, report) = common::cat(&c, added.root, Vec::new()).await;
    assert_eq!(digest(&got), digest(&file));
    assert_eq!(report.size, file.len() as u64);
    assert_eq!(report.fetched, 21);
    assert!(
        c.peers().await.unwrap().contains(&a.peer_id()),
        "c dialled a"
    );
    let stat = c.content().stat(added.root).await.unwrap();
    assert!(stat.complete && !stat.pinned, "{stat:?}");
    assert_eq!(stat.size, Some(file.len() as u64));

    let metrics = c.metrics_text().await.unwrap();
    let received = "ipsr_bitswap_blocks_total{direction=\"received\"} 21";
    assert!(metrics.lines().any(|l| l == received), "{metrics}");
    for name in [
        "ipsr_bitswap_bad_blocks_total ",
        "ipsr_bitswap_duplicate_blocks_total ",
        "ipsr_bitswap_inbound_streams_closed_total{reason=\"refused\"} ",
        "ipsr_bitswap_inbound_streams_closed_total{reason=\"idle\"} ",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(name)),
            "{name}: {metrics}"
        );
    }
    let sent = a.metrics_text().await.unwrap();
    assert!(
        sent.contains("ipsr_bitswap_bytes_total{direction=\"sent\"} 2097"),
        "{sent}"
    );

    // A second read is served from c's own blockstore.
    let (again, report) = common::cat(&c, added.root, Vec::new()).await;
    assert_eq!(again, got);
    assert_eq!((report.fetched, report.local), (0, 21));
}

/// Flips one byte in the middle of every block file over 1 KiB under `dir`
/// (bit rot on the provider's disk, which it serves without rehashing).
fn corrupt_blocks(dir: &std::path::Path) -> usize {
    let mut flipped = 0;
    for entry in walk(dir) {
        let mut bytes = std::fs::read(&entry).unwrap();
        if bytes.len() > 1024 {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&entry, bytes).unwrap();
            flipped += 1;
        }
    }
    flipped
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            for block in std::fs::read_dir(&path).unwrap() {
                files.push(block.unwrap().path());
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_sends_bad_blocks_is_dropped_and_another_completes_the_download() {
    let (_da, a, a_addr) = node().await;
    let (dm, m, m_addr) = node().await;
    let (_dc, c, _) = node().await;
    connect(&c, &a, &a_addr).await;
    connect(&c, &m, &m_addr).await;

    let file = Bytes::from(pattern(2, 8 * 1024 * 1024 + 17));
    let added = a
        .content()
        .add_bytes(file.clone(), Profile::V1_2025, None)
        .await
        .unwrap();
    let same = m
        .content()
        .add_bytes(file.clone(), Profile::V1_2025, None)
        .await
        .unwrap();
    assert_eq!(added.root, same.root);
    assert!(corrupt_blocks(&dm.path().join("blocks")) >= 8);

    // Ask the bad provider first; a comes from the DHT.
    let (got, report) = common::cat(&c, added.root, vec![m.peer_id()]).await;
    assert_eq!(digest(&got), digest(&file));
    assert_eq!(report.dropped, vec![m.peer_id()]);
    wait_until("c disconnected m", || async {
        !c.peers().await.unwrap().contains(&m.peer_id())
    })
    .await;
    // Everything c kept matches its CID.
    assert!(c.content().stat(added.root).await.unwrap().complete);
    let store = c.content().blockstore().clone();
    tokio::task::spawn_blocking(move || {
        let root = store.get_verified(&added.root).unwrap().unwrap();
        let leaves = ipsr_content::unixfs::links(&root).unwrap();
        assert_eq!(leaves.len(), 9);
        for leaf in leaves {
            assert!(store.get_verified(&leaf).unwrap().is_some());
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_resumes_after_the_provider_restarts() {
    let da = tempfile::tempdir().unwrap();
    let start_a = |listen: Option<Multiaddr>| {
        let mut config = Config::local(da.path().to_owned());
        if let Some(addr) = listen {
            config.listen = vec![addr];
        }
        ipsr_node::spawn(config)
    };
    let a = start_a(None).await.unwrap();
    wait_until("a listens", || async {
        !a.listen_addrs().await.unwrap().is_empty()
    })
    .await;
    let a_listen = a.listen_addrs().await.unwrap()[0].clone();
    let a_addr = a_listen
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(a.peer_id()));
    let (_dc, c, _) = node().await;
    connect(&c, &a, &a_addr).await;

    let file = Bytes::from(pattern(3, 12 * 1024 * 1024));
    let added = a
        .content()
        .add_bytes(file.clone(), Profile::V1_2025, None)
        .await
        .unwrap();
    wait_until("c finds a as a provider", || async {
        let mut found = c.find_providers(added.root);
        tokio::time::timeout(Duration::from_secs(5), found.recv())
            .await
            .is_ok_and(|p| p == Some(a.peer_id()))
    })
    .await;

    // c reads the first few MiB, then stops reading.
    {
        let (mut rx, handle) = c.content().cat(added.root, Vec::new());
        let mut read = 0;
        while read < 3 * 1024 * 1024 {
            read += tokio::time::timeout(TIMEOUT, rx.recv())
                .await
                .unwrap()
                .unwrap()
                .len();
        }
        drop(rx);
        let _ = tokio::time::timeout(TIMEOUT, handle).await.unwrap();
    }
    let before = c.content().stat(added.root).await.unwrap();
    assert!(before.local && !before.complete, "{before:?}");

    // a goes away; c starts pinning, which cannot finish yet.
    let a_peer = a.peer_id();
    drop(a);
    wait_until("c saw a go", || async {
        !c.peers().await.unwrap().contains(&a_peer)
    })
    .await;
    let pinning = tokio::spawn({
        let c = c.clone();
        async move { c.content().pin(added.root, None, Vec::new()).await }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !pinning.is_finished(),
        "the pin cannot finish while a is down"
    );

    // a comes back on the same address; the pin completes.
    let a = start_a(Some(a_listen)).await.unwrap();
    assert_eq!(a.peer_id(), a_peer);
    let report = tokio::time::timeout(TIMEOUT, pinning)
        .await
        .expect("the pin did not resume")
        .unwrap()
        .unwrap();
    assert!(report.local >= 3, "{report:?}");
    assert!(report.fetched >= 1, "{report:?}");
    let (got, _) = common::cat(&c, added.root, Vec::new()).await;
    assert_eq!(digest(&got), digest(&file));
    assert!(c.content().stat(added.root).await.unwrap().pinned);
}

/// ```text
///   a ─ c      a adds a 2-level file (unixfs-v0-2015: 175 leaves of
///              256 KiB, two nodes under the root); a reads ranges of it
///              from its store, c fetches ranges from a
/// ```
///
/// A ranged read reads (or fetches) only the root, the nodes on the way
/// down and the leaves that hold the range, never the rest of the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_reads_read_and_fetch_only_the_blocks_of_the_range() {
    let (_da, a, a_addr) = node().await;
    let (_dc, c, _) = node().await;
    connect(&c, &a, &a_addr).await;
    let chunk = Profile::V0_2015.chunk_size() as u64;
    let file = Bytes::from(pattern(9, (174 * chunk + 1000) as usize));
    let size = file.len() as u64;
    let added = a
        .content()
        .add_bytes(file.clone(), Profile::V0_2015, None)
        .await
        .unwrap();
    assert_eq!(added.blocks, 175 + 2 + 1, "leaves, two nodes, the root");
    let cut = |r: &std::ops::Range<u64>| file.slice(r.start as usize..r.end as usize);
    // (range, blocks read: the root, the nodes and leaves on the way)
    let cases = [
        (size - 1..size, 3),
        (0..1, 3),
        (100 * chunk - 10..100 * chunk + 10, 4),
        (174 * chunk - 10..174 * chunk + 10, 5),
        (10..10, 1),
        (0..size, added.blocks),
    ];
    for (range, blocks) in cases {
        let (got, report) = common::cat_range(&a, added.root, range.clone(), Vec::new()).await;
        assert_eq!(got, cut(&range), "{range:?}");
        assert_eq!((report.local, report.fetched), (blocks, 0), "{range:?}");
        assert_eq!(report.size, size);
    }

    // c has nothing and fetches only what the range needs.
    let hint = vec![a.peer_id()];
    let (got, report) = common::cat_range(&c, added.root, size - 1..size, hint.clone()).await;
    assert_eq!(got, cut(&(size - 1..size)));
    assert_eq!((report.local, report.fetched), (0, 3));
    let (got, report) = common::cat_range(&c, added.root, 0..1, hint).await;
    assert_eq!(got, cut(&(0..1)));
    assert_eq!(
        (report.local, report.fetched),
        (1, 2),
        "the root is here now"
    );
    let stat = c.content().stat(added.root).await.unwrap();
    assert_eq!((stat.blocks, stat.complete), (5, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_pinned_content_and_removes_the_rest() {
    let (_da, a, _) = node().await;
    let kept = a
        .content()
        .add_bytes(
            Bytes::from(pattern(4, 3 * 1024 * 1024)),
            Profile::V1_2025,
            Some("kept".into()),
        )
        .await
        .unwrap();
    let dropped = a
        .content()
        .add_bytes(
            Bytes::from(pattern(5, 2 * 1024 * 1024)),
            Profile::V0_2015,
            None,
        )
        .await
        .unwrap();
    assert!(a.content().unpin(dropped.root).await.unwrap());
    let report = a.content().gc().await.unwrap();
    assert_eq!(report.removed, dropped.blocks);
    assert!(a.content().stat(kept.root).await.unwrap().complete);
    let gone = a.content().stat(dropped.root).await.unwrap();
    assert!(!gone.local && !gone.pinned, "{gone:?}");
    let pins = a.content().pins().await.unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].label.as_deref(), Some("kept"));
}

/// ```text
///   a ─ b      a adds a 3 MiB file (v1: three 1 MiB raw leaves under a
///              root); b gets single blocks from a: the root (which a
///              announces in the DHT) and a leaf (announced nowhere, found
///              by asking the connected peers)
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_blocks_come_from_the_store_a_provider_or_a_connected_peer() {
    use ipsr_content::unixfs::links;
    let (_da, a, a_addr) = node().await;
    let (_db, b, _) = node().await;
    let file = Bytes::from(pattern(7, 3 * 1024 * 1024));
    let added = a
        .content()
        .add_bytes(file.clone(), Profile::V1_2025, None)
        .await
        .unwrap();
    let short = Duration::from_millis(500);

    // Local: a holds it all.
    let root = a.content().block(added.root, short).await.unwrap().unwrap();
    let leaves = links(&root).unwrap();
    assert_eq!(leaves.len(), 3);

    // Nobody to ask yet: None once the time is up, not before.
    let started = tokio::time::Instant::now();
    assert!(
        b.content()
            .block(added.root, short)
            .await
            .unwrap()
            .is_none()
    );
    let waited = started.elapsed();
    assert!(waited >= short && waited < short * 4, "{waited:?}");

    connect(&b, &a, &a_addr).await;
    let got = b
        .content()
        .block(added.root, TIMEOUT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, root);
    let leaf = b
        .content()
        .block(leaves[1], TIMEOUT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(leaf.data()[..], file[1024 * 1024..2 * 1024 * 1024]);
    // Both are stored now (unpinned): a second read is local.
    assert!(b.content().blockstore().has(&leaves[1]).unwrap());
    let stat = b.content().stat(added.root).await.unwrap();
    assert_eq!((stat.blocks, stat.pinned), (2, false), "{stat:?}");

    // The file is not complete on b: its check names a missing leaf.
    match b.content().check_local_file(added.root).await {
        Err(ipsr_content::ContentError::Missing(cid)) => assert_eq!(*cid, leaves[0]),
        other => panic!("expected a missing block, got {other:?}"),
    }
    assert_eq!(
        a.content().check_local_file(added.root).await.unwrap(),
        file.len() as u64
    );
}

/// `cat_blocks` hands on the DAG's blocks in depth-first order, one per
/// occurrence, and a file stored block by block with `put_block` checks as
/// complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_of_a_file_come_in_depth_first_order_and_can_be_stored_one_by_one() {
    use ipsr_content::unixfs::{Importer, links};
    let (_da, a, a_addr) = node().await;
    let (_db, b, _) = node().await;
    // 1 MiB of one pattern, 1 MiB of another, the first again: the first
    // leaf occurs twice.
    let one = Bytes::from(pattern(11, 1024 * 1024));
    let two = Bytes::from(pattern(12, 1024 * 1024));
    let file: Bytes = [one.clone(), two, one].concat().into();
    let added = a
        .content()
        .add_bytes(file.clone(), Profile::V1_2025, None)
        .await
        .unwrap();
    connect(&b, &a, &a_addr).await;

    let (mut rx, handle) = b.content().cat_blocks(added.root, Vec::new());
    let mut order = Vec::new();
    let read = async {
        while let Some(block) = rx.recv().await {
            order.push(block);
        }
        handle.await.unwrap().unwrap()
    };
    let report = tokio::time::timeout(TIMEOUT, read).await.unwrap();
    assert_eq!(report.size, file.len() as u64);
    let root_links = links(&order[0]).unwrap();
    let cids: Vec<cid::Cid> = order.iter().map(|b| *b.cid()).collect();
    let mut expected = vec![added.root];
    expected.extend(root_links.iter().copied());
    assert_eq!(cids, expected);
    assert_eq!(root_links[0], root_links[2], "the repeated chunk");

    // The same blocks, stored one by one on a third node, make a file.
    let (_dc, c, _) = node().await;
    let mut importer = Importer::new(Profile::V1_2025);
    let mut blocks = importer.push(&file);
    let (imported, last) = importer.finish();
    blocks.extend(last);
    assert_eq!(imported.root, added.root);
    let (root, leaves) = blocks.split_last().unwrap();
    assert!(c.content().put_block(root.clone()).await.unwrap());
    assert!(matches!(
        c.content().check_local_file(added.root).await,
        Err(ipsr_content::ContentError::Missing(_))
    ));
    for leaf in leaves {
        c.content().put_block(leaf.clone()).await.unwrap();
    }
    assert_eq!(
        c.content().check_local_file(added.root).await.unwrap(),
        file.len() as u64
    );
    assert!(
        c.content().pins().await.unwrap().is_empty(),
        "nothing pinned"
    );
}

/// The bytes of blocks `node` stores.
fn stored(node: &Client) -> u64 {
    node.content().blockstore().stats().unwrap().bytes
}

/// A pin as a gateway makes it for a record of `size` bytes by `owner`.
fn release_pin(owner: &str, size: u64) -> PinSpec {
    PinSpec {
        label: Some(format!("{owner}/com.example.app@1.0.0")),
        owner: Some(owner.to_owned()),
        size: Some(size),
        quota: None,
    }
}

/// ```text
///   a ─ b      a adds files; b pins them with sizes a record might state
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_stops_as_soon_as_the_content_is_not_of_its_stated_size() {
    let (_da, a, a_addr) = node().await;
    let (_db, b, _) = node().await;
    connect(&b, &a, &a_addr).await;
    let add = |seed, len| {
        let a = a.clone();
        async move {
            a.content()
                .add_bytes(Bytes::from(pattern(seed, len)), Profile::V1_2025, None)
                .await
                .unwrap()
        }
    };
    let big = add(2, 3 * 1024 * 1024 + 5).await;
    let leaf = add(3, 600 * 1024).await;
    let pin = |root, spec: PinSpec| {
        let b = b.clone();
        let hint = vec![a.peer_id()];
        async move {
            tokio::time::timeout(TIMEOUT, b.content().pin_with(root, &spec, hint))
                .await
                .expect("the pin ends in time")
        }
    };

    // A record stating 1 byte for 3 MiB: the root says otherwise, and
    // nothing more is fetched.
    let err = pin(big.root, release_pin("mallory", 1)).await.unwrap_err();
    assert!(
        matches!(err, ContentError::Fetch(FetchError::WrongSize { stated: 1, declared }) if declared == big.size),
        "{err:?}"
    );
    assert!(stored(&b) < 64 * 1024, "only the root: {}", stored(&b));
    let before = stored(&b);
    // 1 byte stated, a 600 KiB file in one block: refused unstored.
    let err = pin(leaf.root, release_pin("mallory", 1)).await.unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::Fetch(FetchError::Oversized { stated: 1, .. })
        ),
        "{err:?}"
    );
    assert_eq!(stored(&b), before, "the oversized block was not stored");
    // More stated than the DAG holds.
    let err = pin(big.root, release_pin("mallory", big.size + 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ContentError::Fetch(FetchError::WrongSize { .. })),
        "{err:?}"
    );
    assert!(
        b.content().pins().await.unwrap().is_empty(),
        "nothing pinned"
    );
    assert_eq!(
        common::metric(&b, "ipsr_pins_refused_total{reason=\"size\"}").await,
        3
    );

    // The stated size: pinned, charged to its owner.
    pin(big.root, release_pin("alice", big.size)).await.unwrap();
    let pins = b.content().pins().await.unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].owner.as_deref(), Some("alice"));
    assert!(b.content().blockstore().pinned_by("alice") > big.size);
}

/// ```text
///   a ─ b      b keeps at most 4.5 MiB; a has 3 + 3 + 2 MiB of files
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_store_evicts_cached_blocks_and_refuses_pins_past_its_limit() {
    const LIMIT: u64 = 4 * 1024 * 1024 + 512 * 1024;
    let (_da, a, a_addr) = node().await;
    let (_db, b, _) = common::node(|c| c.blockstore_limit = Some(LIMIT)).await;
    connect(&b, &a, &a_addr).await;
    let mut files = Vec::new();
    for (seed, mib) in [(4, 3), (5, 3), (6, 2)] {
        let bytes = Bytes::from(pattern(seed, mib * 1024 * 1024));
        let added = a
            .content()
            .add_bytes(bytes.clone(), Profile::V1_2025, None)
            .await
            .unwrap();
        files.push((added, bytes));
    }
    let hint = vec![a.peer_id()];

    // x read through b: cached, unpinned.
    let (x, _) = &files[0];
    common::cat(&b, x.root, hint.clone()).await;
    assert!(stored(&b) > 3 * 1024 * 1024);
    // y pinned: x's blocks make room.
    let (y, _) = &files[1];
    let spec = release_pin("alice", y.size);
    b.content()
        .pin_with(y.root, &spec, hint.clone())
        .await
        .unwrap();
    let stats = b.content().blockstore().stats().unwrap();
    assert!(stats.bytes <= LIMIT, "{stats:?}");
    assert!(stats.evicted_blocks >= 3, "{stats:?}");
    // z does not fit beside y: refused before a block is fetched.
    let (z, z_bytes) = &files[2];
    let before = stored(&b);
    let err = b
        .content()
        .pin_with(z.root, &release_pin("bob", z.size), hint.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ContentError::Store(BlockstoreError::Full { .. })),
        "{err:?}"
    );
    assert_eq!(stored(&b), before);
    // But z can still be read through b: its blocks pass through the cache,
    // which stays within the limit.
    let (got, _) = common::cat(&b, z.root, hint).await;
    assert!(got == *z_bytes);
    assert!(stored(&b) <= LIMIT, "{}", stored(&b));
    assert!(
        b.content().blockstore().is_complete(&y.root).unwrap(),
        "y is kept"
    );
}
