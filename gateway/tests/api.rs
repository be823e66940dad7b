//! The gateway's JSON API and downloads through `warp::test`, each test run
//! against both backends: the node's embedded store and Redis (filled by an
//! in-process indexer under a test prefix).

#![allow(clippy::unwrap_used)]

#[path = "../../indexer/tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use common::{Running, TestIndex};
use ipsr_content::unixfs::{Importer, Profile};
use ipsr_gateway::{Gateway, GatewayConfig, Uploads};
use ipsr_indexer::{Index, StoreIndex};
use ipsr_node::Client;
use ipsr_proto::{AuthorKey, ContentId, Platform, SignedRecord};
use ipsr_testkit::{
    ClusterOptions, RedisCluster, RedisServer, ReleaseBuilder, cid, free_port, key, pattern,
    redis_url, release, shared_cluster, wait_until, yank,
};
use serde_json::Value;
use warp::Filter;
use warp::http::Response;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Embedded,
    Redis,
    /// A Redis Cluster of 3 masters (one per test process).
    Cluster,
}

/// A node, a gateway over it, and for Redis the index and its indexer.
struct Env {
    _dir: tempfile::TempDir,
    node: Client,
    gateway: Gateway,
    redis: Option<(TestIndex, Running)>,
}

impl Env {
    async fn new(backend: Backend, name: &str, config: GatewayConfig) -> Self {
        let (dir, node) = common::node().await;
        let (index, redis): (Arc<dyn Index>, _) = match backend {
            Backend::Embedded => (Arc::new(StoreIndex::new(node.store().clone())), None),
            Backend::Redis | Backend::Cluster => {
                let url = match backend {
                    Backend::Cluster => shared_cluster().url(),
                    _ => redis_url(),
                };
                let test = TestIndex::new(&url, name);
                let running = Running::start(&node, test.index.clone());
                (Arc::new(test.index.clone()), Some((test, running)))
            }
        };
        let gateway = Gateway::new(node.clone(), index, config);
        Self {
            _dir: dir,
            node,
            gateway,
            redis,
        }
    }

    /// A gateway over `index` (filled by a caller's indexer, or none).
    fn over(dir: tempfile::TempDir, node: Client, index: Arc<dyn Index>) -> Self {
        let gateway = Gateway::new(node.clone(), index, GatewayConfig::default());
        Self {
            _dir: dir,
            node,
            gateway,
            redis: None,
        }
    }

    /// Waits until the index holds everything the node holds.
    async fn settle(&self) {
        if let Some((_, running)) = &self.redis {
            running.caught_up(&self.node).await;
        }
    }

    async fn publish(&self, record: &SignedRecord) {
        self.node.publish(record.clone()).await.unwrap();
        self.settle().await;
    }

    /// Adds `bytes` as content and returns its CID and size.
    async fn content(&self, bytes: &[u8]) -> (ContentId, u64) {
        let imported = self
            .node
            .content()
            .add_bytes(Bytes::copy_from_slice(bytes), Profile::V1_2025, None)
            .await
            .unwrap();
        (ContentId::try_from(imported.root).unwrap(), imported.size)
    }

    async fn send(&self, request: warp::test::RequestBuilder) -> Response<Bytes> {
        let routes = ipsr_gateway::routes(self.gateway.clone()).map(warp::Reply::into_response);
        request
            .remote_addr(SocketAddr::from(([127, 0, 0, 1], 40000)))
            .reply(&routes)
            .await
    }

    async fn get(&self, path: &str) -> Response<Bytes> {
        self.send(warp::test::request().path(path)).await
    }

    async fn json(&self, path: &str) -> (u16, Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        let body = serde_json::from_slice(response.body())
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {:?}", response.body()));
        (status, body)
    }
}

/// Runs `$test(backend)` against each backend: the embedded store, one
/// Redis, a Redis Cluster.
macro_rules! both {
    ($name:ident, $test:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                $test(Backend::Embedded).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                $test(Backend::Redis).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis_cluster() {
                $test(Backend::Cluster).await;
            }
        }
    };
}

/// An Android app's release, as the gateway shows them: `package` at
/// `version`, titled `title`, its file `PACKAGE-VERSION.apk`, in the
/// category `tools`.
fn app<'k>(key: &'k AuthorKey, package: &str, version: &str, title: &str) -> ReleaseBuilder<'k> {
    release(key, version)
        .package(package)
        .file_name(format!("{package}-{version}.apk"))
        .platform(Platform::android())
        .title(title)
        .summary(format!("{title} in one line"))
        .metadata(|m| m.categories = vec!["tools".into()])
}

fn path_of(record: &SignedRecord) -> String {
    let k = record.release_key();
    format!("{}/{}", k.author, k.package)
}

