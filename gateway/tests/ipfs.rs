//! `GET /ipfs/{cid}` in its verifiable forms (`?format=raw`, `?format=car`)
//! and CAR uploads through `POST /api/v1/publish`, with `warp::test`
//! against the routes of a gateway on a real in-process node.
//!
//! ```text
//!   gateway node g ─ a      a adds content; g serves it from the swarm
//! ```

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use ipsr_content::Block;
use ipsr_content::unixfs::{FileReader, Importer, Profile, links};
use ipsr_gateway::{Gateway, GatewayConfig, Uploads};
use ipsr_node::Client;
use ipsr_proto::{AuthorKey, ContentId, SignedRecord, Verified};
use ipsr_testkit::{pattern, release, wait_until};
use iroh_car::{CarHeader, CarReader, CarWriter};
use serde_json::Value;
use warp::http::Response;

/// The longest any step of a test waits.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The gateway's `ipfs_timeout` in these tests.
const IPFS_TIMEOUT: Duration = Duration::from_secs(1);
const MIB: usize = 1024 * 1024;

/// A node on loopback in a temp dir, once it listens, and its dialable
/// address.
async fn node() -> (tempfile::TempDir, Client, String) {
    let dir = tempfile::tempdir().unwrap();
    let node = ipsr_node::spawn(ipsr_node::Config::local(dir.path().to_owned()))
        .await
        .unwrap();
    wait_until("the node listens", || async {
        !node.listen_addrs().await.unwrap().is_empty()
    })
    .await;
    let addr = format!(
        "{}/p2p/{}",
        node.listen_addrs().await.unwrap()[0],
        node.peer_id()
    );
    (dir, node, addr)
}

/// A gateway on `node` with `ipfs_timeout` 1 s, then `tweak`.
fn gateway(node: &Client, tweak: impl FnOnce(&mut GatewayConfig)) -> Gateway {
    let mut config = GatewayConfig::default();
    config.ipfs_timeout = IPFS_TIMEOUT;
    tweak(&mut config);
    let index = Arc::new(ipsr_indexer::StoreIndex::new(node.store().clone()));
    Gateway::new(node.clone(), index, config)
}

/// `g` dials `a` and waits until both see the connection.
async fn connect(g: &Client, a: &Client, a_addr: &str) {
    g.dial(a_addr.parse().unwrap()).await.unwrap();
    wait_until("g is connected to a", || async {
        g.peers().await.unwrap().contains(&a.peer_id())
    })
    .await;
    // Identify tells each side the other serves the DHT.
    wait_until("g and a are in each other's routing table", || async {
        g.dht_peers().await.unwrap() >= 1 && a.dht_peers().await.unwrap() >= 1
    })
    .await;
}

async fn get(g: &Gateway, path: &str, headers: &[(&str, &str)]) -> Response<Bytes> {
    let mut request = warp::test::request().method("GET").path(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let routes = ipsr_gateway::routes(g.clone());
    tokio::time::timeout(TIMEOUT, request.reply(&routes))
        .await
        .expect("the gateway answered in time")
}

fn header<'r>(response: &'r Response<Bytes>, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn code(response: &Response<Bytes>) -> String {
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    body["code"].as_str().unwrap().to_owned()
}

/// The blocks of `file` imported with the v1 profile (leaves first, the
/// root last) and the root.
fn import(file: &[u8]) -> (Cid, Vec<Block>) {
    let mut importer = Importer::new(Profile::V1_2025);
    let mut blocks = importer.push(file);
    let (imported, last) = importer.finish();
    blocks.extend(last);
    (imported.root, blocks)
}

/// The blocks of the DAG under `root` in depth-first order, from `blocks`.
fn dfs(root: Cid, blocks: &[Block]) -> Vec<Cid> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(cid) = stack.pop() {
        out.push(cid);
        let block = blocks.iter().find(|b| *b.cid() == cid).unwrap();
        stack.extend(links(block).unwrap().into_iter().rev());
    }
    out
}

