//! Tests of the local control API (`docs/node-api.md`) against an
//! in-process node: the API is served on 127.0.0.1:0 and called over real
//! HTTP. Every wait is bounded.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipsr_node::{ApiError, ApiToken, Client, Config};
use ipsr_proto::{AuthorKey, Record, SignedRecord};
use ipsr_testkit::{ReleaseBuilder, TIMEOUT, agent_with_timeout, cid, pattern, release, yank};
use serde_json::Value;

/// A running node with its API.
struct Api {
    _dir: tempfile::TempDir,
    node: Client,
    base: String,
    agent: ureq::Agent,
}

/// An answer: status and JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    json: Value,
    /// The `WWW-Authenticate` header, if any.
    challenge: Option<String>,
}

impl Answer {
    fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or_default()
    }
}

impl Api {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// With `Config::local` changed by `tweak`.
    async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::serve(tweak, None).await
    }

    /// Served with `serve_api_with_token`: every request must carry `token`.
    async fn start_with_token(token: ApiToken) -> Self {
        Self::serve(|_| {}, Some(token)).await
    }

    async fn serve(tweak: impl FnOnce(&mut Config), token: Option<ApiToken>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::local(dir.path().to_owned());
        tweak(&mut config);
        let node = ipsr_node::spawn(config).await.unwrap();
        let loopback = "127.0.0.1:0".parse().unwrap();
        let addr = match token {
            None => {
                let (addr, server) = ipsr_node::serve_api(node.clone(), loopback).await.unwrap();
                tokio::spawn(server);
                addr
            }
            Some(token) => {
                let (addr, server) = ipsr_node::serve_api_with_token(node.clone(), loopback, token)
                    .await
                    .unwrap();
                tokio::spawn(server);
                addr
            }
        };
        assert_ne!(addr.port(), 0, "the bound port is reported");
        let agent = agent_with_timeout(Duration::from_secs(60));
        Self {
            _dir: dir,
            node,
            base: format!("http://{addr}"),
            agent,
        }
    }

    /// Runs a blocking HTTP call off the async threads.
    async fn call(
        &self,
        request: impl FnOnce(
            &ureq::Agent,
            &str,
        ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>
        + Send
        + 'static,
    ) -> Answer {
        let agent = self.agent.clone();
        let base = self.base.clone();
        tokio::task::spawn_blocking(move || {
            let mut response = request(&agent, &base).unwrap();
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            let (content_type, challenge) = (header("content-type"), header("www-authenticate"));
            let text = response.body_mut().read_to_string().unwrap();
            assert_eq!(
                content_type.as_deref(),
                Some("application/json"),
                "every answer is JSON: {status} {text}"
            );
            let json = serde_json::from_str(&text).unwrap();
            Answer {
                status,
                json,
                challenge,
            }
        })
        .await
        .unwrap()
    }

    async fn get(&self, path: &str) -> Answer {
        let path = path.to_owned();
        self.call(move |agent, base| agent.get(format!("{base}{path}")).call())
            .await
    }

    async fn post(&self, bytes: Vec<u8>) -> Answer {
        self.call(move |agent, base| {
            agent
                .post(format!("{base}/v1/records"))
                .header("content-type", "application/octet-stream")
                .send(bytes)
        })
        .await
    }

    /// A request with any method, path and body (`None`: no body).
    async fn send(&self, method: &'static str, path: &str, body: Option<Vec<u8>>) -> Answer {
        let path = path.to_owned();
        self.call(move |agent, base| {
            let url = format!("{base}{path}");
            let request = ureq::http::Request::builder()
                .method(method)
                .uri(url)
                .header("content-type", "application/octet-stream")
                .body(body.unwrap_or_default())
                .unwrap();
            agent.run(request)
        })
        .await
    }

    /// `GET` of raw bytes: status, headers of interest and body.
    async fn bytes(&self, path: &str) -> (u16, Option<String>, Option<String>, Vec<u8>) {
        let (agent, url) = (self.agent.clone(), format!("{}{path}", self.base));
        tokio::task::spawn_blocking(move || {
            let mut response = agent.get(url).call().unwrap();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            let (etag, length) = (header("etag"), header("content-length"));
            let status = response.status().as_u16();
            let body = response
                .body_mut()
                .with_config()
                .limit(u64::MAX)
                .read_to_vec()
                .unwrap();
            (status, etag, length, body)
        })
        .await
        .unwrap()
    }

    async fn publish(&self, record: &SignedRecord) -> Answer {
        self.post(record.to_bytes()).await
    }

    async fn records_held(&self) -> u64 {
        let status = self.get("/v1/status").await;
        assert_eq!(status.status, 200);
        status.json["records"].as_u64().unwrap()
    }
}

/// A release of `com.example.app` with HTML in its title; given a `seq`,
/// its bytes are the same on every run.
fn app<'k>(key: &'k AuthorKey, version: &str) -> ReleaseBuilder<'k> {
    release(key, version)
        .title("<script>alert('x')</script> & \"Friends\"")
        .summary("An app")
}