async fn package_views(backend: Backend) {
    let env = Env::new(backend, "package_views", GatewayConfig::default()).await;
    let k = key(1);
    let (cid1, size1) = env.content(b"version one").await;
    let (cid2, size2) = env.content(b"version two!").await;
    let rel = |version, code, cid, size, seq| {
        app(&k, "com.example.chat", version, "Chat")
            .code(code)
            .cid(cid)
            .size(size)
            .seq(seq)
            .sign()
    };
    let v1 = rel("1.0.0", 1, cid1, size1, 1);
    let v2 = rel("1.1.0", 2, cid2, size2, 2);
    env.publish(&v1).await;
    env.publish(&v2).await;
    env.publish(&yank(&k, "1.1.0").package("com.example.chat").seq(3).sign())
        .await;
    let base = path_of(&v1);

    let (status, package) = env.json(&format!("/api/v1/package/{base}")).await;
    assert_eq!(status, 200, "{package}");
    assert_eq!(package["newest"], "1.0.0", "1.1.0 is yanked");
    let versions = package["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], "1.1.0");
    assert_eq!(versions[0]["yanked"], true);
    assert_eq!(versions[0]["yank_reason"], "broken");
    assert_eq!(versions[1]["yanked"], false);
    assert_eq!(versions[1]["cid"], cid1.to_string());
    assert_eq!(package["metadata"]["title"], "Chat");

    let (status, one) = env.json(&format!("/api/v1/package/{base}/1.0.0")).await;
    assert_eq!(status, 200);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(one["record"].as_str().unwrap())
        .unwrap();
    let back = SignedRecord::from_bytes(&bytes).unwrap().verify().unwrap();
    assert_eq!(back, v1, "the signed record verifies on its own");
    assert_eq!(one["yank_record"], Value::Null);
    let (_, yanked) = env.json(&format!("/api/v1/package/{base}/1.1.0")).await;
    assert!(yanked["yank_record"].is_string());

    let (status, author) = env.json(&format!("/api/v1/author/{}", k.author_id())).await;
    assert_eq!(status, 200);
    assert_eq!(author["packages"][0]["package"], "com.example.chat");
    assert_eq!(author["packages"][0]["newest"], "1.0.0");

    // Unknown and malformed paths.
    let other = key(9).author_id();
    let cases = [
        (
            format!("/api/v1/package/{other}/com.example.chat"),
            404,
            "not_found",
        ),
        (format!("/api/v1/package/{base}/9.9.9"), 404, "not_found"),
        (format!("/api/v1/author/{other}"), 404, "not_found"),
        (
            "/api/v1/package/nobody/com.example.chat".into(),
            400,
            "bad_author",
        ),
        (
            format!("/api/v1/package/{}/Bad..Name", k.author_id()),
            400,
            "bad_package",
        ),
        (format!("/api/v1/package/{base}/01.0"), 400, "bad_version"),
        ("/api/v1/nothing-here".into(), 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let (got, body) = env.json(&path).await;
        assert_eq!(
            (got, body["code"].as_str().unwrap()),
            (status, code),
            "{path}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let response = env
        .send(
            warp::test::request()
                .method("DELETE")
                .path(&format!("/api/v1/package/{base}")),
        )
        .await;
    assert_eq!(response.status(), 405);
}
both!(package_views_both, package_views);

async fn search_and_recent(backend: Backend) {
    let env = Env::new(backend, "search_and_recent", GatewayConfig::default()).await;
    let (k1, k2) = (key(1), key(2));
    let (cid, size) = env.content(b"x").await;
    let mut seq = 0;
    let mut rel = |key, package, title| {
        seq += 1;
        app(key, package, "1.0.0", title)
            .cid(cid)
            .size(size)
            .seq(seq)
            .sign()
    };
    let records = [
        rel(&k1, "com.example.chat", "Chat"),
        rel(&k1, "com.example.notes", "Notes"),
        rel(&k2, "org.other.chatter", "Chatter"),
    ];
    for r in &records {
        env.publish(r).await;
    }
    let (status, found) = env.json("/api/v1/packages?q=chat").await;
    assert_eq!(status, 200, "{found}");
    let names: Vec<&str> = found["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["package"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"com.example.chat") && names.contains(&"org.other.chatter"));

    let (_, recent) = env.json("/api/v1/packages").await;
    let names: Vec<&str> = recent["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["package"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["org.other.chatter", "com.example.notes", "com.example.chat"],
        "newest first"
    );
    // Pages of one, following the cursor.
    let (_, page1) = env.json("/api/v1/packages?limit=1").await;
    assert_eq!(page1["packages"][0]["package"], "org.other.chatter");
    let cursor = page1["next_cursor"].as_str().unwrap().to_owned();
    let (_, page2) = env
        .json(&format!("/api/v1/packages?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(page2["packages"][0]["package"], "com.example.notes");
    let (_, page3) = env.json("/api/v1/packages?limit=1&cursor=2").await;
    assert_eq!(page3["packages"].as_array().unwrap().len(), 1);
    assert_eq!(page3["next_cursor"], Value::Null, "the last page");
    // Filters.
    let (_, none) = env.json("/api/v1/packages?platform=ios").await;
    assert_eq!(none["packages"].as_array().unwrap().len(), 0);
    let (_, tools) = env.json("/api/v1/packages?category=tools&q=notes").await;
    assert_eq!(tools["packages"][0]["package"], "com.example.notes");
    let (status, bad) = env.json("/api/v1/packages?limit=0").await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("bad_query")));
}
both!(search_and_recent_both, search_and_recent);

async fn publish_records(backend: Backend) {
    let env = Env::new(backend, "publish_records", GatewayConfig::default()).await;
    let k = key(3);
    let (cid, size) = env.content(b"app bytes").await;
    let record = app(&k, "com.example.pub", "1.0.0", "Pub")
        .cid(cid)
        .size(size)
        .seq(1)
        .sign();
    let post = |path: &str, content_type: &str, body: Vec<u8>| {
        warp::test::request()
            .method("POST")
            .path(path)
            .header("content-type", content_type)
            .body(body)
    };
    let octet = "application/octet-stream";

    // Forged: one byte of the signature flipped. Refused, nothing stored.
    let mut forged = record.to_bytes();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let response = env.send(post("/api/v1/publish", octet, forged)).await;
    assert_eq!(response.status(), 422, "{:?}", response.body());
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert!(body["code"].as_str().is_some(), "{body}");
    // Garbage, wrong media type, oversized.
    let response = env
        .send(post("/api/v1/publish", octet, b"\x0a\xff\xff".to_vec()))
        .await;
    assert_eq!(response.status(), 422);
    let response = env
        .send(post("/api/v1/publish", "text/plain", record.to_bytes()))
        .await;
    assert_eq!(response.status(), 415);
    let huge = vec![0u8; ipsr_proto::limits::MAX_RECORD_BYTES + 4096];
    let response = env.send(post("/api/v1/publish", octet, huge)).await;
    assert_eq!(response.status(), 413);
    // The path names another package.
    let wrong = format!("/api/v1/package/{}/com.example.other", k.author_id());
    let response = env.send(post(&wrong, octet, record.to_bytes())).await;
    assert_eq!(response.status(), 400);
    env.settle().await;
    assert_eq!(
        env.node.store().stats().unwrap().records,
        0,
        "nothing stored"
    );

    // The real thing, on the package's own path.
    let path = format!("/api/v1/package/{}/com.example.pub", k.author_id());
    let response = env.send(post(&path, octet, record.to_bytes())).await;
    assert_eq!(response.status(), 201, "{:?}", response.body());
    let reply: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(reply["change"], "new");
    assert_eq!(reply["content_uploaded"], false);
    // Uploads are off: the record is published, its content not pinned.
    assert_eq!(reply["pinned"], false);
    assert_eq!(reply["pin"]["code"], "uploads_forbidden");
    env.settle().await;
    let (status, view) = env.json(reply["links"]["package"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(view["cid"], cid.to_string());
    // Again: a duplicate, 200.
    let response = env
        .send(post("/api/v1/publish", octet, record.to_bytes()))
        .await;
    assert_eq!(response.status(), 200);
}
both!(publish_records_both, publish_records);

/// A `multipart/form-data` body with `record` and, optionally, `content`.
fn form(record: &[u8], content: Option<&[u8]>) -> (String, Vec<u8>) {
    match content {
        Some(content) => ipsr_testkit::form(&[("record", record), ("content", content)]),
        None => ipsr_testkit::form(&[("record", record)]),
    }
}

async fn uploads(backend: Backend) {
    let allowed = key(4);
    let mut config = GatewayConfig::default();
    config.uploads = Uploads::Authors([allowed.author_id()].into_iter().collect());
    let env = Env::new(backend, "uploads", config).await;
    // The content's CID is computed here, not stored: the gateway receives
    // the bytes in the form.
    let content = pattern(7, 3 * 1024 * 1024 + 17);
    let cid = {
        let mut importer = Importer::new(Profile::V1_2025);
        let _ = importer.push(&content);
        let (imported, _) = importer.finish();
        ContentId::try_from(imported.root).unwrap()
    };
    let record_of = |key: &AuthorKey, size| {
        app(key, "com.example.upload", "2.0.0", "Upload")
            .code(2)
            .cid(cid)
            .size(size)
            .seq(1)
            .sign()
    };
    let send_form = |record: &SignedRecord, content: Option<&[u8]>| {
        let (content_type, body) = form(&record.to_bytes(), content);
        warp::test::request()
            .method("POST")
            .path("/api/v1/publish")
            .header("content-type", content_type)
            .body(body)
    };
    // An author without upload rights: 403, nothing stored.
    let stranger = record_of(&key(5), content.len() as u64);
    let response = env.send(send_form(&stranger, Some(&content))).await;
    assert_eq!(response.status(), 403, "{:?}", response.body());
    // Content that does not match the record: 422, no record stored.
    let good = record_of(&allowed, content.len() as u64);
    let response = env.send(send_form(&good, Some(b"other bytes"))).await;
    assert_eq!(response.status(), 422, "{:?}", response.body());
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["code"], "content_mismatch");
    assert_eq!(env.node.store().stats().unwrap().records, 0);
    // Matching content: stored, pinned, downloadable byte for byte.
    let response = env.send(send_form(&good, Some(&content))).await;
    assert_eq!(response.status(), 201, "{:?}", response.body());
    let reply: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(reply["content_uploaded"], true);
    assert_eq!(
        (&reply["pinned"], &reply["pin"]["status"]),
        (&Value::from(true), &Value::from("pinned"))
    );
    let pins = env.node.content().pins().await.unwrap();
    assert!(pins.iter().any(|p| p.root == *cid.cid()), "pinned");
    env.settle().await;
    let download = env.get(reply["links"]["download"].as_str().unwrap()).await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.body().as_ref(), content.as_slice());
}
both!(uploads_both, uploads);

/// The upload policy decides what a record published alone pins: nothing
/// for an author the gateway takes no content from, even when the blocks
/// are cached here (as a `GET /ipfs/` leaves them); within the author's
/// quota otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_policy_decides_what_a_record_alone_pins() {
    const MIB: usize = 1024 * 1024;
    let allowed = key(8);
    let mut config = GatewayConfig::default();
    config.uploads = Uploads::Authors([allowed.author_id()].into_iter().collect());
    config.max_pinned_per_author = Some(3 * MIB as u64);
    let env = &Env::new(Backend::Embedded, "policy", config).await;
    let cache = |bytes: Vec<u8>| {
        let content = env.node.content().clone();
        async move {
            let mut importer = Importer::new(Profile::V1_2025);
            let mut blocks = importer.push(&bytes);
            let (imported, last) = importer.finish();
            blocks.extend(last);
            for block in blocks {
                content.put_block(block).await.unwrap();
            }
            (ContentId::try_from(imported.root).unwrap(), imported.size)
        }
    };
    let post = |record: &SignedRecord| {
        let request = warp::test::request()
            .method("POST")
            .path("/api/v1/publish")
            .header("content-type", "application/octet-stream")
            .body(record.to_bytes());
        async move {
            let response = env.send(request).await;
            let reply: Value = serde_json::from_slice(response.body()).unwrap();
            (response.status().as_u16(), reply)
        }
    };
    let pinned = || async {
        let pins = env.node.content().pins().await.unwrap();
        pins.into_iter()
            .map(|p| (p.root, p.owner))
            .collect::<Vec<_>>()
    };
    let (cid, size) = cache(pattern(9, 2 * MIB)).await;

    // A stranger's record alone: stored, its content not pinned.
    let stranger = app(&key(9), "com.example.fill", "1.0.0", "Fill")
        .cid(cid)
        .size(size)
        .seq(1)
        .sign();
    let (status, reply) = post(&stranger).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["pinned"], false);
    assert_eq!(reply["pin"]["status"], "refused");
    assert_eq!(reply["pin"]["code"], "uploads_forbidden");
    assert!(pinned().await.is_empty(), "nothing pinned for a stranger");

    // The allowed author's record alone: pinned in the background (its
    // blocks are here), charged to the author.
    let own = app(&allowed, "com.example.own", "1.0.0", "Own")
        .cid(cid)
        .size(size)
        .seq(1)
        .sign();
    let (status, reply) = post(&own).await;
    assert_eq!(
        (status, &reply["pin"]["status"]),
        (201, &Value::from("fetching"))
    );
    ipsr_testkit::wait_until("the content is pinned", || async {
        !pinned().await.is_empty()
    })
    .await;
    let owner = Some(allowed.author_id().to_string());
    assert_eq!(pinned().await, vec![(*cid.cid(), owner.clone())]);

    // Another 2 MiB would pass the author's 3 MiB quota: refused at once,
    // as a record alone and as an upload.
    let more_bytes = pattern(10, 2 * MIB);
    let (cid2, size2) = cache(more_bytes.clone()).await;
    let more = app(&allowed, "com.example.more", "1.0.0", "More")
        .cid(cid2)
        .size(size2)
        .seq(1)
        .sign();
    let (status, reply) = post(&more).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["pin"]["code"], "quota_exceeded", "{reply}");
    let (content_type, body) = form(&more.to_bytes(), Some(&more_bytes));
    let response = env
        .send(
            warp::test::request()
                .method("POST")
                .path("/api/v1/publish")
                .header("content-type", content_type)
                .body(body),
        )
        .await;
    assert_eq!(response.status(), 507, "{:?}", response.body());
    let error: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(error["code"], "quota_exceeded");
    assert!(
        error["message"].as_str().unwrap().contains("quota"),
        "{error}"
    );
    assert_eq!(pinned().await, vec![(*cid.cid(), owner)]);

    let metrics = env.get("/metrics").await;
    let text = String::from_utf8_lossy(metrics.body());
    for line in [
        "ipsr_gateway_pins_refused_total{reason=\"uploads_forbidden\"} 1",
        "ipsr_gateway_pins_refused_total{reason=\"quota_exceeded\"} 2",
        "ipsr_pins_refused_total{reason=\"quota\"} 2",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

async fn downloads(backend: Backend) {
    let env = Env::new(backend, "downloads", GatewayConfig::default()).await;
    let k = key(6);
    let bytes_v1 = pattern(7, 2 * 1024 * 1024 + 5);
    let bytes_v2 = pattern(7, 1000);
    let (cid1, size1) = env.content(&bytes_v1).await;
    let (cid2, size2) = env.content(&bytes_v2).await;
    let rel = |version, code, cid, size, seq| {
        app(&k, "com.example.dl", version, "Dl")
            .code(code)
            .cid(cid)
            .size(size)
            .seq(seq)
            .sign()
    };
    env.publish(&rel("1.0.0", 1, cid1, size1, 1)).await;
    env.publish(&rel("1.1.0", 2, cid2, size2, 2)).await;
    let base = format!("/api/v1/download/{}/com.example.dl", k.author_id());

    let newest = env.get(&base).await;
    assert_eq!(newest.status(), 200);
    assert_eq!(newest.body().as_ref(), bytes_v2.as_slice());
    let h = newest.headers();
    assert_eq!(h["content-type"], "application/vnd.android.package-archive");
    assert_eq!(h["content-length"], "1000");
    assert_eq!(h["etag"], format!("\"{cid2}\""));
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"com.example.dl-1.1.0.apk\""
    );
    assert_eq!(h["accept-ranges"], "bytes");

    // A range across a block boundary of the older version.
    let from = 1024 * 1024 - 10;
    let response = env
        .send(
            warp::test::request()
                .path(&format!("{base}/1.0.0"))
                .header("range", format!("bytes={from}-{}", from + 99)),
        )
        .await;
    assert_eq!(response.status(), 206);
    assert_eq!(response.body().as_ref(), &bytes_v1[from..from + 100]);
    assert_eq!(
        response.headers()["content-range"],
        format!("bytes {from}-{}/{}", from + 99, bytes_v1.len())
    );
    // The tail, as a resuming phone asks.
    let response = env
        .send(
            warp::test::request()
                .path(&format!("{base}/1.0.0"))
                .header("range", format!("bytes={}-", bytes_v1.len() - 3)),
        )
        .await;
    assert_eq!(response.status(), 206);
    assert_eq!(response.body().as_ref(), &bytes_v1[bytes_v1.len() - 3..]);
    // Past the end: 416.
    let response = env
        .send(
            warp::test::request()
                .path(&format!("{base}/1.0.0"))
                .header("range", format!("bytes={}-", bytes_v1.len())),
        )
        .await;
    assert_eq!(response.status(), 416);
    // Conditional: 304 with the CID as ETag.
    let response = env
        .send(
            warp::test::request()
                .path(&format!("{base}/1.0.0"))
                .header("if-none-match", format!("\"{cid1}\"")),
        )
        .await;
    assert_eq!(response.status(), 304);
    assert!(response.body().is_empty());

    // Yank 1.1.0: the default falls back to 1.0.0; 1.1.0 by name still
    // downloads, flagged.
    env.publish(&yank(&k, "1.1.0").package("com.example.dl").seq(3).sign())
        .await;
    let fallback = env.get(&base).await;
    assert_eq!(fallback.status(), 200);
    assert_eq!(fallback.body().as_ref(), bytes_v1.as_slice());
    let named = env.get(&format!("{base}/1.1.0")).await;
    assert_eq!(named.headers()["x-ipsr-yanked"], "true");
    assert_eq!(named.body().as_ref(), bytes_v2.as_slice());
    // Unknown release: 404; the same bytes by CID under /ipfs.
    assert_eq!(env.get(&format!("{base}/3.0.0")).await.status(), 404);
    let by_cid = env.get(&format!("/ipfs/{cid1}")).await;
    assert_eq!(by_cid.status(), 200);
    assert_eq!(by_cid.body().as_ref(), bytes_v1.as_slice());
    assert!(
        by_cid.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
}
both!(downloads_both, downloads);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_not_in_the_swarm_fails_fast() {
    let mut config = GatewayConfig::default();
    config.first_byte_timeout = std::time::Duration::from_millis(500);
    let env = Env::new(Backend::Embedded, "fails_fast", config).await;
    // A release whose content nobody holds.
    let k = key(7);
    let record = app(&k, "com.example.gone", "1.0.0", "Gone")
        .cid(cid(77))
        .size(10)
        .seq(1)
        .sign();
    env.publish(&record).await;
    let started = std::time::Instant::now();
    let (status, body) = env
        .json(&format!(
            "/api/v1/download/{}/com.example.gone",
            k.author_id()
        ))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (504, Some("content_unavailable"))
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_cors_health_metrics_openapi() {
    let mut config = GatewayConfig::default();
    config.rate_limit_per_sec = 1;
    config.rate_limit_burst = 3;
    let env = Env::new(Backend::Embedded, "limits", config).await;
    let (status, health) = env.json("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let _ = env.get("/api/v1/packages").await;
    let _ = env.get("/api/v1/packages").await;
    let (status, body) = env.json("/api/v1/packages").await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")));
    let same = env.get("/healthz").await;
    assert_eq!(same.status(), 429, "every route counts for the address");
    // Another client is not held back.
    let routes = ipsr_gateway::routes(env.gateway.clone()).map(warp::Reply::into_response);
    let response = warp::test::request()
        .path("/healthz")
        .remote_addr(SocketAddr::from(([127, 0, 0, 2], 40000)))
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 200);

    let env = Env::new(Backend::Embedded, "cors", GatewayConfig::default()).await;
    let preflight = env
        .send(
            warp::test::request()
                .method("OPTIONS")
                .path("/api/v1/packages")
                .header("origin", "https://store.example")
                .header("access-control-request-method", "GET"),
        )
        .await;
    assert_eq!(preflight.status(), 200);
    assert!(
        preflight
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let simple = env
        .send(
            warp::test::request()
                .path("/api/v1/packages")
                .header("origin", "https://store.example"),
        )
        .await;
    assert!(simple.headers().contains_key("access-control-allow-origin"));

    let metrics = env.get("/metrics").await;
    let text = std::str::from_utf8(metrics.body()).unwrap();
    assert!(text.contains("ipsr_gateway_requests_total"), "{text}");
    assert!(
        text.contains("ipsr_store_records"),
        "the node's metrics too"
    );
    assert_eq!(text.matches("# EOF").count(), 1);

    let (status, openapi) = env.json("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_a_503_not_a_500() {
    let mut server = RedisServer::start(free_port());
    let (dir, node) = common::node().await;
    let test = TestIndex::new(&server.url(), "redis_down");
    let env = Env::over(dir, node, Arc::new(test.index.clone()));
    let k = key(8);
    let (status, _) = env
        .json(&format!("/api/v1/package/{}/com.example.x", k.author_id()))
        .await;
    assert_eq!(status, 404);
    server.stop();
    let (status, body) = env
        .json(&format!("/api/v1/package/{}/com.example.x", k.author_id()))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("index_unavailable"))
    );
    let (status, _) = env.json("/healthz").await;
    assert_eq!(status, 503);
}

/// A gateway on a Redis Cluster of 3 masters with a replica each, one
/// master killed: reads of a package in its slots answer 503
/// `index_unavailable` (never 500) while no node serves the slot, then 200
/// by themselves once its replica took over; a package on another master
/// reads 200 throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_reads_are_503_only_until_a_replica_takes_over() {
    let mut cluster = RedisCluster::start(ClusterOptions {
        masters: 3,
        replicas_per_master: 1,
        ..ClusterOptions::default()
    });
    let (dir, node) = common::node().await;
    let test = TestIndex::new(&cluster.url(), "failover_reads");
    let running = Running::start(&node, test.index.clone());
    let k = key(9);
    let author = k.author_id().to_string();
    let pkg_key = |name: &str| format!("{}pkg:{{{author}/{name}}}", test.index.prefix());
    // Two packages: one whose keys the killed master holds, one elsewhere.
    let victim_name = "com.example.failover0";
    let victim = cluster.master_of_key(&pkg_key(victim_name));
    let other_name = (1..100)
        .map(|i| format!("com.example.failover{i}"))
        .find(|n| cluster.master_of_key(&pkg_key(n)) != victim)
        .unwrap();
    for name in [victim_name, other_name.as_str()] {
        node.publish(app(&k, name, "1.0.0", "Failover").sign())
            .await
            .unwrap();
    }
    running.caught_up(&node).await;
    let env = Env::over(dir, node, Arc::new(test.index.clone()));
    let victim_path = format!("/api/v1/package/{author}/{victim_name}");
    let other_path = format!("/api/v1/package/{author}/{other_name}");
    assert_eq!(env.json(&victim_path).await.0, 200);
    assert_eq!(env.json(&other_path).await.0, 200);

    cluster.kill(victim);
    let killed = std::time::Instant::now();
    let mut unavailable = 0;
    loop {
        assert!(
            killed.elapsed() < std::time::Duration::from_secs(60),
            "reads did not recover within 60 s"
        );
        let (status, body) = env.json(&victim_path).await;
        match status {
            200 if unavailable > 0 => break,
            200 => {}
            503 => {
                assert_eq!(body["code"], "index_unavailable");
                unavailable += 1;
            }
            other => panic!("{victim_path}: {other} {body}"),
        }
        let (status, body) = env.json(&other_path).await;
        assert_eq!(status, 200, "{other_path}: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    eprintln!(
        "failover: {unavailable} reads answered 503; 200 again {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    assert!(cluster.wait_until_healthy(std::time::Duration::from_secs(30)));
    assert!(!cluster.masters().contains(&victim));
    assert_eq!(env.json("/healthz").await.0, 200);
}

/// Every path and method of the OpenAPI document is a route of the gateway
/// (none answers "no such route" or 405), and the document lists exactly
/// the API's routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_matches_the_routes() {
    let mut config = GatewayConfig::default();
    config.ipfs_timeout = std::time::Duration::from_millis(300);
    let env = Env::new(Backend::Embedded, "openapi", config).await;
    let doc: Value = serde_json::from_str(ipsr_gateway::OPENAPI).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "/api/v1/author/{author}",
            "/api/v1/download/{author}/{package}",
            "/api/v1/download/{author}/{package}/{version}",
            "/api/v1/openapi.json",
            "/api/v1/package/{author}/{package}",
            "/api/v1/package/{author}/{package}/{version}",
            "/api/v1/packages",
            "/api/v1/publish",
            "/healthz",
            "/ipfs/{cid}",
            "/metrics",
        ]
    );
    let author = key(1).author_id().to_string();
    for (path, item) in paths {
        let concrete = path
            .replace("{author}", &author)
            .replace("{package}", "com.example.none")
            .replace("{version}", "1.0.0")
            .replace("{cid}", &cid(1).to_string());
        for method in item.as_object().unwrap().keys() {
            let response = env
                .send(
                    warp::test::request()
                        .method(&method.to_uppercase())
                        .path(&concrete)
                        .header("content-type", "application/octet-stream")
                        .body(if method == "post" {
                            b"x".to_vec()
                        } else {
                            Vec::new()
                        }),
                )
                .await;
            let body = String::from_utf8_lossy(response.body());
            assert!(
                response.status() != 405 && !body.contains("no such route"),
                "{method} {concrete}: {} {body}",
                response.status()
            );
        }
    }
}

/// With every request slot taken (here by a download waiting for content
/// nobody has), the next request is answered `503 busy` at once; `/healthz`
/// has slots of its own and is answered all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_when_every_slot_is_taken() {
    let mut config = GatewayConfig::default();
    config.max_concurrent = 1;
    config.first_byte_timeout = std::time::Duration::from_secs(3);
    let env = Env::new(Backend::Embedded, "busy", config).await;
    let slow = env.slow_download(key(10), None).await;
    let started = std::time::Instant::now();
    let (status, body) = env.json("/api/v1/packages").await;
    assert_eq!((status, body["code"].as_str()), (503, Some("busy")));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "at once"
    );
    let (status, _) = env.json("/healthz").await;
    assert_eq!(status, 200, "/healthz has slots of its own");
    assert_eq!(
        slow.await.unwrap().status(),
        504,
        "the slow one fails fast too"
    );
    let (status, _) = env.json("/api/v1/packages").await;
    assert_eq!(status, 200, "the slot is free again");
}

/// With its share of the slots taken, a client address is answered `429
/// client_busy` at once; another address is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_busy_when_its_share_is_taken() {
    let mut config = GatewayConfig::default();
    config.max_per_client = 1;
    config.first_byte_timeout = std::time::Duration::from_secs(3);
    let env = Env::new(Backend::Embedded, "client-busy", config).await;
    let slow = env
        .slow_download(key(11), Some(SocketAddr::from(([127, 0, 0, 1], 40001))))
        .await;
    let response = env.get("/api/v1/packages").await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["code"], "client_busy");
    let other = warp::test::request()
        .path("/api/v1/packages")
        .remote_addr(SocketAddr::from(([127, 0, 0, 2], 40000)));
    let routes = ipsr_gateway::routes(env.gateway.clone()).map(warp::Reply::into_response);
    assert_eq!(other.reply(&routes).await.status(), 200);
    assert_eq!(slow.await.unwrap().status(), 504);
}

