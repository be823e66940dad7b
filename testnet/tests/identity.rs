//! The story of a stolen signer key on a real testnet (`docs/records.md`,
//! section 10): three `ipsr-node` processes and a gateway on its own
//! `redis-server`, driven by the `ipsr-cli` binary as an author and a thief
//! would type it, against different nodes. Every process is stopped when
//! the test ends, also when it fails.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use ipsr_testkit::{RedisServer, TIMEOUT, agent, free_base_port, free_port, pattern, poll};
use ipsr_testnet::{Testnet, binaries};

const NODES: usize = 3;

/// `ipsr-cli ARGS` against `api`, with the keys in `config`; its stdout.
fn cli(bin: &Path, config: &Path, work: &Path, api: &str, args: &[&str]) -> String {
    let out = Command::new(bin.join("ipsr-cli"))
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .env("IPSR_NODE", api)
        .env_remove("IPSR_GATEWAY")
        .env_remove("IPSR_NODE_TOKEN")
        .env_remove("IPSR_NODE_TOKEN_FILE")
        .env_remove("IPSR_PASSPHRASE")
        .current_dir(work)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ipsr-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn get(url: &str) -> Option<String> {
    let mut res = agent().get(url).call().ok()?;
    (res.status() == 200).then(|| res.body_mut().read_to_string().ok())?
}

fn json(url: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&get(url)?).ok()
}

/// Waits until `check` holds on every node, and on the gateway's JSON.
fn everywhere(net: &Testnet, what: &str, check: impl Fn(&serde_json::Value) -> bool, path: &str) {
    let mut urls: Vec<String> = (1..=NODES)
        .map(|i| format!("{}/v1/packages/{path}", net.api(&i.to_string())))
        .collect();
    urls.push(format!("{}/api/v1/package/{path}", net.http()));
    for url in urls {
        let ok = poll(TIMEOUT, || json(&url).filter(|v| check(v)).map(|_| ()));
        assert!(ok.is_some(), "{what}: {url} says {:?}", json(&url));
    }
}

