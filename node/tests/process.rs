//! End-to-end tests of the `ipsr-node` binary as a user runs it.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use ipsr_testkit::{
    CID, IdleFlood, Proc, agent_with_timeout, free_port, output_within, pattern, poll, release,
    wait_for,
};

/// A started node and what it printed.
struct Node {
    /// Killed when the test ends, also when it fails.
    guard: Proc,
    peer: String,
    addrs: Vec<String>,
    /// The API's base URL, `http://127.0.0.1:PORT` (as printed: an API on
    /// `0.0.0.0` prints that).
    api: String,
    /// The API token file, when the node printed one.
    token_file: Option<String>,
}

/// Starts a node and reads its start-up lines: peer id, listen addresses
/// and, last, the API address.
fn start(data_dir: &std::path::Path) -> Node {
    start_with(data_dir, &[])
}

/// [`start`] with more arguments for `ipsr-node run` (`--listen` and
/// `--api` among them replace the loopback defaults).
fn start_with(data_dir: &std::path::Path, extra: &[&str]) -> Node {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ipsr-node"));
    command
        .arg("run")
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra);
    for (flag, default) in [
        ("--listen", "/ip4/127.0.0.1/tcp/0"),
        ("--api", "127.0.0.1:0"),
    ] {
        if !extra.contains(&flag) {
            command.args([flag, default]);
        }
    }
    let guard = Proc::spawn(command.env_remove("IPSR_API_TOKEN_FILE"));
    let (mut peer, mut addrs, mut api, mut token_file) = (None, Vec::new(), None, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.is_none() {
        let line = guard
            .next_line(deadline)
            .expect("the node prints its peer id, addresses and API address");
        if let Some(p) = line.strip_prefix("peer id: ") {
            peer = Some(p.to_owned());
        } else if let Some(a) = line.strip_prefix("listening on: ") {
            addrs.push(a.to_owned());
        } else if let Some(a) = line.strip_prefix("api token file: ") {
            token_file = Some(a.to_owned());
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
        token_file,
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

/// A second node on a data dir in use refuses to start, and says once which
/// process uses it (it said "Database already open. Cannot acquire lock."
/// three times); the first one serves on.
#[test]
fn a_second_node_on_a_data_dir_in_use_names_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = start(dir.path());
    let pid = first.guard.child().id();
    let out = run_to_end(dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    let says = format!(
        "another IPSR process (pid {pid}, ipsr-node) uses the data dir {}",
        dir.path().display()
    );
    assert_eq!(stderr.matches(&says).count(), 1, "{stderr}");
    assert!(!stderr.contains("Database already open"), "{stderr}");
    assert!(
        http()
            .get(format!("{}/v1/status", first.api))
            .call()
            .is_ok(),
        "the first node still serves"
    );
}

/// `ipsr-node run` on loopback with `data_dir` and `extra` arguments, run
/// to its end (killed after 20 s): for starts that must fail.
fn run_to_end(data_dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ipsr-node"));
    command
        .arg("run")
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env_remove("IPSR_API_TOKEN_FILE");
    for (flag, default) in [
        ("--listen", "/ip4/127.0.0.1/tcp/0"),
        ("--api", "127.0.0.1:0"),
    ] {
        if !extra.contains(&flag) {
            command.args([flag, default]);
        }
    }
    output_within(&mut command, Duration::from_secs(20)).expect("the node exits within 20 s")
}

/// An empty identity file, what a crash during the first start left, never
/// held a key: the node starts with a new identity. A damaged one stops the
/// start at once with a message naming the file, which is left as it was.
#[test]
fn an_empty_identity_file_is_replaced_and_a_damaged_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("identity.key");
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(&file, b"").unwrap();
    let node = start(dir.path());
    let first = node.peer.clone();
    drop(node);
    assert!(!std::fs::read(&file).unwrap().is_empty());
    assert_eq!(start(dir.path()).peer, first, "the new identity is kept");

    std::fs::write(&file, b"junk").unwrap();
    let out = run_to_end(dir.path(), &[]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "identity file {} (4 bytes) is not a libp2p private key",
            file.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"junk");
}

/// A second node on a port the first listens on refuses to start within a
/// few seconds, naming the port, instead of sharing it: libp2p's TCP
/// listeners set `SO_REUSEPORT`, so without the check it started and the
/// kernel split inbound connections between the two. The QUIC (UDP) port
/// and the API port are refused too.
#[test]
fn a_second_node_on_a_port_in_use_refuses_to_start() {
    let (tcp, udp) = (free_port(), free_port());
    let tcp_addr = format!("/ip4/127.0.0.1/tcp/{tcp}");
    let quic_addr = format!("/ip4/127.0.0.1/udp/{udp}/quic-v1");
    let first_dir = tempfile::tempdir().unwrap();
    let first = start_with(
        first_dir.path(),
        &["--listen", &tcp_addr, "--listen", &quic_addr],
    );
    // (Its sockets are bound before it prints its API address.)
    let api_port = first.api.rsplit(':').next().unwrap().to_owned();
    let api_addr = format!("127.0.0.1:{api_port}");
    for (flag, value, says) in [
        (
            "--listen",
            tcp_addr.as_str(),
            format!("cannot listen on {tcp_addr}: TCP port {tcp} is already in use"),
        ),
        (
            "--listen",
            quic_addr.as_str(),
            format!("cannot listen on {quic_addr}"),
        ),
        (
            "--api",
            api_addr.as_str(),
            format!("cannot listen on {api_addr}"),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let out = run_to_end(dir.path(), &[flag, value]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value}: {out:?}");
        assert!(stderr.contains(&says), "{flag} {value}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{flag} {value}"
        );
    }
    // The first node still serves.
    assert!(
        http()
            .get(format!("{}/v1/status", first.api))
            .call()
            .is_ok()
    );
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
        "--api-token-file",
        "IPSR_DATA_DIR",
        "IPSR_API",
        "IPSR_API_TOKEN_FILE",
        "api_token_file",
        "/dns4/",
        "max_incoming_per_ip",
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

/// A JSON document from a node's API.
fn get_json(node: &Node, path: &str) -> serde_json::Value {
    let mut answer = http().get(format!("{}{path}", node.api)).call().unwrap();
    assert_eq!(answer.status(), 200, "{path}");
    serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap()
}

/// The peers a node is connected to.
fn peers(node: &Node) -> Vec<String> {
    let peers = get_json(node, "/v1/peers");
    peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

/// Whether `b` has joined through `a`, its only bootstrap peer: they are
/// connected, and `b`'s DHT routing table holds a peer (`a`: it knows no
/// other).
fn joined(a: &Node, b: &Node) -> bool {
    peers(a).contains(&b.peer) && get_json(b, "/v1/status")["dht_peers"].as_u64() >= Some(1)
}

/// Whether a node has seen a dial fail (libp2p's counter of outgoing
/// connection errors has a series).
/// Whether a dial of `node` failed in the transport: refused, reset or cut
/// short by the peer (`TransportOther`). A dial the node drops itself
/// (`Aborted` when another connection to the peer won, `Denied` by its own
/// limits) is no refusal.
fn a_dial_failed(node: &Node) -> bool {
    let mut metrics = http().get(format!("{}/metrics", node.api)).call().unwrap();
    let text = metrics.body_mut().read_to_string().unwrap();
    text.lines().any(|l| {
        l.starts_with("libp2p_swarm_outgoing_connection_error_total{")
            && l.contains("error=\"TransportOther\"")
    })
}

/// The TCP port of a node's first listen address.
fn tcp_port(node: &Node) -> u16 {
    let addr: libp2p::Multiaddr = node.addrs[0].parse().unwrap();
    addr.iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap()
}

/// Idle TCP connections from one address must not keep a new peer out
/// (issue 17: 200 of them filled the 129 handshake slots).
///
/// ```text
///   127.0.0.2 ══ 200 idle TCP connections, reopened as a closes them ══▶ a
///   127.0.0.1 ── b, bootstrapping from a ───────────────────────────────▶ a
/// ```
///
/// The flood comes from another address than b's: per-IP limits tell
/// sources apart, and 127.0.0.1 (which b dials from) is exempt by default
/// for local testnets, while 127.0.0.2 (loopback too on Linux) is not.
#[test]
fn joins_under_a_flood_of_idle_connections_from_one_address() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(da.path());
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], tcp_port(&a)));
    let flood = IdleFlood::start("127.0.0.2".parse().unwrap(), target, 200);
    wait_for(
        "200 idle connections, those over a's limits refused",
        || (flood.opened() >= 200 && flood.closed_by_target() >= 100).then_some(()),
    );
    let refused_before_b = flood.closed_by_target();

    let b = start_with(db.path(), &["--bootstrap", &a.addrs[0]]);
    wait_for("b joins a during the flood", || {
        joined(&a, &b).then_some(())
    });
    assert!(
        flood.closed_by_target() > refused_before_b,
        "the flood went on while b joined"
    );
    // Not by luck between two connections of the flood: b's first dial
    // got through (without per-IP limits the flood holds every handshake
    // slot and b's dials are refused until a retry slips in).
    assert!(!a_dial_failed(&b), "a refused b's dial");

    // An idle connection holds its handshake slot for a while only: once
    // the flood stops opening new ones, a closes every one left.
    flood.stop_reopening();
    wait_for("a closes every idle connection", || {
        (flood.open_now() == 0).then_some(())
    });
}

/// Longer than Kademlia keeps dialling an unreachable peer by itself (its
/// bootstrap query and the automatic one 0.5 s after a change): a peer
/// that comes back later can be found again only by the node's bootstrap
/// schedule. Not an assertion: a slower machine only makes the tests
/// below prove less.
const KADEMLIA_GIVES_UP: Duration = Duration::from_secs(3);

/// A bootstrap peer that is down at start is dialled again until it
/// answers.
#[test]
fn a_node_started_before_its_bootstrap_peer_joins_it_when_it_comes_up() {
    let (da, db, etc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    // a's identity; then a is down.
    let a_peer = start(da.path()).peer;
    // Only the retries can help: no re-bootstrap for being alone.
    let config = etc.path().join("node.toml");
    std::fs::write(&config, "rebootstrap_after_secs = 3600\n").unwrap();
    let b = start_with(
        db.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--bootstrap",
            &format!("{listen}/p2p/{a_peer}"),
        ],
    );
    wait_for("b's dial of a fails", || a_dial_failed(&b).then_some(()));
    // Kademlia's own dials of its bootstrap peer come within a second of
    // the start, then it forgets the unreachable address: a comes up
    // after that, so that only the bootstrap schedule can find it.
    std::thread::sleep(KADEMLIA_GIVES_UP);

    // a comes up on that address; it knows nothing of b, so only b's
    // retries can bring them together.
    let a = start_with(da.path(), &["--listen", &listen]);
    assert_eq!(a.peer, a_peer);
    wait_for("b joins a", || joined(&a, &b).then_some(()));
}

/// A bootstrap list shipped in the config file, with a DNS name; and a
/// node that lost every peer dials its list again.
#[test]
fn a_dns_bootstrap_address_in_the_config_file_joins_and_is_dialled_again_when_alone() {
    let (da, db, etc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let port = free_port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let a = start_with(da.path(), &["--listen", &listen]);
    let config = etc.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "bootstrap = [\"/dns4/localhost/tcp/{port}/p2p/{}\"]\nrebootstrap_after_secs = 1\n",
            a.peer
        ),
    )
    .unwrap();
    let b = start_with(db.path(), &["--config", config.to_str().unwrap()]);
    wait_for("b joins a through /dns4/localhost", || {
        joined(&a, &b).then_some(())
    });

    // a goes down (kill -9) and comes back knowing nothing of b: b, alone,
    // dials its list again.
    drop(a);
    wait_for("b sees a gone", || peers(&b).is_empty().then_some(()));
    // Past Kademlia's own dials after a lost peer (see above).
    std::thread::sleep(KADEMLIA_GIVES_UP);
    let a = start_with(da.path(), &["--listen", &listen]);
    wait_for("b joins a again", || {
        peers(&a).contains(&b.peer).then_some(())
    });
}