impl Env {
    /// A download of a release whose content nobody has, from `from`, in
    /// a task of its own: it holds a request slot until the first-byte
    /// timeout. Returns once it runs.
    async fn slow_download(
        &self,
        k: AuthorKey,
        from: Option<SocketAddr>,
    ) -> tokio::task::JoinHandle<Response<Bytes>> {
        let record = app(&k, "com.example.slow", "1.0.0", "Slow")
            .cid(cid(99))
            .size(10)
            .seq(1)
            .sign();
        self.publish(&record).await;
        let routes = ipsr_gateway::routes(self.gateway.clone()).map(warp::Reply::into_response);
        let mut request = warp::test::request().path(&format!(
            "/api/v1/download/{}/com.example.slow",
            k.author_id()
        ));
        if let Some(from) = from {
            request = request.remote_addr(from);
        }
        let slow = tokio::spawn(async move { request.reply(&routes).await });
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        slow
    }
}

/// A gateway config with an F-Droid repository (a new key, its state in
/// `dir`) at a public URL.
fn with_fdroid(dir: &std::path::Path) -> GatewayConfig {
    let mut config = GatewayConfig::default();
    config.public_url = Some("https://apps.example.org".into());
    config.fdroid = Some(ipsr_gateway::FdroidConfig {
        key: Arc::new(ipsr_gateway::RepoKey::generate().unwrap()),
        state_dir: dir.to_owned(),
        name: "Test".into(),
        description: "A test repository".into(),
    });
    config
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// The F-Droid repository lists what is in force and hashed, by one author
/// per name; its index files answer 304 to their `ETag`; a yank drops a
/// version and moves the timestamp on; APKs are served at their paths.
async fn fdroid_repository(backend: Backend) {
    let state = tempfile::tempdir().unwrap();
    let env = Env::new(backend, "fdroid", with_fdroid(state.path())).await;
    let (a, b) = (key(21), key(22));
    let bytes1 = pattern(21, 300_000);
    let bytes2 = pattern(22, 2_000);
    let (cid1, size1) = env.content(&bytes1).await;
    let (cid2, size2) = env.content(&bytes2).await;
    let rel = |k, package, version, code, cid, size, sha| {
        app(k, package, version, "Fd")
            .code(code)
            .seq(code)
            .cid(cid)
            .size(size)
            .sha256(sha)
            .metadata(|m| {
                m.signing_cert_sha256 = Some([5; 32]);
                m.min_sdk = 24;
                m.permissions = vec!["android.permission.INTERNET".into()];
            })
    };
    env.publish(
        &rel(
            &a,
            "com.example.fd",
            "1.0.0",
            1,
            cid1,
            size1,
            sha256(&bytes1),
        )
        .sign(),
    )
    .await;
    env.publish(
        &rel(
            &a,
            "com.example.fd",
            "1.1.0",
            2,
            cid2,
            size2,
            sha256(&bytes2),
        )
        .metadata(|m| {
            m.icon = Some(cid2);
            m.screenshots = vec![cid1];
        })
        .sign(),
    )
    .await;
    // Not Android; and a name two authors publish.
    env.publish(
        &rel(
            &a,
            "com.example.fd",
            "1.2.0",
            3,
            cid2,
            size2,
            sha256(&bytes2),
        )
        .platform(Platform::ios())
        .sign(),
    )
    .await;
    for k in [&a, &b] {
        env.publish(
            &rel(
                k,
                "com.example.both",
                "1.0.0",
                1,
                cid2,
                size2,
                sha256(&bytes2),
            )
            .sign(),
        )
        .await;
    }

    let (status, v2) = env.json("/fdroid/repo/index-v2.json").await;
    assert_eq!(status, 200);
    let names: Vec<&String> = v2["packages"].as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        ["com.example.fd"],
        "iOS and a contested name left out"
    );
    let versions = v2["packages"]["com.example.fd"]["versions"]
        .as_object()
        .unwrap();
    let mut codes: Vec<i64> = versions
        .values()
        .map(|v| v["manifest"]["versionCode"].as_i64().unwrap())
        .collect();
    codes.sort_unstable();
    assert_eq!(codes, [1, 2]);
    let v1 = &versions[&hex::encode(sha256(&bytes1))];
    assert_eq!(v1["file"]["name"], "/com.example.fd_1.apk");
    assert_eq!(v1["file"]["size"], size1);
    assert_eq!(
        v1["manifest"]["signer"]["sha256"][0],
        hex::encode([5u8; 32])
    );
    assert_eq!(
        v2["repo"]["address"],
        "https://apps.example.org/fdroid/repo"
    );
    let t1 = v2["repo"]["timestamp"].as_u64().unwrap();

    // entry.json names index-v2.json by its SHA-256; both answer 304.
    let index = env.get("/fdroid/repo/index-v2.json").await;
    let (_, entry) = env.json("/fdroid/repo/entry.json").await;
    assert_eq!(entry["timestamp"], t1);
    assert_eq!(entry["index"]["sha256"], hex::encode(sha256(index.body())));
    for file in ["entry.jar", "index-v2.json", "index-v1.jar"] {
        let path = format!("/fdroid/repo/{file}");
        let first = env.get(&path).await;
        assert_eq!(first.status(), 200, "{file}");
        let tag = first.headers()["etag"].to_str().unwrap().to_owned();
        let again = env
            .send(
                warp::test::request()
                    .path(&path)
                    .header("if-none-match", &tag),
            )
            .await;
        assert_eq!(again.status(), 304, "{file}");
        assert!(again.body().is_empty());
    }
    // A record that changes nothing listed: the index is built again, and
    // its files keep their bytes (the JARs are not signed anew).
    let jar_tag = env.get("/fdroid/repo/entry.jar").await.headers()["etag"].clone();
    let builds = fdroid_builds(&env).await;
    env.publish(
        &rel(
            &b,
            "com.example.ios",
            "1.0.0",
            1,
            cid2,
            size2,
            sha256(&bytes2),
        )
        .platform(Platform::ios())
        .sign(),
    )
    .await;
    wait_until("a new build", || async {
        env.get("/fdroid/repo/entry.jar").await;
        fdroid_builds(&env).await > builds
    })
    .await;
    assert_eq!(
        env.get("/fdroid/repo/entry.jar").await.headers()["etag"],
        jar_tag
    );

    // The APKs, by path; the latest by author and package.
    let apk = env.get("/fdroid/repo/com.example.fd_1.apk").await;
    assert_eq!(apk.status(), 200);
    assert_eq!(apk.body().as_ref(), bytes1.as_slice());
    assert_eq!(
        apk.headers()["content-type"],
        "application/vnd.android.package-archive"
    );
    let latest = env
        .get(&format!("/latest/{}/com.example.fd.apk", a.author_id()))
        .await;
    assert_eq!(latest.status(), 200);
    assert_eq!(latest.body().as_ref(), bytes2.as_slice());
    assert_eq!(
        env.get("/fdroid/repo/com.example.both_1.apk")
            .await
            .status(),
        404
    );
    assert_eq!(env.get("/fdroid/repo/icons/icon.png").await.status(), 200);
    // The newest version's icon and screenshots, at the paths the index names.
    let meta = &v2["packages"]["com.example.fd"]["metadata"];
    let icon = meta["icon"]["en-US"]["name"].as_str().unwrap();
    assert_eq!(icon, "/com.example.fd/en-US/icon.png");
    let shot = meta["screenshots"]["phone"]["en-US"][0]["name"]
        .as_str()
        .unwrap();
    for (path, bytes) in [(icon, &bytes2), (shot, &bytes1)] {
        let got = env.get(&format!("/fdroid/repo{path}")).await;
        assert_eq!(got.status(), 200, "{path}");
        assert_eq!(got.body().as_ref(), bytes.as_slice(), "{path}");
    }

    // A yank drops the version; the timestamp grows.
    env.publish(&yank(&a, "1.1.0").package("com.example.fd").seq(10).sign())
        .await;
    wait_until("the yank in the index", || async {
        let (_, v2) = env.json("/fdroid/repo/index-v2.json").await;
        v2["packages"]["com.example.fd"]["versions"]
            .as_object()
            .is_some_and(|v| v.len() == 1)
    })
    .await;
    let (_, v2) = env.json("/fdroid/repo/index-v2.json").await;
    let versions = v2["packages"]["com.example.fd"]["versions"]
        .as_object()
        .unwrap();
    assert_eq!(versions.len(), 1);
    assert!(v2["repo"]["timestamp"].as_u64().unwrap() > t1);
    assert_eq!(
        env.get("/fdroid/repo/com.example.fd_2.apk").await.status(),
        404
    );
}

