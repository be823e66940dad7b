//! The gateway's F-Droid repository read by F-Droid's own tools: a gateway
//! process on loopback, APKs published to it with `ipsr-cli`, then
//! fdroidserver (`tests/fdroid/check.py`, in the virtual environment
//! `scripts/test.sh` prepares and names in `IPSR_FDROID_PYTHON`) verifies
//! `entry.jar` with `jarsigner` and the fingerprint, reads index-v2 and
//! index-v1, checks them against the client's required fields and
//! downloads every APK against its SHA-256; it refuses a wrong fingerprint
//! and a tampered `entry.jar`; Java's `JarFile` verifies both JARs under
//! the F-Droid client's rules; feedparser reads the Atom feeds. A yank
//! then drops the version, the timestamp grows, the diff from the earlier
//! index turns it into the new one (json-merge-patch), and a restart keeps
//! the key and the timestamp.

#![allow(clippy::unwrap_used)]

mod procs;

use std::path::{Path, PathBuf};
use std::process::Command;

use ipsr_testkit::{Proc, agent_with_timeout, wait_for};
use procs::{node_args, run_ok};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../cli/tests/fixtures/apk");

/// The Python with fdroidserver, or `None` (the test is skipped, said on
/// stderr) outside CI when `scripts/test.sh` did not prepare one.
fn python() -> Option<PathBuf> {
    match std::env::var_os("IPSR_FDROID_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("IPSR_FDROID_PYTHON is not set: run the tests with scripts/test.sh")
        }
        None => {
            eprintln!("skipped: no IPSR_FDROID_PYTHON (scripts/test.sh prepares fdroidserver)");
            None
        }
    }
}

/// A file of `tests/fdroid/`.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fdroid")
        .join(name)
}

/// Runs `check.py` on the repository at `url`, expecting `expect`
/// (`PACKAGE:CODE,CODE`); returns the timestamp it read.
fn check(python: &Path, url: &str, expect: &str) -> u64 {
    let out = run_ok(
        &format!("check.py {expect}"),
        Command::new(python)
            .arg(script("check.py"))
            .args([url, expect]),
    );
    let line: serde_json::Value = serde_json::from_str(&out).unwrap();
    line["timestamp"].as_u64().unwrap()
}

fn start(data: &Path, http: &str) -> (Proc, String, String, String) {
    let mut args = node_args(data);
    args.extend(["--http".into(), http.into()]);
    let gateway = Proc::spawn(Command::new(env!("CARGO_BIN_EXE_ipsr-gateway")).args(&args));
    let api = gateway.expect_line("api: ");
    let http = gateway.expect_line("gateway: ");
    let http = http.split_whitespace().next().unwrap().to_owned();
    let repo = gateway.expect_line("fdroid repo: ");
    (gateway, api, http, repo)
}

#[test]
fn fdroidserver_verifies_and_reads_the_repository() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gateway");
    let (gateway, api, http, repo) = start(&data, "127.0.0.1:0");
    assert!(
        repo.starts_with(&format!("{http}/fdroid/repo?fingerprint=")),
        "{repo}"
    );
    let config = dir.path().join("config");
    let cli = |args: &[&str]| procs::cli(&api, &config, args);
    let author = cli(&["key", "generate"]).trim().to_owned();
    // Two signed APKs of com.example.app: 1.5.0 (code 10), then 1.6.0
    // (code 11) signed with a rotated certificate.
    for (file, version) in [
        ("example-signed-1.5.0.apk", "1.5.0"),
        ("example-rotated-1.6.0.apk", "1.6.0"),
    ] {
        let path = format!("{FIXTURES}/{file}");
        cli(&[
            "publish",
            &path,
            "--package",
            "com.example.app",
            "--version",
            version,
        ]);
    }
    let agent = agent_with_timeout(std::time::Duration::from_secs(30));
    let index = || {
        let url = format!("{http}/fdroid/repo/index-v2.json");
        agent.get(url).call().ok()?.body_mut().read_to_string().ok()
    };
    wait_for("both versions in the index", || {
        let text = index()?;
        (text.contains("com.example.app_10.apk") && text.contains("com.example.app_11.apk"))
            .then_some(())
    });
    let t1 = check(&python, &repo, "com.example.app:11,10");

    // Java's JarFile, which the F-Droid client's index library verifies
    // with, under the library's rules (tests/fdroid/VerifyJar.java).
    let fingerprint = repo.split("fingerprint=").nth(1).unwrap();
    for (jar, entry) in [
        ("entry.jar", "entry.json"),
        ("index-v1.jar", "index-v1.json"),
    ] {
        let path = dir.path().join(jar);
        let mut response = agent
            .get(format!("{http}/fdroid/repo/{jar}"))
            .call()
            .unwrap();
        std::fs::write(&path, response.body_mut().read_to_vec().unwrap()).unwrap();
        run_ok(
            jar,
            Command::new("java")
                .arg(script("VerifyJar.java"))
                .arg(&path)
                .args([entry, fingerprint]),
        );
    }

    // The Atom feeds, read by feedparser.
    for (path, entries) in [
        ("/feeds/recent.atom".to_owned(), "2"),
        (format!("/feeds/{author}.atom"), "2"),
        (format!("/feeds/{author}/com.example.app.atom"), "2"),
    ] {
        run_ok(
            &path,
            Command::new(&python)
                .arg(script("check_feed.py"))
                .args([&format!("{http}{path}"), entries]),
        );
    }

    // A phone holding this index later follows the diff.
    let old = dir.path().join("old-index-v2.json");
    std::fs::write(&old, index().unwrap()).unwrap();
    let spec = format!("{author}/com.example.app@1.6.0");
    cli(&["yank", &spec, "--reason", "broken"]);
    wait_for("the yank in the index", || {
        (!index()?.contains("com.example.app_11.apk")).then_some(())
    });
    let t2 = check(&python, &repo, "com.example.app:10");
    assert!(t2 > t1, "the timestamp only grows: {t1} then {t2}");
    let named = run_ok(
        "check_diff.py",
        Command::new(&python)
            .arg(script("check_diff.py"))
            .arg(&old)
            .arg(&repo),
    );
    assert_eq!(named.trim(), "1", "the diff names the one package changed");

    // A restart (on the same address) keeps the key, so the same
    // fingerprint, and, what is listed being the same, the same timestamp.
    drop(gateway);
    let (_gateway, _, _, again) = start(&data, http.trim_start_matches("http://"));
    assert_eq!(again, repo);
    assert_eq!(check(&python, &again, "com.example.app:10"), t2);
}
