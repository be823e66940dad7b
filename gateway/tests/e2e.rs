//! End to end with real processes: an `ipsr-gateway` and two `ipsr-node`s
//! on loopback; an author publishes from a node with `ipsr-cli`; the
//! package appears in the gateway's JSON API and on its HTML page; HTTP
//! downloads (whole and ranged) are byte-identical; a forged publish is
//! refused. Every process is killed when the test ends, also on failure.

#![allow(clippy::unwrap_used)]

mod procs;

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ipsr_testkit::{Proc, agent_with_timeout, wait_for};
use procs::{binary, node_args};

fn agent() -> ureq::Agent {
    agent_with_timeout(Duration::from_secs(30))
}

fn json(body: &mut ureq::Body) -> serde_json::Value {
    serde_json::from_reader(body.as_reader()).unwrap()
}

/// Each answered request is one `info` line of the access log (never the
/// query); `--no-access-log` turns it off.
#[test]
fn the_access_log_has_a_line_per_request_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let gateway_bin = PathBuf::from(env!("CARGO_BIN_EXE_ipsr-gateway"));
    for (name, flags, logged) in [
        ("on", &[][..], true),
        ("off", &["--no-access-log"][..], false),
    ] {
        let mut args = node_args(&dir.path().join(name));
        args.extend(["--http".into(), "127.0.0.1:0".into()]);
        args.extend(flags.iter().map(|f| f.to_string()));
        let log = dir.path().join(format!("{name}.log"));
        let mut gateway = Proc::spawn_logging(Command::new(&gateway_bin).args(&args), &log);
        let http = gateway.expect_line("gateway: ");
        let http = http.split_whitespace().next().unwrap().to_owned();
        let agent = agent();
        agent.get(format!("{http}/?q=secret+words")).call().unwrap();
        let missing = agent.get(format!("{http}/p/nobody/x.y")).call().unwrap();
        assert_eq!(missing.status().as_u16(), 400);
        // The line is written once the answer is made: wait for it.
        let access = |text: &str| {
            text.lines()
                .filter(|l| l.contains("ipsr_gateway::access"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let lines = if logged {
            wait_for("the access log lines", || {
                let lines = access(&std::fs::read_to_string(&log).unwrap_or_default());
                (lines.len() >= 2).then_some(lines)
            })
        } else {
            std::thread::sleep(Duration::from_millis(500));
            access(&std::fs::read_to_string(&log).unwrap())
        };
        gateway.child().kill().unwrap();
        if !logged {
            assert!(lines.is_empty(), "{lines:?}");
            continue;
        }
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains(" INFO ")
                && lines[0].contains("client=127.0.0.1")
                && lines[0].contains("method=GET")
                && lines[0].contains("path=/ ")
                && lines[0].contains("status=200"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("path=/p/nobody/x.y") && lines[1].contains("status=400"),
            "{}",
            lines[1]
        );
        assert!(lines.iter().all(|l| !l.contains("secret")), "{lines:?}");
    }
}

#[test]
fn publish_with_the_cli_then_browse_and_download_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let gateway_bin = PathBuf::from(env!("CARGO_BIN_EXE_ipsr-gateway"));
    let node_bin = binary("ipsr-node");

    let mut args = node_args(&dir.path().join("gateway"));
    args.extend(["--http".into(), "127.0.0.1:0".into()]);
    let gateway = Proc::spawn(Command::new(&gateway_bin).args(&args));
    let gateway_addr = gateway.expect_line("listening on: ");
    let http = gateway.expect_line("gateway: ");
    let http = http.split_whitespace().next().unwrap().to_owned();

    let start_node = |name: &str| {
        let mut args = vec!["run".to_owned()];
        args.extend(node_args(&dir.path().join(name)));
        args.extend(["--bootstrap".into(), gateway_addr.clone()]);
        let node = Proc::spawn(Command::new(&node_bin).args(&args));
        let api = node.expect_line("api: ");
        (node, api)
    };
    let (_author_node, author_api) = start_node("author");
    let (_other_node, _other_api) = start_node("other");

    // The author: a key, and a release published from their node.
    let config = dir.path().join("config");
    let cli = |args: &[&str]| procs::cli(&author_api, &config, args);
    let author = cli(&["key", "generate"]).trim().to_owned();
    assert!(author.starts_with("k51"), "{author}");
    let app: Vec<u8> = (0..3 * 1024 * 1024 + 333u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // Not an APK (whose manifest `publish` would check): raw bytes for Android.
    let file = dir.path().join("hello.bin");
    std::fs::write(&file, &app).unwrap();
    let metadata = dir.path().join("meta.toml");
    std::fs::write(
        &metadata,
        "title = \"Hello <b>E2E</b>\"\nsummary = \"An app published end to end\"\n",
    )
    .unwrap();
    cli(&[
        "publish",
        file.to_str().unwrap(),
        "--package",
        "com.example.e2e",
        "--version",
        "1.0.0",
        "--platform",
        "android",
        "--metadata",
        metadata.to_str().unwrap(),
    ]);

    // The gateway learns it from the swarm.
    let agent = agent();
    let package_url = format!("{http}/api/v1/package/{author}/com.example.e2e");
    let package: serde_json::Value = wait_for("the package on the gateway", || {
        let mut response = agent.get(&package_url).call().ok()?;
        (response.status() == 200).then(|| json(response.body_mut()))
    });
    assert_eq!(package["newest"], "1.0.0");
    assert_eq!(package["metadata"]["title"], "Hello <b>E2E</b>");
    let cid = package["versions"][0]["cid"].as_str().unwrap().to_owned();

    // The web page: escaped title, the CID, the download link.
    let mut page = agent
        .get(format!("{http}/p/{author}/com.example.e2e"))
        .call()
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.body_mut().read_to_string().unwrap();
    assert!(
        html.contains("Hello &lt;b&gt;E2E&lt;/b&gt;"),
        "escaped title"
    );
    assert!(!html.contains("<b>E2E</b>"));
    assert!(html.contains(&cid));
    let link = format!("/api/v1/download/{author}/com.example.e2e/1.0.0");
    assert!(html.contains(&link), "download link");

    // Downloads: whole, and a range from the middle (the bytes come from
    // the author's node over Bitswap).
    let mut whole = agent.get(format!("{http}{link}")).call().unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(
        whole.headers()["etag"].to_str().unwrap(),
        format!("\"{cid}\"")
    );
    let mut bytes = Vec::new();
    whole
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .reader()
        .read_to_end(&mut bytes)
        .unwrap();
    assert!(bytes == app, "the whole download is the published file");
    let (from, to) = (1_500_000usize, 2_600_000usize);
    let mut part = agent
        .get(format!("{http}{link}"))
        .header("range", format!("bytes={from}-{to}"))
        .call()
        .unwrap();
    assert_eq!(part.status(), 206);
    let mut bytes = Vec::new();
    part.body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .reader()
        .read_to_end(&mut bytes)
        .unwrap();
    assert!(bytes == app[from..=to], "the range is the file's bytes");

    // A forged publish: a byte of a real record's signature flipped.
    let mut release: serde_json::Value = agent
        .get(format!("{package_url}/1.0.0"))
        .call()
        .map(|mut r| json(r.body_mut()))
        .unwrap();
    use base64::Engine;
    let mut record = base64::engine::general_purpose::STANDARD
        .decode(release["record"].take().as_str().unwrap())
        .unwrap();
    let last = record.len() - 1;
    record[last] ^= 0x40;
    let response = agent
        .post(format!("{http}/api/v1/publish"))
        .header("content-type", "application/octet-stream")
        .send(&record[..])
        .unwrap();
    assert_eq!(response.status(), 422, "forged records are refused");
}

/// Two gateway processes, each with its own node, share one Redis Cluster
/// (3 masters): each indexes its node's log with its own cursor, records
/// published on either node reach both (gossip), and both gateways serve
/// the same answers.
#[test]
fn two_gateways_share_one_redis_cluster_and_converge() {
    use ipsr_testkit::{ClusterOptions, RedisCluster, key, release, unique_prefix};
    let cluster = RedisCluster::start(ClusterOptions::default());
    let url = cluster.url();
    let prefix = unique_prefix("two_gateways");
    let dir = tempfile::tempdir().unwrap();
    let gateway_bin = PathBuf::from(env!("CARGO_BIN_EXE_ipsr-gateway"));
    let start = |name: &str, bootstrap: Option<&str>| {
        let mut args = node_args(&dir.path().join(name));
        args.extend(["--http", "127.0.0.1:0", "--rate-limit", "0"].map(String::from));
        args.extend([
            "--redis".into(),
            url.clone(),
            "--redis-prefix".into(),
            prefix.clone(),
        ]);
        if let Some(b) = bootstrap {
            args.extend(["--bootstrap".into(), b.to_owned()]);
        }
        let proc = Proc::spawn(Command::new(&gateway_bin).args(&args));
        let addr = proc.expect_line("listening on: ");
        let api = proc.expect_line("api: ");
        let http = proc.expect_line("gateway: ");
        assert!(http.contains("(index: redis cluster)"), "{http}");
        let http = http.split_whitespace().next().unwrap().to_owned();
        (proc, addr, api, http)
    };
    let (_a, a_addr, a_api, a_http) = start("a", None);
    let (_b, _, b_api, b_http) = start("b", Some(&a_addr));
    let agent = agent();
    let (k1, k2) = (key(61), key(62));
    let one = release(&k1, "1.0.0").package("com.example.one").sign();
    let two = release(&k2, "2.0.0").package("com.example.two").sign();
    // Once both nodes are connected (gossip carries the records), each
    // record is published on one node.
    wait_for("the nodes to connect", || {
        let mut r = agent.get(format!("{b_api}/v1/status")).call().ok()?;
        let status = json(r.body_mut());
        (status["peers"].as_u64()? > 0).then_some(())
    });
    for (api, record) in [(&a_api, &one), (&b_api, &two)] {
        let response = agent
            .post(format!("{api}/v1/records"))
            .header("content-type", "application/octet-stream")
            .send(&record.to_bytes()[..])
            .unwrap();
        assert!(response.status().is_success());
    }
    let paths = [
        format!("/api/v1/package/{}/com.example.one", k1.author_id()),
        format!("/api/v1/package/{}/com.example.two", k2.author_id()),
        "/api/v1/packages".to_owned(),
    ];
    let body = |http: &str, path: &str| -> Option<serde_json::Value> {
        let mut r = agent.get(format!("{http}{path}")).call().ok()?;
        (r.status() == 200).then(|| json(r.body_mut()))
    };
    for path in &paths {
        wait_for(&format!("both gateways to serve {path} alike"), || {
            let (a, b) = (body(&a_http, path)?, body(&b_http, path)?);
            let text = a.to_string();
            let whole = text.contains("com.example.one") && text.contains("com.example.two");
            (a == b && (whole || !path.ends_with("packages"))).then_some(())
        });
    }
    // Each gateway's indexer keeps its own cursor in the cluster.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cursors = runtime.block_on(async {
        let mut config = ipsr_indexer::RedisConfig::new(url.clone());
        config.prefix = prefix.clone();
        let index = ipsr_indexer::RedisIndex::open(&config).unwrap();
        let keys = index.dump().await.unwrap();
        index.clear().await.unwrap();
        keys.into_iter()
            .filter(|(k, _)| k.starts_with("cursor:"))
            .count()
    });
    assert_eq!(cursors, 2);
}