both!(fdroid_repository_both, fdroid_repository);

/// A record whose stated SHA-256 is not its file's: the APK's answer is
/// cut short of its `Content-Length` (the last bytes withheld), so no
/// client takes it for whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apk_whose_record_lies_about_its_sha256_is_cut_short() {
    let state = tempfile::tempdir().unwrap();
    let env = Env::new(Backend::Embedded, "fdroid-liar", with_fdroid(state.path())).await;
    let k = key(23);
    let bytes = pattern(23, 1_500_000);
    let (cid, size) = env.content(&bytes).await;
    let mut lie = sha256(&bytes);
    lie[0] ^= 1;
    let record = app(&k, "com.example.liar", "1.0.0", "Liar")
        .cid(cid)
        .size(size)
        .sha256(lie)
        .sign();
    env.publish(&record).await;
    let (addr, server) = ipsr_gateway::serve(env.gateway.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let serving = tokio::spawn(server);
    let read = tokio::task::spawn_blocking(move || {
        let agent = ipsr_testkit::agent_with_timeout(std::time::Duration::from_secs(30));
        let mut response = agent
            .get(format!("http://{addr}/fdroid/repo/com.example.liar_1.apk"))
            .call()
            .unwrap();
        let length: usize = response.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let mut body = Vec::new();
        let result = std::io::Read::read_to_end(&mut response.body_mut().as_reader(), &mut body);
        (length, body.len(), result.is_err())
    })
    .await
    .unwrap();
    serving.abort();
    let (length, got, failed) = read;
    assert_eq!(length, bytes.len());
    assert!(
        failed && got < length,
        "read {got} of {length} bytes without an error"
    );
}