#[test]
fn a_stolen_signer_key_is_revoked_on_every_node_and_the_gateway() {
    let run = tempfile::tempdir().unwrap();
    let base = free_base_port(NODES as u16 + 1).expect("a free port range");
    let redis = RedisServer::start(free_port());
    let bin = binaries().unwrap_or_else(|e| panic!("{e}"));
    let net = Testnet::up(run.path(), NODES, base, Some(&redis.url()), &bin)
        .unwrap_or_else(|e| panic!("{e}"));
    let (author_dir, thief_dir, work) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (api1, api2, api3) = (net.api("1"), net.api("2"), net.api("3"));
    let author = |api: &str, args: &[&str]| cli(&bin, author_dir.path(), work.path(), api, args);
    let thief = |api: &str, args: &[&str]| cli(&bin, thief_dir.path(), work.path(), api, args);

    // The author: main (with main-recovery) and laptop; laptop signs.
    let main = author(&api1, &["key", "generate", "--name", "main"])
        .trim()
        .to_owned();
    author(
        &api1,
        &["key", "generate", "--name", "laptop", "--no-recovery"],
    );
    author(
        &api1,
        &[
            "identity",
            "update",
            "--key",
            "main",
            "--add-signer",
            "laptop",
            "--remove-signer",
            "main",
        ],
    );
    std::fs::write(work.path().join("app-1.bin"), pattern(1, 300_000)).unwrap();
    std::fs::write(work.path().join("app-9.bin"), pattern(9, 1000)).unwrap();
    let publish = |who: &dyn Fn(&str, &[&str]) -> String,
                   api: &str,
                   file: &str,
                   version: &str,
                   extra: &[&str]| {
        let mut args = vec![
            "publish",
            file,
            "--package",
            "com.example.app",
            "--version",
            version,
            "--author",
            &main,
            "--key",
            "laptop",
        ];
        args.extend_from_slice(extra);
        who(api, &args)
    };
    publish(&author, &api1, "app-1.bin", "1.0.0", &[]);
    let app = format!("{main}/com.example.app");
    everywhere(&net, "1.0.0 published", |v| v["newest"] == "1.0.0", &app);

    // The thief copied laptop's key file and works through node 2.
    std::fs::create_dir_all(thief_dir.path().join("ipsr/keys")).unwrap();
    std::fs::copy(
        author_dir.path().join("ipsr/keys/laptop.toml"),
        thief_dir.path().join("ipsr/keys/laptop.toml"),
    )
    .unwrap();
    publish(
        &thief,
        &api2,
        "app-9.bin",
        "9.9.9",
        &["--version-code", "18446744073709551615"],
    );
    thief(
        &api2,
        &[
            "yank",
            &format!("{app}@1.0.0"),
            "--reason",
            "gone",
            "--key",
            "laptop",
        ],
    );
    everywhere(&net, "the thief's 9.9.9", |v| v["newest"] == "9.9.9", &app);

    // The author, with the recovery key, through node 3: laptop out, phone
    // in, 1.0.0 re-signed.
    author(
        &api3,
        &["key", "generate", "--name", "phone", "--no-recovery"],
    );
    author(
        &api3,
        &[
            "identity",
            "update",
            "--author",
            &main,
            "--key",
            "main-recovery",
            "--remove-signer",
            "laptop",
            "--add-signer",
            "phone",
        ],
    );
    author(
        &api3,
        &["resign", &format!("{app}@1.0.0"), "--key", "phone"],
    );
    let only_1 = |v: &serde_json::Value| {
        v["newest"] == "1.0.0"
            && v["versions"].as_array().is_some_and(|list| {
                list.len() == 1 && list[0]["version"] == "1.0.0" && list[0]["yanked"] == false
            })
    };
    everywhere(&net, "1.0.0 again, 9.9.9 nowhere", only_1, &app);
    let page = get(&format!("{}/p/{app}", net.http())).unwrap();
    assert!(page.contains("1.0.0") && !page.contains("9.9.9"));
    author(&api2, &["download", &app, "-o", "got.bin"]);
    assert_eq!(
        std::fs::read(work.path().join("got.bin")).unwrap(),
        pattern(1, 300_000)
    );
    // The author id never changed.
    let shown: serde_json::Value =
        serde_json::from_str(&author(&api1, &["identity", "show", &main, "--json"])).unwrap();
    assert_eq!(shown["author"], main.as_str());

    // Two of three maintainers: one signature is held but served by no one;
    // with two, 2.0.0 is current everywhere.
    for name in ["tablet", "desk"] {
        author(&api1, &["key", "generate", "--name", name, "--no-recovery"]);
    }
    author(
        &api1,
        &[
            "identity",
            "update",
            "--author",
            &main,
            "--key",
            "main",
            "--add-signer",
            "tablet",
            "--add-signer",
            "desk",
            "--threshold",
            "2",
        ],
    );
    author(
        &api1,
        &["resign", &format!("{app}@1.0.0"), "--key", "tablet"],
    );
    std::fs::write(work.path().join("app-2.bin"), pattern(2, 2000)).unwrap();
    let publish2 = |extra: &[&str]| {
        let mut args = vec![
            "publish",
            "app-2.bin",
            "--package",
            "com.example.app",
            "--version",
            "2.0.0",
            "--author",
            &main,
            "--key",
            "phone",
        ];
        args.extend_from_slice(extra);
        author(&api1, &args)
    };
    publish2(&[]);
    everywhere(&net, "1.0.0 still newest", |v| v["newest"] == "1.0.0", &app);
    publish2(&["--out", "2.rec"]);
    author(&api1, &["sign", "2.rec", "--key", "desk"]);
    author(&api3, &["post", "2.rec"]);
    everywhere(
        &net,
        "2.0.0 with two signatures",
        |v| v["newest"] == "2.0.0",
        &app,
    );
    let release = json(&format!("{}/api/v1/package/{app}/2.0.0", net.http())).unwrap();
    assert_eq!(release["signatures"]["signed"], 2);
    drop(net);
}
