//! The on-disk blockstore: basic operations, the size limit and eviction,
//! leases and quotas, pins and gc, recovery on open, and crash safety under
//! SIGKILL.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cid::Cid;
use ipsr_content::Block;
use ipsr_content::blockstore::{Blockstore, BlockstoreError, GcReport};
use ipsr_content::unixfs::{self, Imported, Importer, Profile};

const RAW: u64 = 0x55;

fn raw(data: &[u8]) -> Block {
    Block::hash(cid::Version::V1, RAW, data.to_vec()).unwrap()
}

use ipsr_testkit::{XorShift, pattern};

/// Imports `data` into `store` and returns the summary.
fn import_into(store: &Blockstore, profile: Profile, data: &[u8]) -> Imported {
    unixfs::import(data, profile, |b| store.put(&b).map(|_| ())).unwrap()
}

#[test]
fn put_get_has_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path(), None).unwrap();
    let block = raw(b"hello world");
    assert!(!store.has(block.cid()).unwrap());
    assert_eq!(store.get(block.cid()).unwrap(), None);
    assert!(store.put(&block).unwrap());
    assert!(!store.put(&block).unwrap(), "second put is not new");
    assert!(store.has(block.cid()).unwrap());
    assert_eq!(store.size_of(block.cid()).unwrap(), Some(11));
    assert_eq!(store.get(block.cid()).unwrap(), Some(block.clone()));
    assert_eq!(
        store.get_verified(block.cid()).unwrap(),
        Some(block.clone())
    );
    let stats = store.stats().unwrap();
    assert_eq!((stats.blocks, stats.bytes), (1, 11));

    assert!(store.delete(block.cid()).unwrap());
    assert!(!store.delete(block.cid()).unwrap());
    assert!(!store.has(block.cid()).unwrap());
    let stats = store.stats().unwrap();
    assert_eq!((stats.blocks, stats.bytes), (0, 0));
}

#[test]
fn put_refuses_when_only_pinned_blocks_are_left_and_says_by_how_much() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path(), Some(100)).unwrap();
    assert!(store.put(&raw(&[1u8; 60])).unwrap());
    store.pin(raw(&[1u8; 60]).cid(), None).unwrap();
    let err = store.put(&raw(&[2u8; 50])).unwrap_err();
    assert!(
        matches!(
            err,
            BlockstoreError::Full {
                limit: 100,
                used: 60,
                needed: 50
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("100") && message.contains("60") && message.contains("50"),
        "{message}"
    );
    // A block that fits still goes in; a present one is no error.
    assert!(store.put(&raw(&[3u8; 40])).unwrap());
    assert!(!store.put(&raw(&[1u8; 60])).unwrap());
    assert_eq!(store.stats().unwrap().bytes, 100);
}

#[test]
fn put_evicts_the_least_recently_used_unpinned_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path(), Some(100)).unwrap();
    let (a, b, c, d) = (
        raw(&[1u8; 40]),
        raw(&[2u8; 40]),
        raw(&[3u8; 20]),
        raw(&[4u8; 40]),
    );
    for block in [&a, &b, &c] {
        store.put(block).unwrap();
    }
    store.pin(c.cid(), None).unwrap();
    // a is read, so b is now the least recently used.
    store.get(a.cid()).unwrap();
    assert!(store.put(&d).unwrap());
    assert!(!store.has(b.cid()).unwrap(), "b was evicted");
    for kept in [&a, &c, &d] {
        assert!(store.has(kept.cid()).unwrap());
    }
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.bytes, stats.evicted_blocks, stats.evicted_bytes),
        (100, 1, 40)
    );
    // Across a reopen, the oldest files go first.
    drop(store);
    let store = Blockstore::open(dir.path(), Some(100)).unwrap();
    assert!(store.put(&raw(&[5u8; 30])).unwrap());
    assert!(store.has(c.cid()).unwrap(), "pinned");
    assert_eq!(store.stats().unwrap().bytes, 90);
}

