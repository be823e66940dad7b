//! Storage scenarios, written once and run against both [`Index`] backends:
//! the node's embedded store and Redis (filled by the indexer from the
//! node's log). After each scenario, every query is also compared between
//! the two backends.
//!
//! ```text
//!   records ──publish──▶ node (redb store) ──log──▶ indexer ──▶ Redis (test prefix)
//!                            │                                   │
//!                       StoreIndex ◀──── same scenario ────▶ RedisIndex
//! ```

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{Running, TestIndex};
use ipsr_indexer::{Index, StoreIndex, search};
use ipsr_proto::{PackageKey, SignedRecord};
use ipsr_testkit::{cid, key, redis_url, release, shared_cluster, yank};

/// Publishes `records` to a fresh node in this order, indexes its log into
/// one Redis and into a Redis Cluster, then runs `$scenario` against the
/// three backends and compares them with the embedded store.
macro_rules! both {
    ($records:expr, $scenario:ident) => {{
        let records: Vec<SignedRecord> = $records;
        let (_dir, node) = common::node().await;
        for r in &records {
            node.publish(r.clone()).await.unwrap();
        }
        let store = StoreIndex::new(node.store().clone());
        $scenario(&store, &records).await;
        for url in [redis_url(), shared_cluster().url()] {
            let test = TestIndex::new(&url, stringify!($scenario));
            let running = Running::start(&node, test.index.clone());
            running.caught_up(&node).await;
            $scenario(&test.index, &records).await;
            same_answers(&store, &test.index, &records).await;
        }
    }};
}

/// Every query answered the same by both backends.
async fn same_answers(a: &dyn Index, b: &dyn Index, records: &[SignedRecord]) {
    let packages: BTreeSet<PackageKey> = records.iter().map(|r| r.record().package_key()).collect();
    for pk in &packages {
        assert_eq!(
            a.package(pk).await.unwrap(),
            b.package(pk).await.unwrap(),
            "{pk}"
        );
        assert_eq!(
            a.author(&pk.author).await.unwrap(),
            b.author(&pk.author).await.unwrap()
        );
        for title_word in ["chat", "app", "notes", "example", "ex"] {
            assert_eq!(
                a.search(title_word, 50).await.unwrap(),
                b.search(title_word, 50).await.unwrap(),
                "search {title_word}"
            );
        }
    }
    for r in records {
        let rk = r.release_key();
        assert_eq!(
            a.release(&rk).await.unwrap(),
            b.release(&rk).await.unwrap(),
            "{rk}"
        );
        assert_eq!(
            a.record_bytes(&rk).await.unwrap(),
            b.record_bytes(&rk).await.unwrap()
        );
    }
    assert_eq!(a.recent(100).await.unwrap(), b.recent(100).await.unwrap());
    assert_eq!(a.stats().await.unwrap(), b.stats().await.unwrap());
}

fn releases_and_fixes() -> Vec<SignedRecord> {
    let (k1, k2) = (key(1), key(2));
    vec![
        release(&k1, "1.0.0").code(1).seq(1).cid(cid(1)).sign(),
        release(&k1, "1.1.0").code(2).seq(2).cid(cid(2)).sign(),
        // A metadata fix of 1.1.0 (higher seq): replaces it.
        release(&k1, "1.1.0")
            .code(2)
            .seq(3)
            .cid(cid(2))
            .title("App")
            .sign(),
        release(&k1, "0.1.0")
            .package("com.example.notes")
            .seq(4)
            .cid(cid(1))
            .sign(),
        release(&k2, "2.0.0")
            .package("org.other.app")
            .code(20)
            .seq(5)
            .cid(cid(20))
            .sign(),
    ]
}