/// `ipfsCIDv1` of a file imported as kubo's legacy `ipfs add` does
/// (`unixfs-v0-2015`) is what fdroidserver computes for it with the
/// `ipfs_cid` tool (Debian's `ipfs-cid`); a record without `sha256` is
/// listed once the gateway has hashed its file, with the file's SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fdroid_ipfs_cid_and_computed_sha256() {
    let state = tempfile::tempdir().unwrap();
    let env = Env::new(Backend::Embedded, "fdroid-cid", with_fdroid(state.path())).await;
    let k = key(24);
    let bytes = pattern(24, 700_000);
    let imported = env
        .node
        .content()
        .add_bytes(Bytes::copy_from_slice(&bytes), Profile::V0_2015, None)
        .await
        .unwrap();
    let cid = ContentId::try_from(imported.root).unwrap();
    let record = app(&k, "com.example.cid", "1.0.0", "Cid")
        .cid(cid)
        .size(imported.size)
        .sign();
    env.publish(&record).await;
    let (_, first) = env.json("/fdroid/repo/index-v2.json").await;
    assert!(
        first["packages"].get("com.example.cid").is_none(),
        "not listed before its SHA-256 is known"
    );
    wait_until("the computed SHA-256 in the index", || async {
        let (_, v2) = env.json("/fdroid/repo/index-v2.json").await;
        v2["packages"].get("com.example.cid").is_some()
    })
    .await;
    let (_, v2) = env.json("/fdroid/repo/index-v2.json").await;
    let versions = v2["packages"]["com.example.cid"]["versions"]
        .as_object()
        .unwrap();
    let listed = versions.iter().next().unwrap();
    assert_eq!(
        listed.0,
        &hex::encode(sha256(&bytes)),
        "keyed by the file's SHA-256"
    );
    assert_eq!(listed.1["file"]["sha256"], hex::encode(sha256(&bytes)));
    let kept = std::fs::read_to_string(state.path().join("sha256.txt")).unwrap();
    assert!(kept.contains(&cid.to_string()), "{kept}");

    let ours = listed.1["file"]["ipfsCIDv1"].as_str().unwrap().to_owned();
    let file = state.path().join("app.apk");
    std::fs::write(&file, &bytes).unwrap();
    match std::process::Command::new("ipfs_cid").arg(&file).output() {
        Ok(out) => {
            let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(ours, theirs["CIDv1"], "what fdroidserver computes");
        }
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("ipfs_cid is needed (apt-get install ipfs-cid)")
        }
        Err(_) => {
            eprintln!("skipped the ipfs_cid comparison: no ipfs_cid (apt-get install ipfs-cid)")
        }
    }
}