/// Adds `file` to `node` (v1 profile); returns the root and the DAG's
/// blocks in depth-first order, computed here.
async fn add(node: &Client, file: &Bytes) -> (Cid, Vec<Cid>) {
    let root = node
        .content()
        .add_bytes(file.clone(), Profile::V1_2025, None)
        .await
        .unwrap()
        .root;
    let (_, blocks) = import(file);
    (root, dfs(root, &blocks))
}

/// Parses a CAR with iroh-car's reader: its roots and its blocks, each
/// checked against its CID.
async fn parse_car(bytes: &[u8]) -> (Vec<Cid>, Vec<Block>) {
    let mut reader = CarReader::new(bytes).await.unwrap();
    let roots = reader.header().roots().to_vec();
    let mut blocks = Vec::new();
    while let Some((cid, data)) = reader.next_block().await.unwrap() {
        blocks.push(Block::new(cid, data).expect("every CAR block matches its CID"));
    }
    (roots, blocks)
}

/// The file under `root` read back from `blocks`.
fn read_file(root: Cid, blocks: &[Block]) -> Vec<u8> {
    let mut reader = FileReader::new(root);
    let mut out = Vec::new();
    while let Some(next) = reader.next_needed() {
        let block = blocks.iter().find(|b| *b.cid() == next).unwrap();
        out.extend_from_slice(reader.feed(block).unwrap());
    }
    out
}

async fn write_car(roots: Vec<Cid>, blocks: &[Block]) -> Vec<u8> {
    let mut car = CarWriter::new(CarHeader::new_v1(roots), Vec::new());
    car.write_header().await.unwrap();
    for block in blocks {
        car.write(*block.cid(), block.data()).await.unwrap();
    }
    car.finish().await.unwrap()
}