#[test]
fn a_lease_holds_its_blocks_and_reserves_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Blockstore::open(dir.path(), Some(300 * 1024)).unwrap());
    // A 100 KiB file may take up to 100 KiB + 1/8 + 64 KiB of blocks.
    let lease = store.lease(Some("alice"), Some(100 * 1024), None).unwrap();
    assert_eq!(store.stats().unwrap().reserved_bytes, 180_736);
    let err = store
        .lease(Some("bob"), Some(100 * 1024), None)
        .unwrap_err();
    assert!(
        matches!(err, BlockstoreError::Full { used: 180_736, .. }),
        "{err:?}"
    );
    let held = raw(&[7u8; 100 * 1024]);
    assert!(lease.put(&held).unwrap());
    // Unpinned, unheld blocks make room; the held one stays.
    for n in 0..4u8 {
        store.put(&raw(&[n; 100 * 1024])).unwrap();
    }
    assert!(store.has(held.cid()).unwrap(), "held by the lease");
    assert!(store.stats().unwrap().evicted_blocks >= 2);
    assert_eq!(store.gc().unwrap().removed, 2, "gc keeps what leases hold");
    assert!(store.has(held.cid()).unwrap());
    store.pin_leased(held.cid(), Some("a@1"), &lease).unwrap();
    drop(lease);
    let stats = store.stats().unwrap();
    assert_eq!((stats.pinned_bytes, stats.reserved_bytes), (100 * 1024, 0));
    assert_eq!(store.pinned_by("alice"), 100 * 1024);
    // Dropping a lease without a pin gives its bytes back.
    let lease = store.lease(None, Some(100 * 1024), None).unwrap();
    drop(lease);
    assert_eq!(store.stats().unwrap().reserved_bytes, 0);
}

#[test]
fn a_quota_bounds_one_owner_and_is_kept_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let quota = Some(200 * 1024);
    let file = raw(&[9u8; 150 * 1024]);
    {
        let store = Arc::new(Blockstore::open(dir.path(), None).unwrap());
        let lease = store.lease(Some("alice"), Some(100), quota).unwrap();
        lease.put(&file).unwrap();
        store.pin_leased(file.cid(), None, &lease).unwrap();
    }
    let store = Arc::new(Blockstore::open(dir.path(), None).unwrap());
    assert_eq!(store.pinned_by("alice"), 150 * 1024);
    let err = store.lease(Some("alice"), Some(1), quota).unwrap_err();
    assert!(
        matches!(&err, BlockstoreError::QuotaExceeded { owner, used: 153_600, .. } if owner == "alice"),
        "{err:?}"
    );
    assert!(err.to_string().contains("quota of alice"), "{err}");
    assert!(store.lease(Some("bob"), Some(100 * 1024), quota).is_ok());
    // An unsized pin is checked when it is made: 150 KiB + 100 KiB > 200 KiB.
    let lease = store.lease(Some("alice"), None, quota).unwrap();
    let more = raw(&[8u8; 100 * 1024]);
    lease.put(&more).unwrap();
    let err = store.pin_leased(more.cid(), None, &lease).unwrap_err();
    assert!(
        matches!(err, BlockstoreError::QuotaExceeded { .. }),
        "{err:?}"
    );
    assert!(!store.is_pinned(more.cid()).unwrap());
    let refused = store.stats().unwrap().refused;
    assert_eq!((refused.quota, refused.storage), (2, 0));
    // Unpinning frees the quota.
    assert!(store.unpin(file.cid()).unwrap());
    assert_eq!(store.pinned_by("alice"), 0);
    store.pin_leased(more.cid(), None, &lease).unwrap();
}