/// How many times the gateway built its F-Droid index, from `/metrics`.
async fn fdroid_builds(env: &Env) -> u64 {
    let metrics = String::from_utf8(env.get("/metrics").await.body().to_vec()).unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("ipsr_gateway_fdroid_builds_total "))
        .unwrap()
        .parse()
        .unwrap()
}

/// An author re-signing a release in a loop while polling the index cannot
/// make the gateway build without pause: builds are spaced by five times
/// their duration (far fewer builds than polls), the index never answers
/// an error meanwhile, and the last record shows once the spacing passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fdroid_builds_are_spaced_under_churn() {
    let state = tempfile::tempdir().unwrap();
    let env = Env::new(Backend::Embedded, "fdroid-churn", with_fdroid(state.path())).await;
    let k = key(25);
    let pkg = |i: u32| format!("com.example.churn{i}");
    for i in 0..300u32 {
        env.publish(
            &app(&k, &pkg(i), "1.0.0", "Churn")
                .cid(cid(i))
                .size(1000)
                .sha256([1; 32])
                .seq(1)
                .sign(),
        )
        .await;
    }
    assert_eq!(env.get("/fdroid/repo/entry.jar").await.status(), 200);
    let polls = 60u64;
    for n in 0..polls {
        let record = app(&k, &pkg(0), "1.0.0", &format!("Churn {n}"))
            .cid(cid(0))
            .size(1000)
            .sha256([1; 32])
            .seq(2 + n)
            .sign();
        env.publish(&record).await;
        assert_eq!(env.get("/fdroid/repo/entry.jar").await.status(), 200);
    }
    let builds = fdroid_builds(&env).await;
    assert!(builds < polls / 2, "{builds} builds for {polls} polls");
    let last = format!("Churn {}", polls - 1);
    wait_until("the last record in the index", || async {
        let (_, v2) = env.json("/fdroid/repo/index-v2.json").await;
        v2["packages"][pkg(0)]["metadata"]["name"]["en-US"] == last.as_str()
    })
    .await;
}