/// Decodes a base64 record from an answer and verifies it.
fn verified(value: &Value) -> SignedRecord {
    let bytes = STANDARD.decode(value.as_str().unwrap()).unwrap();
    SignedRecord::from_bytes(&bytes).unwrap().verify().unwrap()
}

fn package_path(key: &AuthorKey) -> String {
    format!("/v1/packages/{}/com.example.app", key.author_id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_read_packages_releases_authors_and_status() {
    let api = Api::start().await;
    let key = AuthorKey::from_seed(&[1; 32]);
    let v1 = app(&key, "1.0.0").seq(10).cid(cid(1)).sign();

    // Publish: new, at log position 1; again: a duplicate, not logged.
    let first = api.publish(&v1).await;
    assert_eq!(first.status, 200, "{:?}", first.json);
    assert_eq!(first.json["change"], "new");
    assert_eq!(first.json["position"], 1);
    assert_eq!(first.json["id"], v1.id().to_string());
    assert_eq!(first.json["author"], key.author_id().to_string());
    assert_eq!(first.json["package"], "com.example.app");
    assert_eq!(first.json["version"], "1.0.0");
    let again = api.publish(&v1).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json["change"], "duplicate");
    assert_eq!(again.json["position"], Value::Null);
    assert!(api.node.store().record(&v1.id()).unwrap().is_some());

    // The package: 1.0.0 is the newest, with its CID; HTML in metadata is
    // returned verbatim, as a JSON string.
    let package = api.get(&package_path(&key)).await;
    assert_eq!(package.status, 200, "{:?}", package.json);
    let p = &package.json;
    assert_eq!(p["author"], key.author_id().to_string());
    assert_eq!(p["package"], "com.example.app");
    assert_eq!(p["newest"], "1.0.0");
    assert_eq!(
        p["metadata"]["title"],
        "<script>alert('x')</script> & \"Friends\""
    );
    let versions = p["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    let entry = &versions[0];
    assert_eq!(entry["version"], "1.0.0");
    assert_eq!(entry["version_code"], 1);
    assert_eq!(entry["cid"], cid(1).to_string());
    assert_eq!(entry["file_name"], "com.example.app-1.0.0");
    assert_eq!(entry["platform"], "any");
    assert_eq!(entry["seq"], 10);
    assert_eq!(entry["created_at"], 1_700_000_000_010u64);
    assert_eq!(entry["yanked"], false);
    assert_eq!(entry["yank_reason"], Value::Null);
    assert_eq!(entry["conflicting_cids"], serde_json::json!([]));
    assert_eq!(entry["equivocated"], false);
    assert_eq!(entry["record_id"], v1.id().to_string());

    // A second version with a higher version code becomes the newest.
    let v2 = app(&key, "1.1.0").code(2).seq(20).cid(cid(2)).sign();
    assert_eq!(api.publish(&v2).await.json["position"], 2);
    let package = api.get(&package_path(&key)).await;
    assert_eq!(package.json["newest"], "1.1.0");
    let order: Vec<&str> = package.json["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["1.1.0", "1.0.0"], "by version code, highest first");

    // One release: its signed record verifies without trusting the node.
    let one = api.get(&format!("{}/1.1.0", package_path(&key))).await;
    assert_eq!(one.status, 200, "{:?}", one.json);
    assert_eq!(one.json["cid"], cid(2).to_string());
    assert_eq!(one.json["metadata"]["summary"], "An app");
    assert_eq!(one.json["yank_record"], Value::Null);
    let record = verified(&one.json["record"]);
    assert_eq!(record, v2);
    assert_eq!(record.id().to_string(), one.json["record_id"]);

    // Yank 1.1.0 with a higher seq: it shows as yanked and 1.0.0 is newest.
    let y = yank(&key, "1.1.0")
        .reason("crashes on start")
        .seq(30)
        .sign();
    let yanked = api.publish(&y).await;
    assert_eq!(yanked.json["change"], "new");
    assert_eq!(yanked.json["position"], 3);
    let package = api.get(&package_path(&key)).await;
    assert_eq!(package.json["newest"], "1.0.0");
    let v110 = &package.json["versions"][0];
    assert_eq!(v110["version"], "1.1.0");
    assert_eq!(v110["yanked"], true);
    assert_eq!(v110["yank_reason"], "crashes on start");
    let one = api.get(&format!("{}/1.1.0", package_path(&key))).await;
    assert_eq!(one.json["yanked"], true);
    let yank_record = verified(&one.json["yank_record"]);
    assert_eq!(yank_record, y);
    assert!(matches!(yank_record.record(), Record::Yank(_)));

    // Everything yanked: no newest, the metadata of the highest version.
    api.publish(
        &yank(&key, "1.0.0")
            .reason("crashes on start")
            .seq(40)
            .sign(),
    )
    .await;
    let package = api.get(&package_path(&key)).await;
    assert_eq!(package.json["newest"], Value::Null);
    assert_eq!(package.json["versions"].as_array().unwrap().len(), 2);
    assert_eq!(package.json["metadata"]["summary"], "An app");

    // The author's packages; an author with none has an empty list.
    let other = app(&key, "0.1.0")
        .package("org.example.other")
        .seq(50)
        .cid(cid(3))
        .sign();
    api.publish(&other).await;
    let author = api.get(&format!("/v1/authors/{}", key.author_id())).await;
    assert_eq!(author.status, 200);
    assert_eq!(author.json["author"], key.author_id().to_string());
    assert_eq!(
        author.json["packages"],
        serde_json::json!(["com.example.app", "org.example.other"])
    );
    let stranger = AuthorKey::from_seed(&[9; 32]).author_id();
    let none = api.get(&format!("/v1/authors/{stranger}")).await;
    assert_eq!(none.status, 200);
    assert_eq!(none.json["packages"], serde_json::json!([]));

    // Status and peers.
    let status = api.get("/v1/status").await;
    assert_eq!(status.status, 200);
    let s = &status.json;
    assert_eq!(s["peer_id"], api.node.peer_id().to_string());
    assert_eq!(s["records"], 5);
    assert_eq!(s["releases"], 3);
    assert_eq!(s["log_head"], 5);
    assert_eq!(s["conflicts"], 0);
    assert_eq!(s["peers"], 0);
    assert!(
        s["listen_addrs"][0]
            .as_str()
            .unwrap()
            .starts_with("/ip4/127.0.0.1/tcp/")
    );
    let peers = api.get("/v1/peers").await;
    assert_eq!(peers.status, 200);
    assert_eq!(peers.json, serde_json::json!({ "peers": [] }));
}

/// `app` 1.0.0 under another package name and title.
fn named(key: &AuthorKey, package: &str, title: &str, seq: u64) -> SignedRecord {
    app(key, "1.0.0")
        .package(package)
        .title(title)
        .seq(seq)
        .cid(cid(1))
        .sign()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_ranks_names_over_titles_and_checks_its_query() {
    let api = Api::start().await;
    let key = AuthorKey::from_seed(&[4; 32]);
    api.publish(&named(&key, "org.example.camera", "Camera", 1))
        .await;
    api.publish(&named(&key, "org.example.notes", "Notes with camera", 2))
        .await;
    api.publish(&named(&key, "org.example.maps", "Maps", 3))
        .await;
    let author = key.author_id().to_string();

    // The last name segment outranks a title word; prefixes match too.
    let found = api.get("/v1/search?q=camera").await;
    assert_eq!(found.status, 200, "{:?}", found.json);
    assert_eq!(
        found.json,
        serde_json::json!({ "packages": [
            { "author": author, "package": "org.example.camera", "newest": "1.0.0",
              "title": "Camera", "score": 10 },
            { "author": author, "package": "org.example.notes", "newest": "1.0.0",
              "title": "Notes with camera", "score": 6 },
        ]})
    );
    let prefix = api.get("/v1/search?q=Cam&limit=1").await;
    let names: Vec<&str> = prefix.json["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["package"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["org.example.camera"], "limit=1 keeps the best");
    let none = api.get("/v1/search?q=zebra").await;
    assert_eq!(none.json, serde_json::json!({ "packages": [] }));

    for bad in ["/v1/search", "/v1/search?q=%20", "/v1/search?q=a&limit=0"] {
        let answer = api.get(bad).await;
        assert_eq!((answer.status, answer.code()), (400, "bad_query"), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_pages_without_gaps_and_long_polls() {
    let api = Api::start().await;
    let key = AuthorKey::from_seed(&[2; 32]);
    let records: Vec<SignedRecord> = (0..5u8)
        .map(|i| {
            app(&key, &format!("1.{i}.0"))
                .code(u64::from(i))
                .seq(10 + u64::from(i))
                .cid(cid(i.into()))
                .sign()
        })
        .collect();
    for r in &records {
        assert_eq!(api.publish(r).await.json["change"], "new");
    }

    // Paging by position returns every entry once, in order.
    let mut after = 0;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let page = api.get(&format!("/v1/log?after={after}&limit=2")).await;
        assert_eq!(page.status, 200, "{:?}", page.json);
        assert_eq!(page.json["head"], 5);
        let entries = page.json["entries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        if entries.is_empty() {
            break;
        }
        for e in entries {
            let position = e["position"].as_u64().unwrap();
            assert_eq!(position, after + 1, "no gap, no repeat");
            after = position;
            let record = verified(&e["record"]);
            assert_eq!(record.id().to_string(), e["id"]);
            seen.push(record);
        }
    }
    assert_eq!(seen, records);
    let all = api.get("/v1/log").await;
    assert_eq!(all.json["entries"].as_array().unwrap().len(), 5);

    // Nothing new: a short wait ends empty, after about the wait.
    let started = Instant::now();
    let empty = api.get("/v1/log?after=5&wait=1").await;
    let waited = started.elapsed();
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json["head"], 5);
    assert_eq!(empty.json["entries"], serde_json::json!([]));
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    // A long-poll returns as soon as another task publishes a record.
    let poll = {
        let base = api.base.clone();
        let agent = api.agent.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut response = agent
                .get(format!("{base}/v1/log?after=5&wait=20"))
                .call()
                .unwrap();
            let text = response.body_mut().read_to_string().unwrap();
            (
                started.elapsed(),
                serde_json::from_str::<Value>(&text).unwrap(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = app(&key, "2.0.0").code(9).seq(99).cid(cid(9)).sign();
    let publisher = {
        let node = api.node.clone();
        let late = late.clone();
        tokio::spawn(async move { node.publish(late).await.unwrap() })
    };
    assert_eq!(publisher.await.unwrap().position, Some(6));
    let (waited, answer) = tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .unwrap()
        .unwrap();
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    assert_eq!(answer["head"], 6);
    assert_eq!(answer["entries"][0]["position"], 6);
    assert_eq!(verified(&answer["entries"][0]["record"]), late);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_records_leave_the_log_and_a_churning_author_gets_429() {
    let api = Api::start_with(|c| {
        c.max_records_per_author_per_sec = 1;
        c.author_records_burst = 4;
    })
    .await;
    let key = AuthorKey::from_seed(&[2; 32]);
    let fix = |seq: u64| app(&key, "1.0.0").code(1).seq(seq).cid(cid(1)).sign();
    for seq in 1..=4 {
        assert_eq!(api.publish(&fix(seq)).await.json["position"], seq);
    }
    // Positions 1 to 3 held records that were replaced: compacted.
    let log = api.get("/v1/log?after=0").await;
    assert_eq!(
        (&log.json["head"], &log.json["next"]),
        (&4.into(), &4.into())
    );
    let entries = log.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["position"], 4);
    assert_eq!(verified(&entries[0]["record"]), fix(4));
    let page = api.get("/v1/log?after=1&limit=1").await;
    assert_eq!(page.json["entries"][0]["position"], 4);
    assert_eq!(page.json["next"], 4);
    let status = api.get("/v1/status").await.json;
    assert_eq!(
        (&status["log_head"], &status["log_entries"]),
        (&4.into(), &1.into())
    );

    // The author used its burst: the next one is refused, nothing stored.
    let refused = api.publish(&fix(5)).await;
    assert_eq!(
        (refused.status, refused.code()),
        (429, "author_rate_limited")
    );
    let message = refused.json["message"].as_str().unwrap();
    assert!(message.contains(&key.author_id().to_string()), "{message}");
    assert!(message.contains("try again later"), "{message}");
    assert_eq!(api.get("/v1/status").await.json["log_head"], 4);
    // Another author is not held back; this one gets a record a second.
    let other = app(&AuthorKey::from_seed(&[3; 32]), "1.0.0")
        .seq(1)
        .cid(cid(2))
        .sign();
    assert_eq!(api.publish(&other).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(api.publish(&fix(5)).await.json["change"], "replaced");
    let metrics = api.node.metrics_text().await.unwrap();
    assert!(
        metrics.contains("ipsr_records_throttled_total{source=\"local\"} 1"),
        "{metrics}"
    );
}

/// The author's payload under another key and that key's signature.
fn forged(author: &AuthorKey, forger: &AuthorKey) -> Vec<u8> {
    let genuine = app(author, "3.0.0").code(3).seq(3).cid(cid(3)).sign();
    let Record::Release(mut r) = genuine.record().clone() else {
        unreachable!()
    };
    r.author = forger.author_id();
    let forgery = r.sign(forger).unwrap();
    let mut bytes = forgery.to_bytes();
    let fp = forgery.payload().to_vec();
    let start = bytes.windows(fp.len()).position(|w| w == fp).unwrap();
    bytes.splice(start..start + fp.len(), genuine.payload().to_vec());
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_stable_code_and_nothing_is_stored() {
    let api = Api::start().await;
    let key = AuthorKey::from_seed(&[3; 32]);
    let good = app(&key, "1.0.0").seq(1).cid(cid(1)).sign();

    let malformed = api.post(vec![0xff, 0xff, 0xff]).await;
    assert_eq!((malformed.status, malformed.code()), (422, "malformed"));
    assert!(!malformed.json["message"].as_str().unwrap().is_empty());
    let empty = api.post(Vec::new()).await;
    assert_eq!(empty.status, 422, "{:?}", empty.json);

    let forgery = api
        .post(forged(&key, &AuthorKey::from_seed(&[4; 32])))
        .await;
    assert_eq!((forgery.status, forgery.code()), (422, "key_mismatch"));

    // Validly signed, but the title holds U+202E RIGHT-TO-LEFT OVERRIDE.
    let Record::Release(mut spoof) = good.record().clone() else {
        unreachable!()
    };
    spoof.metadata.title = "Notes\u{202E}kpa.exe".into();
    let spoof = ipsr_proto::noncanonical::signed_anyway(&Record::Release(spoof), &key);
    let spoof = api.post(spoof).await;
    assert_eq!((spoof.status, spoof.code()), (422, "invalid"));
    assert!(
        spoof.json["message"]
            .as_str()
            .unwrap()
            .contains("metadata.title contains U+202E"),
        "{:?}",
        spoof.json
    );

    let mut tampered = good.to_bytes();
    *tampered.last_mut().unwrap() ^= 1; // the last byte of the signature
    let tampered = api.post(tampered).await;
    assert_eq!((tampered.status, tampered.code()), (422, "bad_signature"));

    // Over the record limit: refused by the record rules (11 KiB) or by the
    // HTTP body limit (20 KiB, declared or chunked).
    for size in [
        ipsr_proto::limits::MAX_RECORD_BYTES + 1,
        11 * 1024,
        20 * 1024,
    ] {
        let big = api.post(vec![0x0a; size]).await;
        assert_eq!((big.status, big.code()), (413, "too_large"), "{size} bytes");
    }
    let chunked = api
        .call(|agent, base| {
            let body = std::io::Cursor::new(vec![0u8; 20 * 1024]);
            agent
                .post(format!("{base}/v1/records"))
                .header("content-type", "application/octet-stream")
                .send(ureq::SendBody::from_owned_reader(body))
        })
        .await;
    assert_eq!((chunked.status, chunked.code()), (413, "too_large"));

    // A valid record with the wrong content type is refused too.
    let bytes = good.to_bytes();
    let wrong_type = api
        .call(move |agent, base| {
            agent
                .post(format!("{base}/v1/records"))
                .header("content-type", "text/plain")
                .send(bytes)
        })
        .await;
    assert_eq!(
        (wrong_type.status, wrong_type.code()),
        (415, "unsupported_media_type")
    );

    // Bad path parts: 400 naming the part.
    let author = key.author_id().to_string();
    for (path, code, part) in [
        (
            "/v1/packages/k51nope/com.example.app".to_owned(),
            "bad_author",
            "author",
        ),
        (
            format!("/v1/packages/{}/com.example.app", author.to_uppercase()),
            "bad_author",
            "author",
        ),
        (
            format!("/v1/packages/{author}/app"),
            "bad_package",
            "package",
        ),
        (
            format!("/v1/packages/{author}/com.example.app/v1.0"),
            "bad_version",
            "version",
        ),
        (
            "/v1/authors/%3Cscript%3E".to_owned(),
            "bad_author",
            "author",
        ),
        ("/v1/log?after=-1".to_owned(), "bad_query", "after"),
        ("/v1/log?limit=0".to_owned(), "bad_query", "limit"),
        ("/v1/log?wait=soon".to_owned(), "bad_query", "wait"),
    ] {
        let answer = api.get(&path).await;
        assert_eq!((answer.status, answer.code()), (400, code), "{path}");
        let message = answer.json["message"].as_str().unwrap();
        assert!(message.starts_with(part), "{path}: {message}");
    }

    // Unknown things: 404; a known route with another method: 405.
    for path in [
        format!("/v1/packages/{author}/com.example.app"),
        format!("/v1/packages/{author}/com.example.app/1.0.0"),
        "/v1/nothing".to_owned(),
        "/".to_owned(),
        "/v1/packages".to_owned(),
    ] {
        let answer = api.get(&path).await;
        assert_eq!((answer.status, answer.code()), (404, "not_found"), "{path}");
    }
    let put = api
        .call(|agent, base| agent.put(format!("{base}/v1/records")).send_empty())
        .await;
    assert_eq!((put.status, put.code()), (405, "method_not_allowed"));
    let delete = api
        .call(|agent, base| agent.delete(format!("{base}/v1/status")).call())
        .await;
    assert_eq!((delete.status, delete.code()), (405, "method_not_allowed"));
    let get_records = api.get("/v1/records").await;
    assert_eq!(get_records.status, 405);

    // Any single flipped byte of a valid record is refused, never a 500.
    let bytes = good.to_bytes();
    for i in (0..bytes.len()).step_by(3) {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x41;
        let answer = api.post(flipped).await;
        assert!(
            answer.status == 413 || answer.status == 422,
            "byte {i}: {} {:?}",
            answer.status,
            answer.json
        );
    }

    // Nothing from any of it was stored or logged.
    let status = api.get("/v1/status").await;
    assert_eq!(status.json["records"], 0);
    assert_eq!(status.json["log_head"], 0);
    assert_eq!(api.records_held().await, 0);
    // The node still takes a good record.
    assert_eq!(api.publish(&good).await.json["change"], "new");
    assert_eq!(api.records_held().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_node_did() {
    let api = Api::start().await;
    let key = AuthorKey::from_seed(&[3; 32]);
    assert_eq!(
        api.publish(&app(&key, "1.0.0").seq(10).cid(cid(1)).sign())
            .await
            .status,
        200
    );
    assert_eq!(
        api.publish(&app(&key, "1.1.0").code(2).seq(11).cid(cid(2)).sign())
            .await
            .status,
        200
    );
    let added = api
        .send("POST", "/v1/content", Some(pattern(1, 1024 * 1024 + 1)))
        .await;
    assert_eq!(added.json["blocks"], 3);
    let base = api.base.clone();
    let agent = api.agent.clone();
    let (content_type, text) = tokio::task::spawn_blocking(move || {
        let mut response = agent.get(format!("{base}/metrics")).call().unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        (content_type, response.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    for line in [
        "ipsr_records_accepted_total{source=\"local\"} 2",
        "ipsr_store_records 2",
        "ipsr_log_head 2",
        "ipsr_blockstore_blocks 3",
        "ipsr_pins 1",
        // No peer in this test.
        "ipsr_peers_connected 0",
        &format!(
            "ipsr_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing from:\n{text}"
        );
    }
    // The process's own figures, under Prometheus' standard names.
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
    };
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_threads") >= 1.0);
    assert!(value("process_cpu_seconds_total") > 0.0);
    assert!(value("process_start_time_seconds") > 1.7e9);
    assert!(
        text.contains("libp2p_"),
        "libp2p's metrics are exported too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_add_cat_stat_pin_unpin_gc() {
    let api = Api::start().await;
    // IPIP-499's "hello world" vectors, one per profile.
    let v1 = api
        .send("POST", "/v1/content", Some(b"hello world".to_vec()))
        .await;
    assert_eq!(v1.status, 200, "{:?}", v1.json);
    assert_eq!(
        v1.json["cid"],
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    );
    assert_eq!(v1.json["profile"], "unixfs-v1-2025");
    let v0 = api
        .send(
            "POST",
            "/v1/content?profile=unixfs-v0-2015&label=legacy",
            Some(b"hello world".to_vec()),
        )
        .await;
    assert_eq!(
        v0.json["cid"],
        "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
    );

    // A multi-block file round-trips with its length and ETag.
    let file = pattern(1, 3 * 1024 * 1024 + 5);
    let added = api.send("POST", "/v1/content", Some(file.clone())).await;
    assert_eq!(
        (added.json["size"].as_u64(), added.json["blocks"].as_u64()),
        (Some(file.len() as u64), Some(5))
    );
    let cid = added.json["cid"].as_str().unwrap().to_owned();
    let (status, etag, length, body) = api.bytes(&format!("/v1/content/{cid}")).await;
    assert_eq!(status, 200);
    assert_eq!(etag, Some(format!("\"{cid}\"")));
    assert_eq!(length, Some(file.len().to_string()));
    assert!(body == file, "the bytes read back differ");

    // Repeated chunks (zero-filled regions) share one block, read twice.
    let mut zeros = vec![0u8; 3 * 1024 * 1024];
    zeros.extend_from_slice(b"tail");
    let sparse = api.send("POST", "/v1/content", Some(zeros.clone())).await;
    assert_eq!(sparse.json["blocks"], 5, "4 leaves, 1 root");
    let sparse_cid = sparse.json["cid"].as_str().unwrap().to_owned();
    let (status, _, _, body) = api.bytes(&format!("/v1/content/{sparse_cid}")).await;
    assert_eq!((status, body.len()), (200, zeros.len()));
    assert!(
        body == zeros,
        "a file with repeated chunks reads back whole"
    );

    let stat = api.get(&format!("/v1/content/{cid}/stat")).await;
    assert_eq!(stat.json["complete"], true);
    assert_eq!(stat.json["pinned"], true);
    assert_eq!(stat.json["blocks"], 5);
    assert_eq!(stat.json["size"].as_u64(), Some(file.len() as u64));

    let pins = api.get("/v1/pins").await;
    let labels: Vec<&Value> = pins
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["label"])
        .collect();
    assert_eq!(labels.len(), 4);
    assert!(labels.contains(&&Value::from("legacy")));

    // Unpinned content goes at gc; pinned content stays.
    let unpinned = api.send("DELETE", &format!("/v1/pins/{cid}"), None).await;
    assert_eq!(
        (unpinned.status, &unpinned.json["pinned"]),
        (200, &Value::from(false))
    );
    let again = api.send("DELETE", &format!("/v1/pins/{cid}"), None).await;
    assert_eq!((again.status, again.code()), (404, "not_found"));
    let gc = api.send("POST", "/v1/gc", None).await;
    assert_eq!(gc.json["removed"], 5);
    assert!(gc.json["freed"].as_u64().unwrap() > file.len() as u64);
    let stat = api.get(&format!("/v1/content/{cid}/stat")).await;
    assert_eq!(
        (&stat.json["local"], &stat.json["pinned"]),
        (&Value::from(false), &Value::from(false))
    );
    let hello = api
        .get("/v1/content/Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD/stat")
        .await;
    assert_eq!(hello.json["complete"], true, "pinned content survives gc");

    // Pinning again re-adds nothing from the swarm (no provider) but a
    // local root pins at once.
    let pinned = api
        .send(
            "PUT",
            "/v1/pins/Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD?label=x",
            None,
        )
        .await;
    assert_eq!(
        (pinned.status, pinned.json["local"].as_u64()),
        (200, Some(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_content_requests_get_clear_errors() {
    let api = Api::start().await;
    for (method, path, code) in [
        ("GET", "/v1/content/not-a-cid", "bad_cid"),
        ("GET", "/v1/content/not-a-cid/stat", "bad_cid"),
        ("PUT", "/v1/pins/bafy", "bad_cid"),
        // dag-cbor and blake2b CIDs are not IPSR content.
        (
            "GET",
            "/v1/content/bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua",
            "bad_cid",
        ),
        ("POST", "/v1/content?profile=trickle", "bad_query"),
        ("POST", "/v1/content?chunker=size-1", "bad_query"),
        (
            "GET",
            "/v1/content/bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e?providers=me",
            "bad_query",
        ),
    ] {
        let answer = api.send(method, path, Some(Vec::new())).await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, code),
            "{method} {path}: {:?}",
            answer.json
        );
    }
    let bare = api
        .call(|agent, base| agent.post(format!("{base}/v1/content")).send(&b"x"[..]))
        .await;
    assert_eq!((bare.status, bare.code()), (415, "unsupported_media_type"));
    let nothing = api.send("GET", "/v1/pins", None).await;
    assert_eq!(nothing.json, Value::Array(Vec::new()), "nothing was pinned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_blockstore_refuses_an_upload_with_507() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::local(dir.path().to_owned());
    config.blockstore_limit = Some(2 * 1024 * 1024);
    let node = ipsr_node::spawn(config).await.unwrap();
    let (addr, server) = ipsr_node::serve_api(node.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = tokio::spawn(server);
    let answer = tokio::task::spawn_blocking(move || {
        let mut response = agent_with_timeout(TIMEOUT)
            .post(format!("http://{addr}/v1/content"))
            .header("content-type", "application/octet-stream")
            .send(&pattern(1, 3 * 1024 * 1024)[..])
            .unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(answer.0, 507, "{}", answer.1);
    assert!(answer.1.contains("blockstore_full"), "{}", answer.1);
    let stats = node.content().blockstore().stats().unwrap();
    assert!(
        stats.bytes <= 2 * 1024 * 1024 && stats.pins == 0,
        "{stats:?}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_a_release_pins_its_local_content() {
    let api = Api::start().await;
    let added = api
        .send("POST", "/v1/content", Some(pattern(1, 1500)))
        .await;
    let cid = added.json["cid"].as_str().unwrap().to_owned();
    assert_eq!(
        api.send("DELETE", &format!("/v1/pins/{cid}"), None)
            .await
            .status,
        200
    );

    let key = AuthorKey::from_seed(&[9; 32]);
    // A record whose size is not the content's: published, not pinned.
    let wrong = release(&key, "0.9.0")
        .package("com.example.pinned")
        .cid(cid.parse().unwrap())
        .size(1499)
        .sign();
    assert_eq!(api.publish(&wrong).await.status, 200);
    assert_eq!(api.get("/v1/pins").await.json, serde_json::json!([]));
    let release = release(&key, "1.0.0")
        .package("com.example.pinned")
        .cid(cid.parse().unwrap())
        .size(1500)
        .seq(2)
        .code(2)
        .sign();
    assert_eq!(api.publish(&release).await.status, 200);
    let pins = api.get("/v1/pins").await;
    assert_eq!(pins.json[0]["cid"], cid.as_str());
    assert_eq!(
        pins.json[0]["label"],
        format!("{}/com.example.pinned@1.0.0", key.author_id()).as_str()
    );
    assert_eq!(api.send("POST", "/v1/gc", None).await.json["removed"], 0);
}

impl Api {
    /// A request with extra headers (`Host` among them, which replaces the
    /// real one).
    async fn send_with(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&'static str, &str)],
    ) -> Answer {
        let path = path.to_owned();
        let headers: Vec<(&'static str, String)> = headers
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect();
        self.call(move |agent, base| {
            let mut request = ureq::http::Request::builder()
                .method(method)
                .uri(format!("{base}{path}"));
            for (name, value) in headers {
                request = request.header(name, value);
            }
            agent.run(request.body(Vec::new()).unwrap())
        })
        .await
    }
}

/// What a web page can make the user's browser send is refused: a request
/// that names another host (DNS rebinding: the page's own name, resolved
/// to 127.0.0.1) and a state change from another origin (a cross-site form
/// or `fetch` with a simple content type, which needs no preflight). A
/// tool's request (no `Origin`) and the node's own origin are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_of_other_sites_cannot_drive_the_api() {
    let api = Api::start().await;
    let pin = format!("/v1/pins/{}", cid(7));
    let rebind = [("host", "rebind.attacker.example")];
    for (method, path) in [
        ("POST", "/v1/gc"),
        ("DELETE", pin.as_str()),
        ("GET", "/v1/status"),
    ] {
        let refused = api.send_with(method, path, &rebind).await;
        assert_eq!(
            (refused.status, refused.code()),
            (403, "forbidden_host"),
            "{method} {path}"
        );
    }
    let cross_site = [
        ("origin", "https://attacker.example"),
        ("content-type", "text/plain"),
    ];
    let refused = api.send_with("POST", "/v1/gc", &cross_site).await;
    assert_eq!((refused.status, refused.code()), (403, "cross_origin"));
    let refused = api
        .send_with("DELETE", &pin, &[("sec-fetch-site", "cross-site")])
        .await;
    assert_eq!((refused.status, refused.code()), (403, "cross_origin"));

    // The same routes serve a tool, and a page of the node's own origin.
    assert_eq!(api.send_with("POST", "/v1/gc", &[]).await.status, 200);
    let served = api
        .send_with("POST", "/v1/gc", &[("origin", api.base.as_str())])
        .await;
    assert_eq!(served.status, 200, "{:?}", served.json);
    let localhost = [("host", "localhost")];
    let unknown = api.send_with("DELETE", &pin, &localhost).await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
}

/// An API with a token (what a node bound off loopback serves; here on
/// 127.0.0.1, the one address a test can reach) answers no request without
/// it: `401 unauthorized` with a `Bearer` challenge, on every route and
/// method, unknown routes too, and nothing changes. With it, the node is
/// served under any host name, but a page of another origin still cannot
/// change state. Without a token, an API off loopback is not served at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_request_must_carry_it() {
    const TOKEN: &str = "4a1f0c9e7b3d58a2c6e0f1b9d7a3c5e8";
    let api = Api::start_with_token(ApiToken::new(TOKEN).unwrap()).await;
    let record = release(&AuthorKey::from_seed(&[3; 32]), "1.0.0").sign();
    let pin = format!("/v1/pins/{}", cid(7));
    let requests = [
        ("GET", "/v1/status"),
        ("GET", "/v1/log"),
        ("GET", "/metrics"),
        ("GET", "/v1/pins"),
        ("GET", "/no/such/route"),
        ("OPTIONS", "/v1/status"),
        ("POST", "/v1/records"),
        ("POST", "/v1/gc"),
        ("PUT", pin.as_str()),
        ("DELETE", pin.as_str()),
    ];
    let right = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {}", TOKEN.replace('4', "5"));
    for (method, path) in requests {
        for authorization in [None, Some(wrong.as_str()), Some("Basic dXNlcjpwYXNz")] {
            let headers: Vec<(&'static str, &str)> = authorization
                .map(|a| ("authorization", a))
                .into_iter()
                .collect();
            let refused = api.send_with(method, path, &headers).await;
            assert_eq!(
                (refused.status, refused.code()),
                (401, "unauthorized"),
                "{method} {path} {authorization:?}"
            );
            assert_eq!(
                refused.challenge.as_deref(),
                Some("Bearer realm=\"ipsr-node\""),
                "{method} {path}"
            );
        }
    }
    let missing = api.send_with("GET", "/v1/status", &[]).await;
    assert!(
        missing.json["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{:?}",
        missing.json
    );
    let posted = api
        .call({
            let bytes = record.to_bytes();
            move |agent, base| {
                agent
                    .post(format!("{base}/v1/records"))
                    .header("content-type", "application/octet-stream")
                    .send(bytes)
            }
        })
        .await;
    assert_eq!((posted.status, posted.code()), (401, "unauthorized"));
    assert_eq!(
        api.node.store().stats().unwrap().records,
        0,
        "nothing stored"
    );

    // With the token: served, and the publish goes through.
    let with = [("authorization", right.as_str())];
    let status = api.send_with("GET", "/v1/status", &with).await;
    assert_eq!(status.status, 200, "{:?}", status.json);
    assert_eq!(status.challenge, None);
    let posted = api
        .call({
            let (bytes, right) = (record.to_bytes(), right.clone());
            move |agent, base| {
                agent
                    .post(format!("{base}/v1/records"))
                    .header("content-type", "application/octet-stream")
                    .header("authorization", right)
                    .send(bytes)
            }
        })
        .await;
    assert_eq!(posted.status, 200, "{:?}", posted.json);
    assert_eq!(api.node.store().stats().unwrap().records, 1);
    assert_eq!(api.send_with("POST", "/v1/gc", &with).await.status, 200);
    let unknown = api.send_with("GET", "/no/such/route", &with).await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));

    // A remote operator's host name is served with the token ...
    let remote = [
        ("authorization", right.as_str()),
        ("host", "node.example.org:5050"),
    ];
    assert_eq!(
        api.send_with("GET", "/v1/status", &remote).await.status,
        200
    );
    assert_eq!(api.send_with("POST", "/v1/gc", &remote).await.status, 200);
    // ... but a state change from a page of another origin is not.
    let cross_site = [
        ("authorization", right.as_str()),
        ("origin", "https://attacker.example"),
    ];
    let refused = api.send_with("POST", "/v1/gc", &cross_site).await;
    assert_eq!((refused.status, refused.code()), (403, "cross_origin"));

    // No token, no API off loopback.
    let off_loopback = "0.0.0.0:0".parse().unwrap();
    match ipsr_node::serve_api(api.node.clone(), off_loopback).await {
        Err(ApiError::TokenRequired { addr }) => assert_eq!(addr, off_loopback),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("served off loopback without a token"),
    }
}
