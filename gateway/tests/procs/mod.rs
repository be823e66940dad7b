//! Real processes for the gateway's end-to-end test and benchmark: the
//! workspace's binaries and the arguments of a node on loopback. Processes
//! (killed on drop) and bounded waits come from `ipsr-testkit`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// The workspace binary `name`, from the folder `cargo test --workspace`
/// builds it in (built here when missing).
pub fn binary(name: &str) -> PathBuf {
    ipsr_testnet::binaries().unwrap().join(name)
}

/// A gateway process (`--rate-limit 0` and `extra`) with its data dir in
/// `dir`; its HTTP base URL and its node's API URL. For benchmarks, which
/// measure it.
pub fn gateway(dir: &Path, extra: &[&str]) -> (ipsr_testkit::Proc, String, String) {
    let mut args = node_args(dir);
    args.extend(["--http", "127.0.0.1:0", "--rate-limit", "0"].map(String::from));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let proc = ipsr_testkit::Proc::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_ipsr-gateway")).args(&args),
    );
    let api = proc.expect_line("api: ");
    let http = proc.expect_line("gateway: ");
    let http = http.split_whitespace().next().unwrap().to_owned();
    (proc, http, api)
}

pub fn node_args(data: &Path) -> Vec<String> {
    vec![
        "--data-dir".into(),
        data.display().to_string(),
        "--listen".into(),
        "/ip4/127.0.0.1/tcp/0".into(),
        "--api".into(),
        "127.0.0.1:0".into(),
    ]
}

/// Adds the file `body` yields to the node whose API is at `api`
/// (`POST /v1/content` with `profile`), streamed, and returns its CID.
pub fn add_content(api: &str, body: impl std::io::Read + 'static, profile: &str) -> String {
    let mut response = ipsr_testkit::agent_with_timeout(std::time::Duration::from_secs(1800))
        .post(format!("{api}/v1/content?profile={profile}"))
        .header("content-type", "application/octet-stream")
        .send(ureq::SendBody::from_owned_reader(body))
        .unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    assert_eq!(response.status(), 200, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["cid"].as_str().unwrap().to_owned()
}

/// `GET url` with `Range: range`: the status, the `Content-Range` and the
/// body (at most 2 MiB).
pub fn get_range(agent: &ureq::Agent, url: &str, range: &str) -> (u16, String, Vec<u8>) {
    let mut response = agent.get(url).header("range", range).call().unwrap();
    let status = response.status().as_u16();
    let content_range = response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .body_mut()
        .with_config()
        .limit(2 << 20)
        .read_to_vec()
        .unwrap();
    (status, content_range, body)
}

/// The title of package `i` of [`fill_store`]: two words of a vocabulary
/// of 1,000, then `camera` for one package in 100 and `notes` for one in
/// 10 (searched for by the abuse test and the search benchmark).
pub fn bench_title(i: usize) -> String {
    let mut title = format!("w{} v{}", (i * 7919) % 1000, (i * 104_729) % 1000);
    if i.is_multiple_of(100) {
        title.push_str(" camera");
    }
    if i.is_multiple_of(10) {
        title.push_str(" notes");
    }
    title
}

/// Writes `n` packages (one release each, by 8 authors; package `i` is
/// `org.bench{i / 100}.app{i}` titled [`bench_title`]`(i)`) into the
/// store of the data dir `data`, before a node or gateway starts on it.
pub fn fill_store(data: &Path, n: usize) {
    fill_store_with(data, n, |_, r| r);
}

/// [`fill_store`], each release builder first passed through `edit` with
/// its index.
pub fn fill_store_with(
    data: &Path,
    n: usize,
    edit: impl Fn(usize, ipsr_testkit::ReleaseBuilder<'_>) -> ipsr_testkit::ReleaseBuilder<'_>,
) {
    std::fs::create_dir_all(data).unwrap();
    let store = ipsr_node::Store::open(&data.join("store.redb")).unwrap();
    let authors: Vec<_> = (1..=8).map(ipsr_testkit::key).collect();
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(5000) {
        let records = chunk
            .iter()
            .map(|&i| {
                let r = ipsr_testkit::release(&authors[i % 8], "1.0.0")
                    .package(&format!("org.bench{}.app{i}", i / 100))
                    .title(bench_title(i))
                    .cid(ipsr_testkit::cid(u32::try_from(i).unwrap()));
                edit(i, r).sign()
            })
            .collect();
        store.apply(records).unwrap();
    }
}

/// Runs `command` (stdin closed) and returns its standard output; panics
/// with its output when it fails, naming it `what`.
pub fn run_ok(what: &str, command: &mut std::process::Command) -> String {
    let out = command.stdin(std::process::Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ipsr-cli --node API ARGS`, with its keys in `config` (as
/// `XDG_CONFIG_HOME`) and no passphrase: its standard output, or a panic
/// with its error.
pub fn cli(api: &str, config: &Path, args: &[&str]) -> String {
    run_ok(
        &format!("ipsr-cli {args:?}"),
        std::process::Command::new(binary("ipsr-cli"))
            .args(["--node", api])
            .args(args)
            .env("XDG_CONFIG_HOME", config)
            .env_remove("IPSR_PASSPHRASE"),
    )
}