/// `/favicon.ico` is the gateway's icon, not a JSON 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_favicon_is_an_image() {
    let env = Env::new(Backend::Embedded, "favicon", GatewayConfig::default()).await;
    let icon = env.get("/favicon.ico").await;
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/png");
    assert!(icon.body().starts_with(b"\x89PNG\r\n\x1a\n"));
}

/// The future each request runs in is moved several times on its way (into
/// the service adapter's state, into hyper's dispatcher, between warp's
/// combinators), so its size is paid per request: the rarely taken routes
/// are boxed and tried after the package views. It measured 9,248 bytes
/// before (in a release build; the profile of cached views spent 7 % of
/// the gateway's time in `memmove`), 848 after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_future_stays_small() {
    use hyper::service::Service as _;
    /// Room for a few more small unboxed routes, not for a large one.
    const MAX_FUTURE_BYTES: usize = 2048;
    let env = Env::new(Backend::Embedded, "future-size", GatewayConfig::default()).await;
    let service = hyper_util::service::TowerToHyperService::new(warp::service(
        ipsr_gateway::routes(env.gateway.clone()),
    ));
    let request = warp::http::Request::get("/api/v1/package/x/y")
        .body(String::new())
        .unwrap();
    let answer = service.call(request);
    let size = std::mem::size_of_val(&answer);
    eprintln!("a request's future: {size} bytes");
    assert!(
        size <= MAX_FUTURE_BYTES,
        "a request's future is {size} bytes (at most {MAX_FUTURE_BYTES})"
    );
    // And it still answers, from the routes it was measured on.
    let response = answer.await.unwrap();
    assert_eq!(response.status(), 400);
}