#[test]
fn pins_written_before_quotas_are_counted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let block = raw(&[5u8; 1000]);
    {
        let store = Blockstore::open(dir.path(), None).unwrap();
        store.put(&block).unwrap();
    }
    {
        // A pin as older versions wrote it: no owner, no bytes.
        let table: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("pins");
        let db = redb::Database::create(dir.path().join("pins.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(table)
            .unwrap()
            .insert(
                block.cid().to_bytes().as_slice(),
                br#"{"created":1,"label":"old"}"#.as_slice(),
            )
            .unwrap();
        tx.commit().unwrap();
    }
    let store = Blockstore::open(dir.path(), None).unwrap();
    assert_eq!(store.stats().unwrap().pinned_bytes, 1000);
    let pins = store.pins().unwrap();
    assert_eq!(
        (pins[0].bytes, pins[0].label.as_deref()),
        (1000, Some("old"))
    );
}

#[test]
fn gc_keeps_pinned_dags_and_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path(), None).unwrap();
    // A 2-level v0 DAG: 175 chunks of 256 KiB + 1 byte.
    let chunk = Profile::V0_2015.chunk_size();
    let pinned = import_into(&store, Profile::V0_2015, &pattern(1, 174 * chunk + 1));
    let other = import_into(&store, Profile::V1_2025, &pattern(2, 3 * (1 << 20) + 5));
    let loose = raw(b"loose");
    store.put(&loose).unwrap();
    store
        .pin(&pinned.root, Some("com.example.app@1.2.0"))
        .unwrap();
    assert!(store.is_complete(&pinned.root).unwrap());
    let before = store.stats().unwrap();
    assert_eq!(before.blocks, pinned.blocks + other.blocks + 1);

    let report = store.gc().unwrap();
    assert_eq!(report.removed, other.blocks + 1);
    // `other` is 3 raw leaves of 1 MiB, a 5-byte leaf and its root node.
    assert!(report.freed > 3 * (1 << 20) + 5 + 5, "{report:?}");
    assert!(store.is_complete(&pinned.root).unwrap());
    assert!(!store.has(&other.root).unwrap());
    assert!(!store.has(loose.cid()).unwrap());
    let after = store.stats().unwrap();
    assert_eq!(after.blocks, pinned.blocks);
    assert_eq!(after.bytes + report.freed, before.bytes);

    // Reading the pinned file back from the store gives the bytes.
    let mut reader = unixfs::FileReader::new(pinned.root);
    let mut out = Vec::new();
    while let Some(next) = reader.next_needed() {
        let block = store.get(&next).unwrap().unwrap();
        out.extend_from_slice(reader.feed(&block).unwrap());
    }
    assert_eq!(out, pattern(1, 174 * chunk + 1));

    // Unpinned, everything goes.
    assert!(store.unpin(&pinned.root).unwrap());
    assert!(!store.unpin(&pinned.root).unwrap());
    assert_eq!(store.gc().unwrap().removed, pinned.blocks);
    assert_eq!(store.stats().unwrap().blocks, 0);
    assert_eq!(store.gc().unwrap(), GcReport::default());
}

#[test]
fn a_pinned_root_with_missing_blocks_keeps_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path(), None).unwrap();
    let mut importer = Importer::new(Profile::V1_2025);
    let mut blocks = importer.push(&pattern(3, 3 << 20));
    let (imported, last) = importer.finish();
    blocks.extend(last);
    assert_eq!(blocks.len(), 4); // 3 leaves + root
    store.pin(&imported.root, None).unwrap();
    assert_eq!(store.missing(&imported.root).unwrap(), vec![imported.root]);
    // Root and the first leaf arrive; the second and third are missing.
    store.put(&blocks[3]).unwrap();
    store.put(&blocks[0]).unwrap();
    store.put(&raw(b"unrelated")).unwrap();
    assert_eq!(
        store.missing(&imported.root).unwrap(),
        vec![*blocks[1].cid(), *blocks[2].cid()]
    );
    assert!(!store.is_complete(&imported.root).unwrap());
    assert_eq!(store.gc().unwrap().removed, 1);
    assert!(store.has(&imported.root).unwrap());
    assert!(store.has(blocks[0].cid()).unwrap());
}