/// Status, `WWW-Authenticate` and JSON body of a request to `url` with
/// `token` as a bearer token, or none.
fn call(method: &str, url: &str, token: Option<&str>) -> (u16, Option<String>, serde_json::Value) {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut answer = http().run(request.body(Vec::new()).unwrap()).unwrap();
    let challenge = answer
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = answer.body_mut().read_to_string().unwrap();
    (
        answer.status().as_u16(),
        challenge,
        serde_json::from_str(&text).unwrap(),
    )
}

/// Asserts that the API at `base` refuses requests without `token` or with
/// another one, and serves them with it.
fn requires(base: &str, token: &str) {
    let status = format!("{base}/v1/status");
    let gc = format!("{base}/v1/gc");
    for url in [&status, &gc] {
        let method = if url == &gc { "POST" } else { "GET" };
        for presented in [None, Some("0000000000000000000000000000000000")] {
            let (code, challenge, body) = call(method, url, presented);
            assert_eq!(
                (code, body["code"].as_str()),
                (401, Some("unauthorized")),
                "{url}"
            );
            assert_eq!(challenge.as_deref(), Some("Bearer realm=\"ipsr-node\""));
        }
        let (code, _, body) = call(method, url, Some(token));
        assert_eq!(code, 200, "{url}: {body}");
    }
}

