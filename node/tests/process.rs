//! End-to-end tests of the `ipsr-node` binary as a user runs it.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the process when the test ends, also when it fails.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a node and reads its start-up lines: (peer id, listen addresses).
fn start(data_dir: &std::path::Path) -> (Guard, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipsr-node"))
        .args(["run", "--listen", "/ip4/127.0.0.1/tcp/0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = Guard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut peer, mut addrs) = (None, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    while addrs.is_empty() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the node prints its peer id and addresses");
        if let Some(p) = line.strip_prefix("peer id: ") {
            peer = Some(p.to_owned());
        } else if let Some(a) = line.strip_prefix("listening on: ") {
            addrs.push(a.to_owned());
        }
    }
    (guard, peer.unwrap(), addrs)
}

#[test]
fn starts_prints_its_identity_keeps_it_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, peer, addrs) = start(dir.path());
    assert!(addrs[0].starts_with("/ip4/127.0.0.1/tcp/"), "{addrs:?}");
    assert!(addrs[0].ends_with(&format!("/p2p/{peer}")));
    let mode = std::fs::metadata(dir.path().join("identity.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // SIGTERM: a clean, prompt exit with status 0.
    let pid = node.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");

    // Restarted, after a kill -9 too, it is the same node.
    let (node, again, _) = start(dir.path());
    assert_eq!(again, peer);
    drop(node); // SIGKILL
    let (_node, third, _) = start(dir.path());
    assert_eq!(third, peer);
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
        "IPSR_DATA_DIR",
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