#[test]
fn pins_are_read_a_page_at_a_time_in_cid_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path(), None).unwrap();
    let mut roots: Vec<Cid> = (0..7u8).map(|n| *raw(&[n; 3]).cid()).collect();
    for root in &roots {
        store.pin(root, None).unwrap();
    }
    roots.sort_by_key(Cid::to_bytes);
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = store.pins_after(after.as_ref(), 3).unwrap();
        assert!(page.len() <= 3);
        walked.extend_from_slice(&page);
        match page.last() {
            Some(last) if page.len() == 3 => after = Some(*last),
            _ => break,
        }
    }
    assert_eq!(walked, roots, "every pin once, in order");
    assert_eq!(store.pins_after(None, 0).unwrap(), Vec::<Cid>::new());
    let last = roots.last().unwrap();
    assert!(store.pins_after(Some(last), 3).unwrap().is_empty());
    // A cursor that is no longer pinned still places the walk.
    store.unpin(&roots[2]).unwrap();
    assert_eq!(store.pins_after(Some(&roots[2]), 2).unwrap(), roots[3..5]);
}

#[test]
fn pins_survive_reopen_and_counts_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let a = raw(b"a");
    let b = raw(b"bb");
    {
        let store = Blockstore::open(dir.path(), None).unwrap();
        store.put(&a).unwrap();
        store.put(&b).unwrap();
        store.pin(a.cid(), Some("com.example.app@1.2.0")).unwrap();
        store.pin(b.cid(), None).unwrap();
    }
    let store = Blockstore::open(dir.path(), Some(1000)).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.blocks, stats.bytes, stats.pins, stats.limit),
        (2, 3, 2, Some(1000))
    );
    let pins: HashMap<Cid, _> = store
        .pins()
        .unwrap()
        .into_iter()
        .map(|p| (p.root, p))
        .collect();
    assert_eq!(
        pins[a.cid()].label.as_deref(),
        Some("com.example.app@1.2.0")
    );
    assert_eq!(pins[b.cid()].label, None);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(pins[a.cid()].created <= now && pins[a.cid()].created + 600 > now);
    assert!(store.is_pinned(a.cid()).unwrap());
    assert!(!store.is_pinned(raw(b"c").cid()).unwrap());
}

#[test]
fn open_removes_temp_files_and_ignores_odd_ones() {
    let dir = tempfile::tempdir().unwrap();
    let block = raw(b"kept");
    {
        let store = Blockstore::open(dir.path(), None).unwrap();
        store.put(&block).unwrap();
    }
    let shard = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && std::fs::read_dir(p).unwrap().next().is_some())
        .unwrap();
    let tmp = shard.join(".tmp-ciqsomething-123-0");
    std::fs::write(&tmp, b"half a blo").unwrap();
    std::fs::write(shard.join("README.TXT"), b"odd").unwrap();
    std::fs::write(dir.path().join("notes"), b"odd").unwrap();
    std::fs::create_dir(dir.path().join("not-a-shard")).unwrap();

    let store = Blockstore::open(dir.path(), None).unwrap();
    assert!(!tmp.exists());
    let stats = store.stats().unwrap();
    assert_eq!((stats.blocks, stats.bytes), (1, 4));
    assert_eq!(
        store.gc().unwrap().removed,
        1,
        "gc removes the block, not the odd files"
    );
    assert!(shard.join("README.TXT").exists());
}

#[test]
fn concurrent_puts_of_the_same_blocks_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path(), None).unwrap();
    let blocks: Vec<Block> = (0..50).map(|i| raw(&pattern(i, 1000))).collect();
    let new: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| blocks.iter().filter(|b| store.put(b).unwrap()).count() as u64))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(new, 50);
    let stats = store.stats().unwrap();
    assert_eq!((stats.blocks, stats.bytes), (50, 50_000));
    for b in &blocks {
        assert_eq!(store.get_verified(b.cid()).unwrap().as_ref(), Some(b));
    }
}

#[test]
fn get_verified_detects_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path(), None).unwrap();
    let block = raw(b"precious bytes");
    store.put(&block).unwrap();
    let file = walk_files(dir.path())
        .into_iter()
        .find(|p| !p.ends_with("pins.redb"))
        .unwrap();
    std::fs::write(&file, b"precious bytez").unwrap();
    assert!(matches!(
        store.get_verified(block.cid()),
        Err(BlockstoreError::Corrupt(c)) if c == *block.cid()
    ));
    // get trusts the store and does not notice.
    assert!(store.get(block.cid()).unwrap().is_some());
}

