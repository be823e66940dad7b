//! Disk: strangers try to make a gateway store their content
//! (`docs/dev/abuse.md`, "Disk: content pinned or cached for strangers").
//!
//! ```text
//!   stranger's ipsr-node ──(bootstrap, Bitswap)── ipsr-gateway ◄── HTTP: records, uploads, /ipfs
//! ```
//!
//! The bound in each test is the gateway's blockstore directory, measured
//! on disk.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ipsr_content::unixfs::{Importer, Profile};
use ipsr_proto::{AuthorKey, ContentId, SignedRecord};
use ipsr_testkit::{Proc, agent_with_timeout, key, multipart, pattern, release, wait_for};
use serde_json::Value;

use crate::{Gateway, Node};

const MIB: u64 = 1024 * 1024;

fn agent() -> ureq::Agent {
    agent_with_timeout(Duration::from_secs(30))
}

/// Bytes of the block files under the gateway's blockstore (the pins
/// database left out).
fn blocks_on_disk(gateway: &Gateway) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) if !e.file_name().to_string_lossy().starts_with("pins.redb") => m.len(),
                _ => 0,
            })
            .sum()
    }
    walk(&gateway.data.join("blocks"))
}

/// The CID and size `bytes` import to (profile `unixfs-v1-2025`).
fn cid_of(bytes: &[u8]) -> (ContentId, u64) {
    let mut importer = Importer::new(Profile::V1_2025);
    let _ = importer.push(bytes);
    let (imported, _) = importer.finish();
    (ContentId::try_from(imported.root).unwrap(), imported.size)
}

fn record(key: &AuthorKey, package: &str, cid: ContentId, size: u64) -> SignedRecord {
    release(key, "1.0.0")
        .package(package)
        .cid(cid)
        .size(size)
        .sign()
}

/// POSTs `body` and returns the status and the JSON answer.
fn post(url: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let mut response = agent()
        .post(url)
        .header("content-type", content_type)
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    let reply = serde_json::from_reader(response.body_mut().as_reader()).unwrap();
    (status, reply)
}

/// Publishes `record` alone on `gateway`.
fn publish_record(gateway: &Gateway, record: &SignedRecord) -> (u16, Value) {
    let url = format!("{}/api/v1/publish", gateway.http);
    post(&url, "application/octet-stream", &record.to_bytes())
}

/// Publishes `record` with `content` as a multipart upload.
fn upload(gateway: &Gateway, record: &SignedRecord, content: &[u8]) -> (u16, Value) {
    let octet = "application/octet-stream";
    let (content_type, body) = multipart(&[
        ("record", octet, &record.to_bytes()),
        ("content", octet, content),
    ]);
    post_reading_early(gateway, "/api/v1/publish", &content_type, body)
}

/// POSTs as a client that reads the answer while it sends (curl does): a
/// gateway refuses an upload before it reads the content, answers and
/// closes, so sending the rest fails. Returns the status and the JSON.
fn post_reading_early(
    gateway: &Gateway,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let authority = gateway.authority().to_owned();
    let mut stream = TcpStream::connect(&authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let sending = std::thread::spawn(move || {
        // Fails once the gateway has answered and closed.
        let _ = writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.write_all(&body));
    });
    let mut answer = Vec::new();
    // A reset after the answer is no matter: what came before it is here.
    let _ = stream.read_to_end(&mut answer);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    sending.join().unwrap();
    let text = String::from_utf8_lossy(&answer);
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length");
    (status, serde_json::from_str(&rest[..length]).unwrap())
}

/// A stranger's `ipsr-node`, joined to the gateway.
struct Stranger {
    _proc: Proc,
    api: String,
}

impl Stranger {
    fn start(dir: &Path, gateway: &Gateway) -> Self {
        let Node { api, proc, .. } = Node::start(dir, "stranger", &gateway.p2p, &[]);
        Self { _proc: proc, api }
    }

