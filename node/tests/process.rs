//! End-to-end tests of the `ipsr-node` binary as a user runs it.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use ipsr_testkit::{CID, Proc, agent_with_timeout, pattern, poll, release};

/// A started node and what it printed.
struct Node {
    /// Killed when the test ends, also when it fails.
    guard: Proc,
    peer: String,
    addrs: Vec<String>,
    /// The API's base URL, `http://127.0.0.1:PORT`.
    api: String,
}

/// Starts a node and reads its start-up lines: peer id, listen addresses
/// and, last, the API address.
fn start(data_dir: &std::path::Path) -> Node {
    start_with(data_dir, &[])
}

/// [`start`] with more arguments for `ipsr-node run`.
fn start_with(data_dir: &std::path::Path, extra: &[&str]) -> Node {
    let guard = Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_ipsr-node"))
            .args([
                "run",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra),
    );
    let (mut peer, mut addrs, mut api) = (None, Vec::new(), None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.is_none() {
        let line = guard
            .next_line(deadline)
            .expect("the node prints its peer id, addresses and API address");
        if let Some(p) = line.strip_prefix("peer id: ") {
            peer = Some(p.to_owned());
        } else if let Some(a) = line.strip_prefix("listening on: ") {
            addrs.push(a.to_owned());
        } else if let Some(a) = line.strip_prefix("api: ") {
            assert!(!addrs.is_empty(), "the API line comes after the addresses");
            api = Some(a.to_owned());
        }
    }
    Node {
        guard,
        peer: peer.unwrap(),
        addrs,
        api: api.unwrap(),
    }
}

#[test]
fn starts_prints_its_identity_keeps_it_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let Node {
        guard: mut node,
        peer,
        addrs,
        ..
    } = start(dir.path());
    assert!(addrs[0].starts_with("/ip4/127.0.0.1/tcp/"), "{addrs:?}");
    assert!(addrs[0].ends_with(&format!("/p2p/{peer}")));
    let mode = std::fs::metadata(dir.path().join("identity.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // SIGTERM: a clean, prompt exit with status 0.
    let pid = node.child().id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = poll(Duration::from_secs(10), || node.child().try_wait().unwrap())
        .expect("the node did not stop on SIGTERM");
    assert!(status.success(), "{status}");

    // Restarted, after a kill -9 too, it is the same node.
    let again = start(dir.path());
    assert_eq!(again.peer, peer);
    drop(again); // SIGKILL
    let third = start(dir.path());
    assert_eq!(third.peer, peer);
}

fn http() -> ureq::Agent {
    agent_with_timeout(Duration::from_secs(20))
}

#[test]
fn a_record_posted_over_http_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    assert!(node.api.starts_with("http://127.0.0.1:"), "{}", node.api);
    let key = ipsr_proto::AuthorKey::from_seed(&[5; 32]);
    let record = release(&key, "1.0.0").sign();
    let mut posted = http()
        .post(format!("{}/v1/records", node.api))
        .header("content-type", "application/octet-stream")
        .send(record.to_bytes())
        .unwrap();
    assert_eq!(posted.status(), 200);
    let answer: serde_json::Value =
        serde_json::from_str(&posted.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(answer["change"], "new");
    assert_eq!(answer["position"], 1);

    drop(node); // SIGKILL: no chance to flush anything
    let node = start(dir.path());
    let url = format!(
        "{}/v1/packages/{}/com.example.app",
        node.api,
        key.author_id()
    );
    let mut got = http().get(url).call().unwrap();
    assert_eq!(got.status(), 200);
    let package: serde_json::Value =
        serde_json::from_str(&got.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(package["newest"], "1.0.0");
    assert_eq!(package["versions"][0]["cid"], CID);
    assert_eq!(package["versions"][0]["record_id"], record.id().to_string());
    let mut log = http().get(format!("{}/v1/log", node.api)).call().unwrap();
    let log: serde_json::Value =
        serde_json::from_str(&log.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(log["head"], 1);
    assert_eq!(log["entries"][0]["id"], record.id().to_string());
}

#[test]
fn help_tells_a_newcomer_what_to_type() {
    let out = Command::new(env!("CARGO_BIN_EXE_ipsr-node"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--data-dir",
        "--listen",
        "--bootstrap",
        "--config",
        "--api",
        "IPSR_DATA_DIR",
        "IPSR_API",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_ipsr-node"))
        .args(["run", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--listen"));
}

#[test]
fn content_added_on_one_node_process_downloads_from_another() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(da.path());
    let b = start_with(db.path(), &["--bootstrap", &a.addrs[0]]);
    let agent = http();
    let file = pattern(1, 3 * 1024 * 1024 + 7);
    let mut added = agent
        .post(format!("{}/v1/content", a.api))
        .header("content-type", "application/octet-stream")
        .send(&file[..])
        .unwrap();
    assert_eq!(added.status(), 200);
    let added: serde_json::Value =
        serde_json::from_str(&added.body_mut().read_to_string().unwrap()).unwrap();
    let cid = added["cid"].as_str().unwrap();

    // b finds a as a provider (the DHT, through its bootstrap peer) and
    // streams the file; kill -9 of a afterwards leaves b's copy intact.
    let mut got = agent
        .get(format!("{}/v1/content/{cid}", b.api))
        .call()
        .unwrap();
    assert_eq!(got.status(), 200);
    let body = got
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    assert!(body == file, "the bytes b served differ");
    drop(a);
    let mut stat = agent
        .get(format!("{}/v1/content/{cid}/stat", b.api))
        .call()
        .unwrap();
    let stat: serde_json::Value =
        serde_json::from_str(&stat.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(stat["complete"], true);
    drop(b);
}