/// With the view cache off, a package view is as fresh as the index on
/// every request, though its rendered bytes are kept (under the index's
/// token of what they show): a new release, a fork of the author's
/// identity (which leaves the package's own state as it was) and a yank
/// each show on the very next request.
async fn fresh_views_without_the_cache(backend: Backend) {
    use ipsr_proto::{Identity, Signed};

    let mut config = GatewayConfig::default();
    config.view_ttl = std::time::Duration::ZERO;
    let env = Env::new(backend, "fresh_views", config).await;
    let k = key(12);
    let document = |seq: u64, signers: &[&AuthorKey]| {
        let mut signers: Vec<_> = signers.iter().map(|s| s.author_id()).collect();
        signers.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Identity {
            signers,
            threshold: 1,
            created_at: ipsr_testkit::T0 + seq,
            seq: ipsr_testkit::T0 + seq,
            ..Identity::implicit(k.author_id())
        }
        .sign(&[&k])
        .unwrap()
    };
    let publish = async |item: Signed| {
        env.node.publish_signed(item).await.unwrap();
        env.settle().await;
    };
    let v1 = app(&k, "com.example.fresh", "1.0.0", "Fresh")
        .seq(20)
        .sign();
    let path = format!("/api/v1/package/{}", path_of(&v1));
    publish(Signed::Identity(document(10, &[&k]))).await;
    publish(Signed::Record(v1)).await;
    let shown = async || {
        let (status, view) = env.json(&path).await;
        assert_eq!(status, 200, "{view}");
        (
            view["newest"].as_str().unwrap().to_owned(),
            view["versions"].as_array().unwrap().len(),
            view["author_identity"]["disputed"].as_bool().unwrap(),
        )
    };
    assert_eq!(shown().await, ("1.0.0".into(), 1, false));
    let first = env.get(&path).await;
    assert_eq!(env.get(&path).await.body(), first.body(), "nothing changed");
    // The view is kept (with the micro-cache off), and shown in the metrics.
    let metrics = env.get("/metrics").await;
    let text = String::from_utf8_lossy(metrics.body());
    let gauge = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert_eq!(gauge("ipsr_gateway_rendered_views"), 1);
    let bytes = gauge("ipsr_gateway_rendered_views_bytes");
    assert!(bytes >= first.body().len() as u64, "{bytes} bytes kept");
    assert_eq!(
        gauge("ipsr_gateway_view_cache_views"),
        0,
        "the cache is off"
    );

    let v2 = app(&k, "com.example.fresh", "1.1.0", "Fresh")
        .code(2)
        .seq(30)
        .sign();
    publish(Signed::Record(v2)).await;
    assert_eq!(shown().await, ("1.1.0".into(), 2, false));
    // A second first document, with a lower seq: the one in force stays.
    publish(Signed::Identity(document(5, &[&k, &key(13)]))).await;
    assert_eq!(shown().await, ("1.1.0".into(), 2, true));
    publish(Signed::Record(
        yank(&k, "1.1.0")
            .package("com.example.fresh")
            .seq(40)
            .sign(),
    ))
    .await;
    assert_eq!(shown().await, ("1.0.0".into(), 2, true));
}
both!(
    fresh_views_without_the_cache_both,
    fresh_views_without_the_cache
);