async fn publish_and_newer_versions(index: &dyn Index, records: &[SignedRecord]) {
    let (k1, k2) = (key(1), key(2));
    let app = records[0].record().package_key();
    let state = index.package(&app).await.unwrap().unwrap();
    assert_eq!(state.releases().count(), 2);
    assert_eq!(
        state.newest(),
        Some(&records[2]),
        "the fix of the highest version_code"
    );
    let v100 = records[0].release_key();
    assert_eq!(
        index.release(&v100).await.unwrap().unwrap().release(),
        Some(&records[0])
    );
    let bytes = index.record_bytes(&records[2].release_key()).await.unwrap();
    assert_eq!(
        bytes,
        vec![records[2].to_bytes()],
        "the superseded record is gone"
    );
    let back = SignedRecord::from_bytes(&bytes[0])
        .unwrap()
        .verify()
        .unwrap();
    assert_eq!(back, records[2]);
    let names: Vec<String> = index
        .author(&k1.author_id())
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["com.example.app", "com.example.notes"]);
    assert_eq!(index.author(&k2.author_id()).await.unwrap().len(), 1);
    assert_eq!(index.author(&key(3).author_id()).await.unwrap(), vec![]);
    let unknown = PackageKey {
        author: key(3).author_id(),
        package: "com.none.x".parse().unwrap(),
    };
    assert_eq!(index.package(&unknown).await.unwrap(), None);
    let stats = index.stats().await.unwrap();
    assert_eq!(
        (
            stats.packages,
            stats.releases,
            stats.records,
            stats.yanked,
            stats.conflicts
        ),
        (3, 4, 4, 0, 0)
    );
    // Recent: newest created_at first.
    let recent = index.recent(10).await.unwrap();
    assert_eq!(
        recent,
        vec![
            records[4].clone(),
            records[3].clone(),
            records[2].clone(),
            records[0].clone()
        ]
    );
    assert_eq!(index.recent(2).await.unwrap().len(), 2);
}

#[tokio::test]
async fn scenario_publish_and_newer_versions() {
    both!(releases_and_fixes(), publish_and_newer_versions);
}

fn yanks() -> Vec<SignedRecord> {
    let k = key(1);
    vec![
        release(&k, "1.0.0").code(1).seq(1).cid(cid(1)).sign(),
        release(&k, "1.1.0").code(2).seq(2).cid(cid(2)).sign(),
        release(&k, "1.2.0").code(3).seq(3).cid(cid(3)).sign(),
        yank(&k, "1.2.0").seq(4).sign(),
        // A yank before its release, with a lower seq: does not retract it.
        yank(&k, "2.0.0").seq(5).sign(),
        release(&k, "2.0.0").code(9).seq(6).cid(cid(9)).sign(),
        yank(&k, "1.1.0").seq(7).sign(),
        // 1.1.0 restored by a release with a higher seq.
        release(&k, "1.1.0").code(2).seq(8).cid(cid(2)).sign(),
        // A yank of a version never released.
        yank(&k, "3.0.0").seq(10).sign(),
    ]
}

async fn yanked_and_restored(index: &dyn Index, records: &[SignedRecord]) {
    let app = records[0].record().package_key();
    let state = index.package(&app).await.unwrap().unwrap();
    let yanked: Vec<String> = state
        .releases()
        .filter(|r| r.is_yanked())
        .map(|r| r.key().version.to_string())
        .collect();
    assert_eq!(yanked, ["1.2.0", "3.0.0"]);
    assert_eq!(
        state.newest(),
        Some(&records[5]),
        "2.0.0 is not retracted by an older yank"
    );
    let v120 = index
        .release(&records[2].release_key())
        .await
        .unwrap()
        .unwrap();
    assert!(v120.is_yanked());
    assert_eq!(
        v120.release(),
        Some(&records[2]),
        "a yanked release keeps its metadata"
    );
    assert_eq!(
        index
            .record_bytes(&records[2].release_key())
            .await
            .unwrap()
            .len(),
        2
    );
    let recent: Vec<String> = index
        .recent(10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.record().version().to_string())
        .collect();
    assert_eq!(recent, ["1.1.0", "2.0.0", "1.0.0"]);
    let stats = index.stats().await.unwrap();
    assert_eq!((stats.packages, stats.releases, stats.yanked), (1, 5, 2));
}

#[tokio::test]
async fn scenario_yanks() {
    both!(yanks(), yanked_and_restored);
}