/// Checks a CAR answer: headers, the root in the header, and exactly the
/// DAG's blocks in depth-first order, each verifying; returns the blocks.
async fn check_car(response: &Response<Bytes>, root: Cid, expected: &[Cid]) -> Vec<Block> {
    assert_eq!(response.status(), 200, "{:?}", response.body());
    assert_eq!(
        header(response, "content-type"),
        "application/vnd.ipld.car; version=1; order=dfs; dups=n"
    );
    assert_eq!(
        header(response, "content-disposition"),
        format!("attachment; filename=\"{root}.car\"")
    );
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert!(header(response, "cache-control").contains("immutable"));
    let (roots, blocks) = parse_car(response.body()).await;
    assert_eq!(roots, vec![root]);
    let cids: Vec<Cid> = blocks.iter().map(|b| *b.cid()).collect();
    assert_eq!(cids, expected);
    blocks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_blocks_and_cars_of_a_local_file() {
    let (_dir, node, _) = node().await;
    let g = gateway(&node, |_| {});
    let file = Bytes::from(pattern(1, 3 * MIB));
    let (root, order) = add(&node, &file).await;
    assert_eq!(order.len(), 4, "a root over three 1 MiB leaves");

    // One raw block: its bytes hash to the CID.
    for request in [
        get(&g, &format!("/ipfs/{root}?format=raw"), &[]).await,
        get(
            &g,
            &format!("/ipfs/{root}"),
            &[("accept", "application/vnd.ipld.raw")],
        )
        .await,
    ] {
        assert_eq!(request.status(), 200);
        assert_eq!(header(&request, "content-type"), "application/vnd.ipld.raw");
        assert_eq!(header(&request, "etag"), format!("\"{root}.raw\""));
        assert_eq!(
            header(&request, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header(&request, "x-content-type-options"), "nosniff");
        assert_eq!(
            header(&request, "content-disposition"),
            format!("attachment; filename=\"{root}.bin\"")
        );
        assert_eq!(header(&request, "vary"), "Accept");
        let block = Block::new(root, request.body().clone()).expect("the bytes hash to the CID");
        assert_eq!(links(&block).unwrap(), order[1..]);
    }
    let leaf = order[2];
    let raw_leaf = get(&g, &format!("/ipfs/{leaf}?format=raw"), &[]).await;
    assert_eq!(raw_leaf.status(), 200);
    Block::new(leaf, raw_leaf.body().clone()).unwrap();
    assert_eq!(raw_leaf.body()[..], file[MIB..2 * MIB]);
    let cached = get(
        &g,
        &format!("/ipfs/{root}?format=raw"),
        &[("if-none-match", &format!("\"{root}.raw\""))],
    )
    .await;
    assert_eq!(cached.status(), 304);
    assert!(cached.body().is_empty());

    // The whole DAG as a CAR, by query or by Accept.
    let car = get(&g, &format!("/ipfs/{root}?format=car"), &[]).await;
    let got = check_car(&car, root, &order).await;
    assert_eq!(read_file(root, &got), file);
    let etag = header(&car, "etag").to_owned();
    assert_eq!(etag, format!("\"{root}.car.all.dfs.dups-n\""));
    let by_accept = get(
        &g,
        &format!("/ipfs/{root}"),
        &[("accept", "application/vnd.ipld.car; version=1; order=dfs")],
    )
    .await;
    assert_eq!(by_accept.body(), car.body(), "the same bytes every time");
    let cached = get(
        &g,
        &format!("/ipfs/{root}?format=car"),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(cached.status(), 304);
    // dag-scope=block: the root alone.
    let scoped = get(&g, &format!("/ipfs/{root}?format=car&dag-scope=block"), &[]).await;
    check_car(&scoped, root, &order[..1]).await;

    // The plain form: the file's bytes.
    let plain = get(&g, &format!("/ipfs/{root}"), &[]).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.body(), &file);

    // An empty UnixFS directory (dag-pb `Data` = `Type: Directory`): its
    // block is served raw, but CARs are for files only.
    let dir = Block::hash(cid::Version::V1, 0x70, vec![0x0a, 0x02, 0x08, 0x01]).unwrap();
    node.content().put_block(dir.clone()).await.unwrap();
    let raw = get(&g, &format!("/ipfs/{}?format=raw", dir.cid()), &[]).await;
    assert_eq!(raw.status(), 200);
    assert_eq!(raw.body(), dir.data());
    let car = get(&g, &format!("/ipfs/{}?format=car", dir.cid()), &[]).await;
    assert_eq!(car.status(), 422, "{:?}", car.body());
    assert_eq!(code(&car), "content_mismatch");
}

/// A file whose first chunk repeats: `dups=n` (the default) sends the
/// repeated leaf once, `dups=y` every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cars_send_repeated_blocks_once_unless_asked() {
    let (_dir, node, _) = node().await;
    let g = gateway(&node, |_| {});
    let one = Bytes::from(pattern(2, MIB));
    let file: Bytes = [one.clone(), Bytes::from(pattern(3, MIB)), one]
        .concat()
        .into();
    let (root, order) = add(&node, &file).await;
    assert_eq!(order[1], order[3]);

    let once = get(&g, &format!("/ipfs/{root}?format=car"), &[]).await;
    let got = check_car(&once, root, &order[..3]).await;
    assert_eq!(read_file(root, &got), file);
    let every = get(
        &g,
        &format!("/ipfs/{root}"),
        &[("accept", "application/vnd.ipld.car; version=1; dups=y")],
    )
    .await;
    assert_eq!(
        header(&every, "content-type"),
        "application/vnd.ipld.car; version=1; order=dfs; dups=y"
    );
    let (_, got) = parse_car(every.body()).await;
    let cids: Vec<Cid> = got.iter().map(|b| *b.cid()).collect();
    assert_eq!(cids, order);
}

/// The gateway's node g holds nothing; a, its peer, added the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_and_cars_come_from_the_swarm() {
    let (_da, a, a_addr) = node().await;
    let (_dg, g_node, _) = node().await;
    let g = gateway(&g_node, |c| c.ipfs_timeout = TIMEOUT);
    connect(&g_node, &a, &a_addr).await;
    let file = Bytes::from(pattern(4, 3 * MIB + 5));
    let (root, order) = add(&a, &file).await;

    // A leaf no DHT record names, from the connected peer.
    let leaf = order[3];
    let raw = get(&g, &format!("/ipfs/{leaf}?format=raw"), &[]).await;
    assert_eq!(raw.status(), 200, "{:?}", raw.body());
    Block::new(leaf, raw.body().clone()).unwrap();

    let car = get(&g, &format!("/ipfs/{root}?format=car"), &[]).await;
    let got = check_car(&car, root, &order).await;
    assert_eq!(read_file(root, &got), file);
    let stat = g_node.content().stat(root).await.unwrap();
    assert!(stat.complete && !stat.pinned, "{stat:?}");
    let plain = get(&g, &format!("/ipfs/{root}"), &[]).await;
    assert_eq!(plain.body(), &file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_cids_are_404_in_time_and_bad_requests_400() {
    let (_dir, node, _) = node().await;
    let g = gateway(&node, |_| {});
    // A CID of bytes nobody holds.
    let unknown = *Block::hash(cid::Version::V1, 0x55, &b"nobody has this"[..])
        .unwrap()
        .cid();
    for path in [
        format!("/ipfs/{unknown}?format=raw"),
        format!("/ipfs/{unknown}?format=car"),
        format!("/ipfs/{unknown}"),
    ] {
        let started = tokio::time::Instant::now();
        let response = get(&g, &path, &[]).await;
        let waited = started.elapsed();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(code(&response), "not_found");
        assert!(
            waited >= IPFS_TIMEOUT && waited < IPFS_TIMEOUT + Duration::from_secs(3),
            "{path}: {waited:?}"
        );
    }

    let dag_cbor = "bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae";
    for (path, expected) in [
        ("/ipfs/not-a-cid?format=raw".to_owned(), "bad_cid"),
        (format!("/ipfs/{dag_cbor}?format=raw"), "bad_cid"),
        (format!("/ipfs/{unknown}?format=bogus"), "bad_query"),
        (
            format!("/ipfs/{unknown}?format=car&car-version=2"),
            "bad_query",
        ),
        (
            format!("/ipfs/{unknown}?format=car&dups=maybe&car-dups=x"),
            "bad_query",
        ),
        (
            format!("/ipfs/{unknown}?format=car&entity-bytes=0:99"),
            "bad_query",
        ),
    ] {
        let response = get(&g, &path, &[]).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(code(&response), expected, "{path}");
    }

    let head = warp::test::request()
        .method("HEAD")
        .path(&format!("/ipfs/{unknown}?format=raw"))
        .reply(&ipsr_gateway::routes(g.clone()))
        .await;
    assert_eq!(head.status(), 405, "HEAD is not served");

    // The probe CID of trustless gateways.
    let raw = get(&g, "/ipfs/bafkqaaa?format=raw", &[]).await;
    assert_eq!(raw.status(), 200);
    assert!(raw.body().is_empty());
    let car = get(&g, "/ipfs/bafkqaaa?format=car", &[]).await;
    assert_eq!(car.status(), 200);
    let (roots, blocks) = parse_car(car.body()).await;
    assert_eq!(roots, vec!["bafkqaaa".parse::<Cid>().unwrap()]);
    assert!(blocks.is_empty());
    // The exact bytes, as in docs/gateway-ipfs.md: varint(25), then the
    // dag-cbor map {"roots": [CID bafkqaaa], "version": 1}.
    let expected: &[u8] = &[
        0x19, 0xa2, 0x65, b'r', b'o', b'o', b't', b's', 0x81, 0xd8, 0x2a, 0x45, 0x00, 0x01, 0x55,
        0x00, 0x00, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x01,
    ];
    assert_eq!(car.body().as_ref(), expected);
}

// ---- CAR uploads through POST /api/v1/publish ----

/// `com.example.app` at `version` with version code and seq `code` (created
/// at `T0 + code`), content `root` of `size` bytes.
fn car_release(
    key: &AuthorKey,
    version: &str,
    code: u64,
    root: Cid,
    size: u64,
) -> SignedRecord<Verified> {
    release(key, version)
        .code(code)
        .seq(code)
        .cid(ContentId::new(root).unwrap())
        .size(size)
        .sign()
}

/// A `multipart/form-data` body with the record and the content as a CAR,
/// and its `Content-Type`.
fn form(record: &SignedRecord<Verified>, car: &[u8]) -> (String, Vec<u8>) {
    ipsr_testkit::multipart(&[
        ("record", "application/octet-stream", &record.to_bytes()),
        ("content", "application/vnd.ipld.car", car),
    ])
}

async fn publish(g: &Gateway, record: &SignedRecord<Verified>, car: &[u8]) -> Response<Bytes> {
    let routes = ipsr_gateway::routes(g.clone());
    let (content_type, body) = form(record, car);
    let request = warp::test::request()
        .method("POST")
        .path("/api/v1/publish")
        .header("content-type", content_type)
        .body(body);
    tokio::time::timeout(TIMEOUT, request.reply(&routes))
        .await
        .expect("the gateway answered in time")
}

async fn pinned(node: &Client) -> HashSet<Cid> {
    node.content()
        .pins()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.root)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn car_uploads_are_checked_against_the_record() {
    let (_dir, node, _) = node().await;
    let key = AuthorKey::from_seed(&[1; 32]);
    let stranger = AuthorKey::from_seed(&[2; 32]);
    let g = gateway(&node, |c| {
        c.uploads = Uploads::Authors(HashSet::from([key.author_id()]));
        c.max_upload_bytes = 8 * MIB as u64;
    });
    let file = Bytes::from(pattern(5, 3 * MIB));
    let (root, blocks) = import(&file);
    let size = file.len() as u64;
    let good_car = write_car(vec![root], &blocks).await;

    // The root differs: 422, nothing pinned, nothing published.
    let other = Bytes::from(pattern(6, MIB + 1));
    let (other_root, other_blocks) = import(&other);
    let other_car = write_car(vec![other_root], &other_blocks).await;
    let refused = publish(&g, &car_release(&key, "0.9.0", 9, root, size), &other_car).await;
    assert_eq!(refused.status(), 422, "{:?}", refused.body());
    assert_eq!(code(&refused), "content_mismatch");
    // A CAR that names the record's root but lacks a leaf, or carries a
    // block whose bytes do not match, or is a file of another size.
    let lacking = write_car(vec![root], &blocks[1..]).await;
    let mut tampered = good_car.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0xff;
    for (record, car) in [
        (car_release(&key, "0.9.1", 10, root, size), &lacking),
        (car_release(&key, "0.9.2", 11, root, size), &tampered),
        (car_release(&key, "0.9.3", 12, root, size + 1), &good_car),
    ] {
        let refused = publish(&g, &record, car).await;
        assert_eq!(refused.status(), 422, "{:?}", refused.body());
        assert_eq!(code(&refused), "content_mismatch");
    }
    assert!(pinned(&node).await.is_empty(), "nothing pinned");
    let unknown = get(
        &g,
        &format!("/api/v1/package/{}/com.example.app/0.9.0", key.author_id()),
        &[],
    )
    .await;
    assert_eq!(unknown.status(), 404, "the record was not published");

    // Not a CAR: 400; over the upload limit: 413.
    let garbage = publish(
        &g,
        &car_release(&key, "0.9.4", 13, root, size),
        b"not a car",
    )
    .await;
    assert_eq!(garbage.status(), 400, "{:?}", garbage.body());
    let mut padded = blocks.clone();
    padded.extend(blocks.iter().cloned());
    padded.extend(blocks.iter().cloned());
    let big = write_car(vec![root], &padded).await;
    let too_large = publish(&g, &car_release(&key, "0.9.5", 14, root, size), &big).await;
    assert_eq!(too_large.status(), 413, "{:?}", too_large.body());

    // Another author: uploads are off for it.
    let forbidden = publish(
        &g,
        &car_release(&stranger, "1.0.0", 20, root, size),
        &good_car,
    )
    .await;
    assert_eq!(forbidden.status(), 403, "{:?}", forbidden.body());
    assert_eq!(code(&forbidden), "uploads_forbidden");
    assert!(pinned(&node).await.is_empty());

    // The matching CAR: published, pinned, served.
    let accepted = publish(&g, &car_release(&key, "1.0.0", 20, root, size), &good_car).await;
    assert_eq!(accepted.status(), 201, "{:?}", accepted.body());
    let body: Value = serde_json::from_slice(accepted.body()).unwrap();
    assert_eq!(body["content_uploaded"], true);
    assert_eq!(pinned(&node).await, HashSet::from([root]));
    let served = get(&g, &format!("/ipfs/{root}"), &[]).await;
    assert_eq!(served.body(), &file);
}