/// An API bound off loopback (`0.0.0.0`, reached here through 127.0.0.1)
/// without a token file: the node creates `DATA_DIR/api-token` (mode 0600,
/// 64 hex digits), prints where it is, requires it of every request, and
/// keeps it across restarts.
#[test]
fn an_api_off_loopback_requires_the_token_the_node_created() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let any = format!("0.0.0.0:{port}");
    let node = start_with(dir.path(), &["--api", &any]);
    assert_eq!(node.api, format!("http://{any}"));
    let file = dir.path().join("api-token");
    assert_eq!(node.token_file.as_deref(), file.to_str());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    let base = format!("http://127.0.0.1:{port}");
    requires(&base, &token);

    // Reached by another name than loopback's (an operator's host name;
    // here the bound address itself): served with the token.
    let (code, _, _) = call(
        "GET",
        &format!("http://0.0.0.0:{port}/v1/status"),
        Some(&token),
    );
    assert_eq!(code, 200);

    drop(node);
    let again = start_with(dir.path(), &["--api", &any]);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        token,
        "the token is kept"
    );
    requires(&base, &token);
    drop(again);
}

/// A token file given on loopback (`--api-token-file`) is required there
/// too, and the data dir gets no
/// token of its own. A file that holds no token stops the start, naming it.
#[test]
fn a_token_file_given_on_loopback_is_required_and_a_bad_one_refused() {
    let (dir, etc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = etc.path().join("token");
    let token = "a-token-of-the-operator-s-choosing";
    std::fs::write(&file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let node = start_with(dir.path(), &["--api-token-file", file.to_str().unwrap()]);
    assert_eq!(node.token_file.as_deref(), file.to_str());
    requires(&node.api, token);
    assert!(!dir.path().join("api-token").exists());
    drop(node);

    // Without the file, loopback asks no token.
    let open = start(dir.path());
    assert_eq!(open.token_file, None);
    let (code, _, _) = call("GET", &format!("{}/v1/status", open.api), None);
    assert_eq!(code, 200);
    drop(open);

    std::fs::write(&file, "short\n").unwrap();
    let out = run_to_end(dir.path(), &["--api-token-file", file.to_str().unwrap()]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "API token file {} does not hold a token: it has 5 characters",
            file.display()
        )),
        "{stderr}"
    );
}