fn conflicts() -> Vec<SignedRecord> {
    let k = key(1);
    // Two records of 1.0.0 with the same seq, told apart by their titles.
    let v1 = release(&k, "1.0.0").seq(5).cid(cid(1));
    let (a, b) = (v1.clone().title("A").sign(), v1.title("B").sign());
    let (low, high) = if a.order(&b) == std::cmp::Ordering::Less {
        (a, b)
    } else {
        (b, a)
    };
    vec![
        // Equivocation: the lower first, so the node logs both.
        low,
        high,
        // CID conflict on 2.0.0: an older record pointing elsewhere, then a newer one.
        release(&k, "2.0.0").code(2).seq(10).cid(cid(2)).sign(),
        release(&k, "2.0.0").code(2).seq(9).cid(cid(77)).sign(),
        release(&k, "2.0.0").code(2).seq(11).cid(cid(78)).sign(),
    ]
}

async fn conflicts_and_equivocation(index: &dyn Index, records: &[SignedRecord]) {
    let v1 = index
        .release(&records[0].release_key())
        .await
        .unwrap()
        .unwrap();
    assert!(v1.is_equivocated());
    assert_eq!(
        v1.release(),
        Some(&records[1]),
        "the tie goes to the greater record"
    );
    let v2 = index
        .release(&records[2].release_key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v2.release(), Some(&records[4]), "higher seq wins the slot");
    assert_eq!(v2.conflicting_cids().map(|c| c.len()), Some(3));
    assert_eq!(
        index
            .record_bytes(&records[2].release_key())
            .await
            .unwrap()
            .len(),
        3,
        "evidence kept"
    );
    let stats = index.stats().await.unwrap();
    assert_eq!((stats.releases, stats.conflicts, stats.records), (2, 2, 4));
    let state = index
        .package(&records[0].record().package_key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.newest(), Some(&records[4]));
}

#[tokio::test]
async fn scenario_conflicts_and_equivocation() {
    both!(conflicts(), conflicts_and_equivocation);
}

fn searchable() -> Vec<SignedRecord> {
    let (k1, k2) = (key(1), key(2));
    let r = |key, package, title, seq| {
        release(key, "1.0.0")
            .package(package)
            .seq(seq)
            .cid(cid(1))
            .title(title)
            .sign()
    };
    vec![
        r(&k1, "com.example.chat", "Chat", 1),
        r(&k1, "org.foo.chatter", "Chatter app", 2),
        r(&k2, "com.bar.notes", "Notes for chat", 3),
        r(&k2, "com.example.app", "Example App", 4),
        // The title changes with the newest release: the old title's words go.
        release(&k2, "1.1.0")
            .package("com.bar.notes")
            .code(2)
            .seq(5)
            .cid(cid(2))
            .title("Notes for chat, renamed memo")
            .sign(),
        release(&k1, "2.0.0")
            .package("com.example.chat")
            .code(2)
            .seq(6)
            .cid(cid(3))
            .title("Messenger")
            .sign(),
    ]
}