    /// Adds `bytes` on the stranger's node (pinned and provided there).
    fn add(&self, bytes: &[u8]) -> (ContentId, u64) {
        let (status, added) = post(
            &format!("{}/v1/content", self.api),
            "application/octet-stream",
            bytes,
        );
        assert_eq!(status, 200, "{added}");
        let cid: ContentId = added["cid"].as_str().unwrap().parse().unwrap();
        (cid, added["size"].as_u64().unwrap())
    }

    /// Publishes `record` on the stranger's node (it reaches the gateway
    /// by gossip too).
    fn publish(&self, record: &SignedRecord) {
        let url = format!("{}/v1/records", self.api);
        let (status, reply) = post(&url, "application/octet-stream", &record.to_bytes());
        assert!(status == 200 || status == 201, "{status} {reply}");
    }
}

/// Watches the gateway's blockstore for `period` and returns the most it
/// held.
fn most_on_disk(gateway: &Gateway, period: Duration) -> u64 {
    let end = Instant::now() + period;
    let mut most = 0;
    while Instant::now() < end {
        most = most.max(blocks_on_disk(gateway));
        std::thread::sleep(Duration::from_millis(100));
    }
    most
}

/// Attack: a brand-new author publishes 8 MiB on their own node and posts
/// only the signed record to a gateway with uploads off.
/// Bound: the record is published (valid, it propagates); the gateway
/// fetches none of the content; the answer says so.
#[test]
fn a_record_alone_from_a_stranger_does_not_fill_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(dir.path(), &[]);
    let stranger = Stranger::start(dir.path(), &gateway);
    let content = pattern(21, 8 * MIB as usize);
    let (cid, size) = stranger.add(&content);
    let record = record(&key(21), "com.attacker.fill", cid, size);
    stranger.publish(&record);

    let (status, reply) = publish_record(&gateway, &record);
    assert!(status == 200 || status == 201, "{status} {reply}");
    // Before the fix the gateway held all 8 MiB within a second or two.
    let most = most_on_disk(&gateway, Duration::from_secs(4));
    assert!(most < 64 * 1024, "the gateway stored {most} bytes");
    assert_eq!(reply["pinned"], false, "{reply}");
    assert_eq!(reply["pin"]["status"], "refused", "{reply}");
    assert_eq!(reply["pin"]["code"], "uploads_forbidden", "{reply}");
    assert_eq!(gateway.metric("ipsr_pins"), 0);
    assert_eq!(
        gateway.metric("ipsr_gateway_pins_refused_total{reason=\"uploads_forbidden\"}"),
        1
    );
    eprintln!(
        "record alone, uploads off: the gateway's blockstore held at most {most} bytes of an {size}-byte release"
    );
}

/// Attack: a record states 1 MiB for content of 6 MiB, posted alone to a
/// gateway that takes content from anyone.
/// Bound: the fetch stops at the root (it declares 6 MiB); nothing is
/// pinned, the blockstore holds the root block only.
#[test]
fn a_record_understating_its_content_is_refused_while_fetching() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(dir.path(), &["--uploads-from-anyone"]);
    let stranger = Stranger::start(dir.path(), &gateway);
    let content = pattern(22, 6 * MIB as usize);
    let (cid, size) = stranger.add(&content);
    assert_eq!(size, 6 * MIB);
    let record = record(&key(22), "com.attacker.small", cid, MIB);

    let (status, reply) = publish_record(&gateway, &record);
    assert_eq!(status, 201, "{reply}");
    // Before the fix the gateway fetched and pinned all 6 MiB.
    let most = most_on_disk(&gateway, Duration::from_secs(4));
    assert!(most < 64 * 1024, "the gateway stored {most} bytes");
    assert_eq!(reply["pin"]["status"], "fetching", "{reply}");
    wait_for("the pin refused for its size", || {
        (gateway.metric("ipsr_pins_refused_total{reason=\"size\"}") == 1).then_some(())
    });
    assert_eq!(
        gateway.metric("ipsr_gateway_pins_refused_total{reason=\"content_mismatch\"}"),
        1
    );
    assert_eq!(gateway.metric("ipsr_pins"), 0, "nothing pinned");
    assert_eq!(gateway.metric("ipsr_blockstore_reserved_bytes"), 0);
    eprintln!("record stating 1 MiB for 6 MiB: refused at the root, {most} bytes stored");
}