/// The shard directories (two base32 characters) in `dir`.
fn shard_dirs(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && p.file_name().unwrap().to_str().is_some_and(|n| {
                    n.len() == 2
                        && n.bytes()
                            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
                })
        })
        .count()
}

#[test]
fn all_shard_dirs_are_made_after_open_and_puts_meanwhile_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path(), None).unwrap();
    // Puts race the shard maker.
    let blocks: Vec<_> = (0..64u32)
        .map(|i| raw(format!("block {i}").as_bytes()))
        .collect();
    for block in &blocks {
        assert!(store.put(block).unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while shard_dirs(dir.path()) < 1024 {
        assert!(Instant::now() < deadline, "shard dirs not made");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(shard_dirs(dir.path()), 1024);
    for block in &blocks {
        assert_eq!(store.get(block.cid()).unwrap().as_ref(), Some(block));
    }
    drop(store);
    // Reopening finds the blocks and nothing odd in the empty shards.
    let store = Blockstore::open(dir.path(), None).unwrap();
    assert_eq!(store.stats().unwrap().blocks, 64);
}

#[test]
fn dropping_the_store_stops_the_shard_maker() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path(), None).unwrap();
    drop(store);
    let made = shard_dirs(dir.path());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(shard_dirs(dir.path()), made, "dirs made after the drop");
    // Its directory can be removed right away.
    std::fs::remove_dir_all(dir.path()).unwrap();
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

const CRASH_DIR: &str = "IPSR_TEST_CRASH_DIR";
const CRASH_RUN: &str = "IPSR_TEST_CRASH_RUN";

/// The block the crash writer writes `i`-th in run `run`: sizes vary up to
/// 512 KiB so that kills land inside writes.
fn crash_block(run: u64, i: u64) -> Block {
    let len = 1
        + (pattern(run * 1_000_003 + i, 4)
            .iter()
            .map(|&b| b as usize)
            .sum::<usize>()
            * 514)
            % (512 << 10);
    raw(&pattern(run * 1_000_003 + i + 7, len))
}

/// Not a test on its own: the body of the child process of
/// `sigkill_never_leaves_a_bad_block` (does nothing without its env vars).
#[test]
fn crash_child_writer() {
    let (Ok(dir), Ok(run)) = (std::env::var(CRASH_DIR), std::env::var(CRASH_RUN)) else {
        return;
    };
    let run: u64 = run.parse().unwrap();
    let store = Blockstore::open(std::path::Path::new(&dir), None).unwrap();
    for i in 0..100_000 {
        store.put(&crash_block(run, i)).unwrap();
    }
}

#[test]
fn sigkill_never_leaves_a_bad_block() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut jitter =
        XorShift::new(Instant::now().elapsed().as_nanos() as u64 ^ u64::from(std::process::id()));
    let runs = 20;
    for run in 0..runs {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR, dir.path())
            .env(CRASH_RUN, run.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + jitter.below(200)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let is_tmp = |p: &std::path::PathBuf| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".tmp-")
    };
    let torn = walk_files(dir.path()).iter().filter(|p| is_tmp(p)).count();
    let store = Blockstore::open(dir.path(), None).unwrap();
    let (mut blocks, mut bytes) = (0u64, 0u64);
    for run in 0..runs {
        // Puts are sequential, so the blocks present are a prefix.
        for i in 0.. {
            let expected = crash_block(run, i);
            match store.get_verified(expected.cid()).unwrap() {
                Some(found) => {
                    assert_eq!(found, expected);
                    blocks += 1;
                    bytes += found.data().len() as u64;
                }
                None => break,
            }
        }
    }
    let stats = store.stats().unwrap();
    assert!(blocks > 0, "the children wrote nothing");
    assert_eq!(
        (stats.blocks, stats.bytes),
        (blocks, bytes),
        "a file under a block name that is no written block"
    );
    assert_eq!(
        walk_files(dir.path()).iter().filter(|p| is_tmp(p)).count(),
        0
    );
    eprintln!(
        "{runs} runs killed, {torn} torn temp files removed, {blocks} blocks ({bytes} bytes) verified"
    );
}