async fn search_ranking(index: &dyn Index, _records: &[SignedRecord]) {
    let names = |hits: Vec<ipsr_indexer::Hit>| -> Vec<(String, u32)> {
        hits.into_iter()
            .map(|h| (h.package.package.to_string(), h.score))
            .collect()
    };
    assert_eq!(
        names(index.search("chat", 10).await.unwrap()),
        [
            ("com.example.chat".to_owned(), search::W_NAME_LAST),
            ("com.bar.notes".to_owned(), search::W_TITLE),
            ("org.foo.chatter".to_owned(), search::W_NAME_PREFIX),
        ]
    );
    assert_eq!(names(index.search("chat", 1).await.unwrap()).len(), 1);
    // Every word must match; prefixes match; case does not matter.
    assert_eq!(
        names(index.search("CHAT app", 10).await.unwrap()),
        [(
            "org.foo.chatter".to_owned(),
            search::W_NAME_PREFIX + search::W_TITLE
        )]
    );
    assert_eq!(
        names(index.search("memo", 10).await.unwrap()),
        [("com.bar.notes".to_owned(), search::W_TITLE)]
    );
    assert_eq!(
        names(index.search("messen", 10).await.unwrap()),
        [("com.example.chat".to_owned(), search::W_TITLE_PREFIX)]
    );
    let hits = index.search("example", 10).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert!(
        hits[0].package.to_string() < hits[1].package.to_string(),
        "ties by author/package"
    );
    assert_eq!(
        hits.iter()
            .find(|h| h.package.package.as_str() == "com.example.app")
            .unwrap()
            .title,
        "Example App"
    );
    assert!(
        index.search("x", 10).await.unwrap().is_empty(),
        "one-letter words are ignored"
    );
    assert!(index.search("nothing", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn scenario_search_ranking() {
    both!(searchable(), search_ranking);
}

/// One package with more versions, records and yanks than one command of
/// the `apply` script takes (256 items), then most yanks undone: the script
/// splits its sections into several commands.
fn many_versions() -> Vec<SignedRecord> {
    let k = key(3);
    let package = "org.many.versions";
    let v = |i: u64| format!("1.{i}.0");
    // Version 1.i.0 has version code i + 1 and content cid(i + 1).
    let rel = |i: u64, seq: u64| {
        release(&k, &v(i))
            .package(package)
            .code(i + 1)
            .seq(seq)
            .cid(cid(u32::try_from(i + 1).unwrap()))
            .sign()
    };
    let mut out: Vec<SignedRecord> = (0..700).map(|i| rel(i, i + 1)).collect();
    out.extend((0..300).map(|i| yank(&k, &v(i)).package(package).seq(1000 + i).sign()));
    out.extend((0..290).map(|i| rel(i, 2000 + i)));
    out
}

async fn many_versions_in_one_package(index: &dyn Index, records: &[SignedRecord]) {
    let pk = records[0].record().package_key();
    let state = index.package(&pk).await.unwrap().unwrap();
    assert_eq!(state.releases().count(), 700);
    let yanked: Vec<String> = state
        .releases()
        .filter(|r| r.is_yanked())
        .map(|r| r.key().version.to_string())
        .collect();
    let expected: Vec<String> = (290..300).map(|i| format!("1.{i}.0")).collect();
    assert_eq!(yanked, expected);
    assert_eq!(state.newest(), Some(&records[699]));
    let stats = index.stats().await.unwrap();
    // 300 versions with a yank slot, 290 of them with a newer release record.
    assert_eq!(
        (stats.packages, stats.releases, stats.records, stats.yanked),
        (1, 700, 1000, 10)
    );
}

#[tokio::test]
async fn scenario_many_versions_in_one_package() {
    both!(many_versions(), many_versions_in_one_package);
}

/// A signed identity document of `author` following `prev`.
fn identity(
    author: &ipsr_proto::AuthorKey,
    prev: Option<&ipsr_proto::SignedIdentity>,
    signers: &[&ipsr_proto::AuthorKey],
    threshold: u32,
    seq: u64,
    by: &ipsr_proto::AuthorKey,
) -> ipsr_proto::SignedIdentity {
    let mut ids: Vec<_> = signers.iter().map(|k| k.author_id()).collect();
    ids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut admins = vec![author.author_id(), key(40).author_id()];
    admins.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    ipsr_proto::Identity {
        prev: prev.map(|p| p.identity_id()),
        signers: ids,
        threshold,
        admins,
        created_at: ipsr_testkit::T0 + seq,
        seq: ipsr_testkit::T0 + seq,
        ..ipsr_proto::Identity::implicit(author.author_id())
    }
    .sign(&[by])
    .unwrap()
}

/// The story of `docs/records.md` section 10 through the node and the
/// indexer: a stolen signer key's records, its revocation, a re-signed
/// release, then a two-of-three threshold. Both backends answer alike, and
/// as the node's store does.
#[tokio::test]
async fn scenario_identities_revoke_and_threshold() {
    for url in [redis_url(), shared_cluster().url()] {
        identities_revoke_and_threshold(&url).await;
    }
}

async fn identities_revoke_and_threshold(url: &str) {
    use ipsr_proto::Signed;
    let (main, recovery) = (key(41), key(40));
    let (laptop, phone, tablet, desk) = (key(42), key(43), key(44), key(45));
    let p = "com.example.identity";
    let genesis = identity(&main, None, &[&laptop], 1, 10, &main);
    let v1 = release(&main, "1.0.0")
        .package(p)
        .code(1)
        .seq(20)
        .cid(cid(1))
        .title("Example")
        .build();
    let v1_laptop = v1.clone().sign(&laptop).unwrap();
    let thief = release(&main, "9.9.9")
        .package(p)
        .code(u64::MAX)
        .seq(30)
        .cid(cid(9))
        .build()
        .sign(&laptop)
        .unwrap();
    let thief_yank = yank(&main, "1.0.0")
        .package(p)
        .seq(30)
        .build()
        .sign(&laptop)
        .unwrap();
    let rotated = identity(&main, Some(&genesis), &[&phone], 1, 40, &recovery);
    let v1_phone = v1_laptop.cosign(&phone).unwrap();
    let three = identity(
        &main,
        Some(&rotated),
        &[&phone, &tablet, &desk],
        2,
        50,
        &main,
    );
    let v1_two = v1_phone.cosign(&tablet).unwrap();
    let v2_one = release(&main, "2.0.0")
        .package(p)
        .code(2)
        .seq(60)
        .cid(cid(2))
        .title("Example")
        .build()
        .sign(&phone)
        .unwrap();
    let items: Vec<Signed> = vec![
        Signed::Identity(genesis),
        Signed::Record(v1_laptop),
        Signed::Record(thief.clone()),
        Signed::Record(thief_yank),
        Signed::Identity(rotated),
        Signed::Record(v1_phone),
        Signed::Identity(three.clone()),
        Signed::Record(v1_two.clone()),
        Signed::Record(v2_one.clone()),
    ];
    let (_dir, node) = common::node().await;
    let test = TestIndex::new(url, "identities");
    let running = Running::start(&node, test.index.clone());
    let store = StoreIndex::new(node.store().clone());
    let pk = v2_one.record().package_key();
    // First the thief's records, indexed; then the rest, in later batches:
    // the new documents make the indexer derive the package again.
    for item in &items[..4] {
        node.publish_signed(item.clone()).await.unwrap();
    }
    running.caught_up(&node).await;
    for index in [&store as &dyn Index, &test.index] {
        let package = index.package(&pk).await.unwrap().unwrap();
        assert_eq!(package.newest(), Some(&thief));
    }
    for item in &items[4..] {
        node.publish_signed(item.clone()).await.unwrap();
    }
    running.caught_up(&node).await;
    for index in [&store as &dyn Index, &test.index] {
        let package = index.package(&pk).await.unwrap().unwrap();
        // 2.0.0 has one of the two signatures it needs: not in force. 1.0.0
        // is, with phone's and tablet's signatures (laptop's went with it).
        let newest = package.newest().unwrap();
        assert_eq!(newest.payload(), v1_two.payload());
        let signers: Vec<_> = newest.approvals().iter().map(|a| a.key_id()).collect();
        let mut expected = vec![phone.author_id(), tablet.author_id()];
        expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(signers, expected);
        assert!(
            package
                .release(&"9.9.9".parse().unwrap())
                .is_none_or(|r| r.release().is_none())
        );
        let v1 = package.release(&"1.0.0".parse().unwrap()).unwrap();
        assert!(!v1.is_yanked());
    }
    let records: Vec<SignedRecord> = vec![v1_two, v2_one.clone(), thief];
    same_answers(&store, &test.index, &records).await;

    // A document alone, with no record after it: one signature is enough
    // now, and 2.0.0 comes into force in both backends.
    let four = identity(&main, Some(&three), &[&phone, &tablet, &desk], 1, 70, &main);
    node.publish_signed(Signed::Identity(four)).await.unwrap();
    running.caught_up(&node).await;
    for index in [&store as &dyn Index, &test.index] {
        let package = index.package(&pk).await.unwrap().unwrap();
        assert_eq!(package.newest(), Some(&v2_one));
    }
    same_answers(&store, &test.index, &records).await;
}

/// Rule 9 (APK certificate continuity) through the node and the indexer: a
/// release of a stranger's certificate is never the newest, a proof of
/// rotation carries the package to a new one, and an identity document that
/// names a certificate changes which releases follow. Both backends answer
/// alike.
#[tokio::test]
async fn scenario_apk_certificates() {
    for url in [redis_url(), shared_cluster().url()] {
        apk_certificates(&url).await;
    }
}

async fn apk_certificates(url: &str) {
    use ipsr_proto::{CertCheck, Signed};
    let (main, recovery) = (key(51), key(40));
    let p = "com.example.certs";
    let (a, b, t) = ([0xaa; 32], [0xbb; 32], [0x77; 32]);
    let signed_by = |version: &str, code: u64, cert: [u8; 32], lineage: Vec<[u8; 32]>| {
        release(&main, version)
            .package(p)
            .code(code)
            .seq(code * 10)
            .cid(cid(code as u32))
            .title("Certs")
            .metadata(|m| {
                m.signing_cert_sha256 = Some(cert);
                m.signing_cert_lineage = lineage;
            })
            .build()
            .sign(&main)
            .unwrap()
    };
    let v1 = signed_by("1.0.0", 1, a, vec![]);
    let thief = signed_by("2.0.0", 2, t, vec![]);
    let v3 = signed_by("3.0.0", 3, b, vec![a, b]);
    let (_dir, node) = common::node().await;
    let test = TestIndex::new(url, "apk_certificates");
    let running = Running::start(&node, test.index.clone());
    let store = StoreIndex::new(node.store().clone());
    let pk = v1.record().package_key();
    let checks = |package: &ipsr_proto::PackageState| {
        package
            .cert_checks()
            .into_iter()
            .map(|(v, c)| (v.to_string(), c))
            .collect::<Vec<_>>()
    };

    // 2.0.0 has the highest code but a stranger's certificate.
    for r in [&v1, &thief] {
        node.publish(r.clone()).await.unwrap();
    }
    running.caught_up(&node).await;
    for index in [&store as &dyn Index, &test.index] {
        let package = index.package(&pk).await.unwrap().unwrap();
        assert_eq!(package.newest(), Some(&v1));
        assert_eq!(checks(&package)[1].1, CertCheck::Changed { expected: a });
    }

    // 3.0.0 rotates from the package's certificate.
    node.publish(v3.clone()).await.unwrap();
    running.caught_up(&node).await;
    for index in [&store as &dyn Index, &test.index] {
        let package = index.package(&pk).await.unwrap().unwrap();
        assert_eq!(package.newest(), Some(&v3));
        assert_eq!(
            checks(&package),
            vec![
                ("1.0.0".into(), CertCheck::First),
                ("2.0.0".into(), CertCheck::Changed { expected: a }),
                ("3.0.0".into(), CertCheck::Rotated { from: a }),
            ]
        );
    }
    let records = vec![v1.clone(), thief.clone(), v3.clone()];
    same_answers(&store, &test.index, &records).await;

    // An identity that names the stranger's certificate: 2.0.0 follows,
    // and 3.0.0, rotated from the one before 2.0.0's, no longer does.
    let mut admins = vec![main.author_id(), recovery.author_id()];
    admins.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    let doc = ipsr_proto::Identity {
        admins,
        apk_certs: vec![t],
        created_at: ipsr_testkit::T0 + 100,
        seq: ipsr_testkit::T0 + 100,
        ..ipsr_proto::Identity::implicit(main.author_id())
    }
    .sign(&[&main])
    .unwrap();
    node.publish_signed(Signed::Identity(doc)).await.unwrap();
    running.caught_up(&node).await;
    for index in [&store as &dyn Index, &test.index] {
        let package = index.package(&pk).await.unwrap().unwrap();
        assert_eq!(package.newest(), Some(&thief));
        assert_eq!(
            checks(&package)[1..],
            [
                ("2.0.0".into(), CertCheck::Allowed { from: a }),
                ("3.0.0".into(), CertCheck::Changed { expected: t }),
            ]
        );
    }
    same_answers(&store, &test.index, &records).await;
}

/// `Index::package_view`: a token names what a package view is rendered
/// from, and stops naming it once anything the view shows changes: a new
/// release, a yank, and an identity document that leaves the package's
/// state (and its Redis `hash`) as it was: a fork of the author's first
/// document, which the view shows as disputed. On every backend.
#[tokio::test]
async fn scenario_a_view_token_names_the_package_and_its_identity() {
    use ipsr_indexer::{PackageView, ViewToken};
    use ipsr_proto::Signed;

    let main = key(61);
    let p = "com.example.viewed";
    let genesis = identity(&main, None, &[&main], 1, 10, &main);
    // The same parent, a lower seq: the head stays `genesis`.
    let fork = identity(&main, None, &[&main, &key(62)], 1, 5, &main);
    let steps: Vec<(&str, Vec<Signed>)> = vec![
        (
            "first release",
            vec![
                Signed::Identity(genesis),
                Signed::Record(release(&main, "1.0.0").package(p).seq(20).sign()),
            ],
        ),
        (
            "second release",
            vec![Signed::Record(
                release(&main, "1.1.0").package(p).code(2).seq(30).sign(),
            )],
        ),
        (
            "yank",
            vec![Signed::Record(
                yank(&main, "1.0.0").package(p).seq(40).sign(),
            )],
        ),
        ("fork", vec![Signed::Identity(fork)]),
    ];
    let pk = PackageKey {
        author: main.author_id(),
        package: p.parse().unwrap(),
    };
    // What a view shows: versions, yanks, and whether the author is disputed.
    let shown = |state: &Option<ipsr_proto::PackageState>, identity: &ipsr_proto::IdentityState| {
        let versions: Vec<(String, bool)> = state
            .as_ref()
            .unwrap()
            .releases()
            .map(|r| (r.key().version.to_string(), r.is_yanked()))
            .collect();
        (versions, !identity.forks().is_empty())
    };
    let expected = [
        (vec![("1.0.0".to_owned(), false)], false),
        (
            vec![("1.0.0".to_owned(), false), ("1.1.0".to_owned(), false)],
            false,
        ),
        (
            vec![("1.0.0".to_owned(), true), ("1.1.0".to_owned(), false)],
            false,
        ),
        (
            vec![("1.0.0".to_owned(), true), ("1.1.0".to_owned(), false)],
            true,
        ),
    ];

    let (_dir, node) = common::node().await;
    let store = StoreIndex::new(node.store().clone());
    let redis = TestIndex::new(&redis_url(), "view_token");
    let cluster = TestIndex::new(&shared_cluster().url(), "view_token");
    let running = [
        Running::start(&node, redis.index.clone()),
        Running::start(&node, cluster.index.clone()),
    ];
    let indexes: [(&str, &dyn Index); 3] = [
        ("embedded", &store),
        ("redis", &redis.index),
        ("cluster", &cluster.index),
    ];
    let mut conn = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pkg_key = format!(
        "{}pkg:{{{}/{}}}",
        redis.index.prefix(),
        pk.author,
        pk.package
    );
    let mut tokens: [Option<ViewToken>; 3] = [None, None, None];
    let mut hashes = Vec::new();
    for ((step, items), expected) in steps.into_iter().zip(expected) {
        for item in items {
            node.publish_signed(item).await.unwrap();
        }
        for r in &running {
            r.caught_up(&node).await;
        }
        let hash: Option<String> = redis::cmd("HGET")
            .arg(&pkg_key)
            .arg("hash")
            .query_async(&mut conn)
            .await
            .unwrap();
        hashes.push(hash.unwrap());
        for ((name, index), token) in indexes.iter().zip(&mut tokens) {
            let read = index.package_view(&pk, token.as_ref()).await.unwrap();
            let PackageView::Read {
                state,
                identity,
                token: Some(new),
            } = read
            else {
                panic!("{name}, {step}: the token read before still names the view: {read:?}");
            };
            assert_eq!(shown(&state, &identity), expected, "{name}, {step}");
            assert_ne!(token.as_ref(), Some(&new), "{name}, {step}");
            // Named again while nothing changes, however often asked.
            for _ in 0..2 {
                let again = index.package_view(&pk, Some(&new)).await.unwrap();
                assert!(
                    matches!(again, PackageView::Unchanged),
                    "{name}, {step}: {again:?}"
                );
            }
            // And a caller without a token reads the same.
            let PackageView::Read {
                state, identity, ..
            } = index.package_view(&pk, None).await.unwrap()
            else {
                panic!("{name}, {step}: unchanged without a token");
            };
            assert_eq!(shown(&state, &identity), expected, "{name}, {step}");
            *token = Some(new);
        }
    }
    // The fork left the package's state, and its hash, as they were: only
    // the identity's part of the token caught it.
    assert_eq!(hashes[2], hashes[3]);
}