/// Attack: `GET /ipfs/{cid}` of more foreign content than the gateway's
/// cap (six 3 MiB files, a 4 MiB cap).
/// Bound: every file is served whole, and the blockstore stays within the
/// cap by evicting the least recently used blocks (before, a gateway had
/// no cap by default, and with one the writes past it failed, so nothing
/// more was cached).
#[test]
fn foreign_content_read_through_ipfs_stays_within_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(dir.path(), &["--max-storage-mib", "4"]);
    let stranger = Stranger::start(dir.path(), &gateway);
    let mut most = 0;
    for seed in 0..6u64 {
        let content = pattern(30 + seed, 3 * MIB as usize);
        let (cid, _) = stranger.add(&content);
        let got = wait_for("the file through /ipfs", || {
            let mut response = agent()
                .get(format!("{}/ipfs/{cid}", gateway.http))
                .call()
                .ok()?;
            let mut bytes = Vec::new();
            response
                .body_mut()
                .with_config()
                .limit(16 * MIB)
                .reader()
                .read_to_end(&mut bytes)
                .ok()?;
            Some(bytes)
        });
        assert!(got == content, "file {seed} served whole");
        let now = blocks_on_disk(&gateway);
        most = most.max(now);
        assert!(now <= 4 * MIB, "{now} bytes on disk after file {seed}");
    }
    // Each read caches what its download stored before the answer ended.
    let evicted = gateway.metric("ipsr_blockstore_evicted_blocks_total");
    assert!(evicted >= 1, "the cache makes room by eviction");
    eprintln!(
        "18 MiB read through /ipfs with a 4 MiB cap: at most {most} bytes on disk, {evicted} blocks evicted"
    );
}

/// Attack: one author uploads until the gateway is full.
/// Bound: their quota (3 MiB) stops them with 507 `quota_exceeded` while
/// another author still publishes; past the cap (5 MiB) of pinned data,
/// 507 `blockstore_full`.
#[test]
fn an_author_over_quota_is_refused_while_another_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(
        dir.path(),
        &[
            "--uploads-from-anyone",
            "--max-pinned-per-author-mib",
            "3",
            "--max-storage-mib",
            "5",
        ],
    );
    let two_mib = |seed| pattern(seed, 2 * MIB as usize);
    let publish = |author: u8, package: &str, bytes: &[u8]| {
        let (cid, size) = cid_of(bytes);
        upload(&gateway, &record(&key(author), package, cid, size), bytes)
    };

    let (status, reply) = publish(41, "com.example.one", &two_mib(41));
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["pinned"], true, "{reply}");
    let (status, reply) = publish(41, "com.example.two", &two_mib(42));
    assert_eq!(
        (status, reply["code"].as_str()),
        (507, Some("quota_exceeded")),
        "{reply}"
    );
    let (status, reply) = publish(43, "com.example.other", &two_mib(43));
    assert_eq!(status, 201, "another author still publishes: {reply}");
    // 4 MiB pinned: a third author's 2 MiB would pass the 5 MiB cap.
    let (status, reply) = publish(44, "com.example.third", &two_mib(44));
    assert_eq!(
        (status, reply["code"].as_str()),
        (507, Some("blockstore_full")),
        "{reply}"
    );

    assert_eq!(gateway.metric("ipsr_pins"), 2);
    assert_eq!(
        gateway.metric("ipsr_pins_refused_total{reason=\"quota\"}"),
        1
    );
    assert_eq!(
        gateway.metric("ipsr_pins_refused_total{reason=\"storage\"}"),
        1
    );
    let on_disk = blocks_on_disk(&gateway);
    assert!(on_disk <= 5 * MIB, "{on_disk}");
    eprintln!("uploads with a 3 MiB quota and a 5 MiB cap: {on_disk} bytes on disk, 2 pins");
}
