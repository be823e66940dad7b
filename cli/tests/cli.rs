//! Transcript tests of the `ipsr-cli` binary against a node started in this
//! process (`ipsr_node::spawn` + `serve_api` on 127.0.0.1:0, temp dirs),
//! and against gateways over that node (`ipsr_gateway::serve`), or a warp
//! server that lies. Everything stops when the test ends, also when it
//! fails (the runtime is dropped with the `Env`). Each transcript is what a
//! user types and sees.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use ipsr_gateway::{Gateway, GatewayConfig, Uploads};
use ipsr_testkit::pattern;
use snapbox::cmd::Command;
use snapbox::str;

/// A node, a config dir and a work dir for one test.
struct Env {
    api: String,
    node: ipsr_node::Client,
    config: tempfile::TempDir,
    work: tempfile::TempDir,
    _data: tempfile::TempDir,
    /// Owns the node, its API server and any gateway; dropping it stops them.
    runtime: tokio::runtime::Runtime,
}

impl Env {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let config = ipsr_node::Config::local(data.path().to_owned());
        let (node, api) = runtime.block_on(async {
            let node = ipsr_node::spawn(config).await.unwrap();
            let (addr, server) = ipsr_node::serve_api(node.clone(), "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            tokio::spawn(server);
            (node, format!("http://{addr}"))
        });
        Self {
            api,
            node,
            config: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
            _data: data,
            runtime,
        }
    }

    /// A gateway over this test's node (its embedded store as the index)
    /// taking uploads from `uploads`; returns its URL.
    fn gateway(&self, uploads: Uploads) -> String {
        let mut config = GatewayConfig::default();
        config.uploads = uploads;
        self.gateway_with(config)
    }

    /// A gateway over this test's node with `config`; returns its URL.
    fn gateway_with(&self, config: GatewayConfig) -> String {
        let index = Arc::new(ipsr_indexer::StoreIndex::new(self.node.store().clone()));
        let gateway = Gateway::new(self.node.clone(), index, config);
        self.runtime.block_on(async {
            let (addr, server) = ipsr_gateway::serve(gateway, "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            tokio::spawn(server);
            format!("http://{addr}")
        })
    }

    /// A "gateway" that answers every package and release with `package` and
    /// `release` (JSON) and every download with `bytes`; returns its URL.
    fn liar(&self, package: String, release: String, bytes: Vec<u8>) -> String {
        use warp::Filter;
        let json =
            |body: String| warp::reply::with_header(body, "content-type", "application/json");
        let package = warp::path!("api" / "v1" / "package" / String / String)
            .map(move |_: String, _: String| json(package.clone()));
        let release = warp::path!("api" / "v1" / "package" / String / String / String)
            .map(move |_: String, _: String, _: String| json(release.clone()));
        let download = warp::path!("api" / "v1" / "download" / String / String / String)
            .map(move |_: String, _: String, _: String| bytes.clone());
        let routes = package.or(release).or(download);
        self.runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(warp::serve(routes).incoming(listener).run());
            format!("http://{addr}")
        })
    }

    /// `GET` a JSON document of the node's API.
    fn node_json(&self, path: &str) -> serde_json::Value {
        let text = ureq::get(format!("{}{path}", self.api))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// `ipsr-cli ARGS` as a user in the work dir, with this test's node and keys.
    fn cli(&self, args: &[&str]) -> Command {
        Command::new(env!("CARGO_BIN_EXE_ipsr-cli"))
            .args(args)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("IPSR_NODE", &self.api)
            .env_remove("IPSR_PASSPHRASE")
            .current_dir(self.work.path())
            .timeout(std::time::Duration::from_secs(60))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn stdout(&self, args: &[&str]) -> String {
        let out = self.cli(args).assert().success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn key_generate_publish_info_download_yank() {
    let env = Env::new();

    // A new author key: the author id on stdout, the file 0600.
    let author = env.stdout(&["key", "generate"]).trim().to_owned();
    assert!(author.starts_with("k51qzi5uqu5d"), "{author}");
    let key_file = env.config.path().join("ipsr/keys/default.toml");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    env.cli(&["key", "generate"])
        .assert()
        .code(6)
        .stderr_eq(str![[r#"
error: a key named "default" already exists; choose another --name

"#]]);
    env.cli(&["key", "list"])
        .assert()
        .success()
        .stdout_eq(format!("default          {author}\n"));

    // Publish 1.0.0 and 1.1.0 (with metadata and an icon).
    let v1 = pattern(1, 2 * 1024 * 1024 + 17);
    let v11 = pattern(2, 300_000);
    env.write("app-1.0.0.bin", &v1);
    env.write("app-1.1.0.bin", &v11);
    env.write("icon.png", b"\x89PNG not really");
    env.write(
        "meta.toml",
        br#"title = "Example <b>App</b>"
summary = "An example"
description = "Line one.\nLine two."
license = "MIT"
homepage = "https://example.com"
categories = ["tools"]
min_sdk = 24
target_sdk = 34
permissions = ["android.permission.INTERNET"]
icon = "icon.png"
"#,
    );
    let spec1 = format!("{author}/com.example.app@1.0.0");
    env.cli(&[
        "publish",
        "app-1.0.0.bin",
        "--package",
        "com.example.app",
        "--version",
        "1.0.0",
    ])
    .assert()
    .success()
    .stdout_eq(format!(
        "{spec1}
cid:     bafybei[..]
size:    2097169 bytes, sha256 [..]
code:    1
record:  [..]
see:     ipsr-cli info {spec1}
         {api}/v1/packages/{author}/com.example.app/1.0.0
",
        api = env.api
    ));
    let published: serde_json::Value = serde_json::from_str(&env.stdout(&[
        "publish",
        "app-1.1.0.bin",
        "--package",
        "com.example.app",
        "--version",
        "1.1.0",
        "--metadata",
        "meta.toml",
        "--json",
    ]))
    .unwrap();
    assert_eq!(published["version_code"], 2);
    assert_eq!(published["change"], "new");
    let cid11 = published["cid"].as_str().unwrap().to_owned();

    // Not newer, already there, version code too low: exit 6.
    let publish = |file: &str, version: &str, extra: &[&str]| {
        let mut args = vec![
            "publish",
            file,
            "--package",
            "com.example.app",
            "--version",
            version,
        ];
        args.extend_from_slice(extra);
        env.cli(&args)
    };
    publish("app-1.0.0.bin", "1.1.0", &[])
        .assert()
        .code(6)
        .stderr_eq(format!(
            "error: {author}/com.example.app@1.1.0 is already published; publish a newer --version\n"
        ));
    publish("app-1.0.0.bin", "1.0.5", &[])
        .assert()
        .code(6)
        .stderr_eq(str![[r#"
error: --version 1.0.5 is not newer than 1.1.0, the last published version of com.example.app; use a higher version

"#]]);
    publish("app-1.0.0.bin", "1.2.0", &["--version-code", "2"])
        .assert()
        .code(6)
        .stderr_eq(str![[r#"
error: --version-code 2 is not higher than 2, the highest published for com.example.app; use 3 or more

"#]]);

    // info: the package, and one release with its record verified.
    env.cli(&["info", &format!("{author}/com.example.app")])
        .assert()
        .success()
        .stdout_eq(format!(
            "{author}/com.example.app
title:    Example <b>App</b>
summary:  An example
newest:   1.1.0
versions:
  1.1.0        code 2            300000 B  {cid11}
  1.0.0        code 1           2097169 B  bafybei[..]
"
        ));
    let info: serde_json::Value = serde_json::from_str(&env.stdout(&[
        "info",
        &format!("{author}/com.example.app@1.1.0"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(info["verified"], true);
    assert_eq!(info["metadata"]["min_sdk"], 24);
    assert!(
        info["metadata"]["icon"]
            .as_str()
            .unwrap()
            .starts_with("bafk")
    );

    // download: the newest, verified, written atomically, pinned.
    env.cli(&[
        "download",
        &format!("{author}/com.example.app"),
        "-o",
        "got.apk",
    ])
    .assert()
    .success()
    .stdout_eq(format!(
        "{author}/com.example.app@1.1.0
cid:     {cid11} (verified)
size:    300000 bytes, sha256 [..]
saved:   got.apk
"
    ));
    assert_eq!(std::fs::read(env.path("got.apk")).unwrap(), v11);
    let pins = ureq::get(format!("{}/v1/pins", env.api))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        pins.contains(&format!("{author}/com.example.app@1.1.0")),
        "{pins}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(env.work.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // verify: the right file passes, another fails with 4.
    env.cli(&[
        "verify",
        "got.apk",
        &format!("{author}/com.example.app@1.1.0"),
    ])
    .assert()
    .success();
    env.cli(&[
        "verify",
        "app-1.0.0.bin",
        &format!("{author}/com.example.app@1.1.0"),
    ])
    .assert()
    .code(4);

    // yank 1.1.0: download now picks 1.0.0, and so does @^1.
    env.cli(&[
        "yank",
        &format!("{author}/com.example.app@1.1.0"),
        "--reason",
        "crashes on start",
    ])
    .assert()
    .success()
    .stdout_eq(format!(
        "yanked {author}/com.example.app@1.1.0\nrecord: [..]\n"
    ));
    env.cli(&["download", &format!("{author}/com.example.app")])
        .assert()
        .success();
    assert_eq!(std::fs::read(env.path("app-1.0.0.bin")).unwrap(), v1);
    env.cli(&[
        "download",
        &format!("{author}/com.example.app@^1"),
        "-o",
        "caret.apk",
    ])
    .assert()
    .success();
    assert_eq!(std::fs::read(env.path("caret.apk")).unwrap(), v1);
    // An exact yanked version still downloads, with a warning.
    env.cli(&[
        "download",
        &format!("{author}/com.example.app@1.1.0"),
        "-o",
        "yanked.apk",
    ])
    .assert()
    .success()
    .stderr_eq(format!(
        "warning: {author}/com.example.app@1.1.0 is yanked: crashes on start\n"
    ));
    env.cli(&["download", &format!("{author}/com.example.app@^2")])
        .assert()
        .code(3)
        .stderr_eq(format!(
            "error: {author}/com.example.app: no non-yanked version matches ^2 (the node has 1.1.0 (yanked), 1.0.0)\n"
        ));
    env.cli(&["download", &format!("{author}/com.example.app@3.0.0")])
        .assert()
        .code(3);
    env.cli(&["download", &format!("{author}/org.example.none")])
        .assert()
        .code(3)
        .stderr_eq(format!(
            "error: {author}/org.example.none: not found on the node at {}\n",
            env.api
        ));
    assert!(!env.path("org.example.none").exists());

    // ls, status, peers.
    env.cli(&["ls", &author])
        .assert()
        .success()
        .stdout_eq(format!("{author}/com.example.app\n"));
    let status: serde_json::Value =
        serde_json::from_str(&env.stdout(&["status", "--json"])).unwrap();
    assert_eq!(status["releases"], 2);
    env.cli(&["peers"]).assert().success().stdout_eq(str![[r#"
no connected peers

"#]]);
}

#[test]
fn bad_input_is_refused_with_its_exit_code() {
    let env = Env::new();
    env.stdout(&["key", "generate"]);
    env.write("app.bin", b"app");

    // Usage (2): a bad package name, version, a missing file, metadata over a limit.
    env.cli(&[
        "publish",
        "app.bin",
        "--package",
        "nodots",
        "--version",
        "1.0.0",
    ])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: invalid value 'nodots' for '--package <PACKAGE>': [..]

For more information, try '--help'.

"#]]);
    env.cli(&[
        "publish",
        "app.bin",
        "--package",
        "com.example.app",
        "--version",
        "v1",
    ])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: invalid value 'v1' for '--version <VERSION>': [..]

For more information, try '--help'.

"#]]);
    env.cli(&[
        "publish",
        "missing.apk",
        "--package",
        "com.example.app",
        "--version",
        "1.0.0",
    ])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: FILE missing.apk: no such file

"#]]);
    env.write(
        "long.toml",
        format!("title = \"{}\"\n", "x".repeat(101)).as_bytes(),
    );
    env.cli(&[
        "publish",
        "app.bin",
        "--package",
        "com.example.app",
        "--version",
        "1.0.0",
        "--metadata",
        "long.toml",
    ])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: metadata.title is 101 bytes, over the 100-byte limit; fix it and publish again

"#]]);
    env.write("bad.json", br#"{"title": "x", "colour": "red"}"#);
    env.cli(&[
        "publish",
        "app.bin",
        "--package",
        "com.example.app",
        "--version",
        "1.0.0",
        "--metadata",
        "bad.json",
    ])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: --metadata bad.json: not valid metadata JSON: unknown field `colour`, [..]

"#]]);
    env.write("url.toml", b"homepage = \"javascript:alert(1)\"\n");
    env.cli(&[
        "publish",
        "app.bin",
        "--package",
        "com.example.app",
        "--version",
        "1.0.0",
        "--metadata",
        "url.toml",
    ])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: metadata.homepage_url: not an absolute http(s) URL; fix it and publish again

"#]]);
    env.cli(&["download", "not-an-author/com.example.app"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: invalid value 'not-an-author/com.example.app' for '<SPEC>': author: not a valid author id (expected a base36 name starting with k51)

For more information, try '--help'.

"#]]);

    // Not found (3): an unknown key.
    env.cli(&["publish", "app.bin", "--package", "com.example.app", "--version", "1.0.0", "--key", "nope"])
        .assert()
        .code(3)
        .stderr_eq(str![[r#"
error: no key named "nope" in [..]/ipsr/keys/nope.toml; create one with `ipsr-cli key generate --name nope` or import one with `ipsr-cli key import`

"#]]);

    // Node unreachable (5).
    env.cli(&["status", "--node", "http://127.0.0.1:1"])
        .assert()
        .code(5)
        .stderr_eq(str![[r#"
error: cannot reach the node at http://127.0.0.1:1 ([..]); start one with `ipsr-node run` or pass --node URL

"#]]);

    // Not supported (7): search on a node without the route (an older one:
    // here a server with no /v1/search at all).
    let old = env.liar(String::new(), String::new(), Vec::new());
    env.cli(&["search", "camera", "--node", &old])
        .assert()
        .code(7)
        .stderr_eq(format!(
            "error: the node at {old} has no search (an older ipsr-node); upgrade it, or search a gateway with --gateway URL\n"
        ));

    // yank with another author's key: usage.
    let other = ipsr_proto::AuthorKey::from_seed(&[3; 32]).author_id();
    env.cli(&[
        "yank",
        &format!("{other}/com.example.app@1.0.0"),
        "--reason",
        "x",
    ])
    .assert()
    .code(2);
}

#[test]
fn keys_import_export_and_passphrases() {
    let env = Env::new();

    // An OpenSSH ed25519 key: its author id is its public key.
    let pubkey = std::fs::read_to_string(fixture("id_ed25519.pub")).unwrap();
    let author = env
        .stdout(&[
            "key",
            "import",
            fixture("id_ed25519").to_str().unwrap(),
            "--name",
            "ssh",
        ])
        .trim()
        .to_owned();
    let exported = env.stdout(&["key", "export", "ssh", "--public"]);
    assert_eq!(
        exported.split_whitespace().nth(1),
        pubkey.split_whitespace().nth(1),
        "the exported OpenSSH public key is the imported one"
    );
    env.cli(&["key", "export", "ssh", "--public", "--format", "author-id"])
        .assert()
        .success()
        .stdout_eq(format!("{author}\n"));
    let shown: serde_json::Value =
        serde_json::from_str(&env.stdout(&["key", "show", "ssh", "--json"])).unwrap();
    assert_eq!(shown["author"], author.as_str());
    assert_eq!(shown["protected"], false);

    // An encrypted OpenSSH key needs its passphrase.
    let sealed = fixture("id_ed25519_sealed");
    env.cli(&["key", "import", sealed.to_str().unwrap(), "--name", "s"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: a passphrase is needed but there is no terminal to ask on; set IPSR_PASSPHRASE

"#]]);
    env.cli(&["key", "import", sealed.to_str().unwrap(), "--name", "s"])
        .env("IPSR_PASSPHRASE", "fixture pass")
        .assert()
        .success();
    env.cli(&[
        "key",
        "import",
        fixture("id_rsa").to_str().unwrap(),
        "--name",
        "rsa",
    ])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: [..]/id_rsa: a ssh-rsa key, but author keys are ed25519 (make one with ssh-keygen -t ed25519)

"#]]);

    // A passphrase-protected author key: publishing asks for it.
    env.cli(&["key", "generate", "--name", "locked", "--passphrase"])
        .env("IPSR_PASSPHRASE", "open sesame")
        .assert()
        .success();
    let text = std::fs::read_to_string(env.config.path().join("ipsr/keys/locked.toml")).unwrap();
    assert!(
        text.contains("[sealed]") && !text.contains("seed ="),
        "{text}"
    );
    env.write("app.bin", b"app bytes");
    let publish = [
        "publish",
        "app.bin",
        "--package",
        "com.example.locked",
        "--version",
        "1.0.0",
        "--key",
        "locked",
    ];
    env.cli(&publish)
        .env("IPSR_PASSPHRASE", "wrong")
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: wrong passphrase

"#]]);
    env.cli(&publish)
        .env("IPSR_PASSPHRASE", "open sesame")
        .assert()
        .success();
    env.cli(&["key", "list"])
        .assert()
        .success()
        .stdout_eq(str![[r#"
locked           k51qzi5uqu5d[..] (passphrase)
s                k51qzi5uqu5d[..]
ssh              k51qzi5uqu5d[..]

"#]]);
}

#[test]
fn add_matches_the_node_and_only_hash_needs_no_node() {
    let env = Env::new();
    let data = pattern(7, 1_500_000);
    env.write("blob.bin", &data);
    for v in ["0", "1"] {
        let stored = env.stdout(&["add", "blob.bin", "--cid-version", v]);
        let local = env
            .cli(&[
                "add",
                "blob.bin",
                "--only-hash",
                "--cid-version",
                v,
                "--node",
                "http://127.0.0.1:1",
            ])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        assert_eq!(stored, String::from_utf8(local).unwrap());
        assert!(
            stored.starts_with(if v == "0" { "Qm" } else { "bafybei" }),
            "{stored}"
        );
    }
}

#[test]
fn completions_print_a_script() {
    let env = Env::new();
    let bash = env.stdout(&["completions", "bash"]);
    assert!(bash.contains("ipsr-cli"), "{bash}");
}

/// Publishes, reads, searches, downloads and yanks through a gateway over
/// the test's node, as a user without a node of their own would:
///
/// ```text
///   ipsr-cli --gateway ──HTTP──▶ gateway (uploads: anyone) ──▶ node ◀── ipsr-cli --node
///   ipsr-cli --gateway ──HTTP──▶ gateway (uploads: off)    ──▶ (same node)
/// ```
#[test]
fn publish_and_read_through_a_gateway() {
    let env = Env::new();
    let gw = env.gateway(Uploads::Anyone);
    let author = env.stdout(&["key", "generate"]).trim().to_owned();
    let v1 = pattern(11, 1_200_000);
    let v11 = pattern(12, 70_000);
    env.write("app-1.0.0.bin", &v1);
    env.write("app-1.1.0.bin", &v11);
    env.write(
        "meta.toml",
        b"title = \"Example Camera\"\nsummary = \"Takes pictures\"\n",
    );

    // Publish: the file is hashed here and sent with the signed record; the
    // gateway's page is where to see it.
    let spec1 = format!("{author}/com.example.camera@1.0.0");
    env.cli(&[
        "--gateway",
        &gw,
        "publish",
        "app-1.0.0.bin",
        "--package",
        "com.example.camera",
        "--version",
        "1.0.0",
    ])
    .assert()
    .success()
    .stdout_eq(format!(
        "{spec1}
cid:     bafybei[..]
size:    1200000 bytes, sha256 [..]
code:    1
record:  [..]
see:     ipsr-cli info {spec1}
         {gw}/p/{author}/com.example.camera
"
    ));
    // The variable works as the flag does, and wins over no flag at all.
    let published: serde_json::Value = serde_json::from_slice(
        &env.cli(&[
            "publish",
            "app-1.1.0.bin",
            "--package",
            "com.example.camera",
            "--version",
            "1.1.0",
            "--metadata",
            "meta.toml",
            "--json",
        ])
        .env_remove("IPSR_NODE")
        .env("IPSR_GATEWAY", &gw)
        .assert()
        .success()
        .get_output()
        .stdout,
    )
    .unwrap();
    assert_eq!(published["change"], "new");
    assert_eq!(published["version_code"], 2);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&v11));
    assert_eq!(published["sha256"], sha.as_str());
    let cid11 = published["cid"].as_str().unwrap().to_owned();
    // The node behind the gateway holds the record and the bytes.
    assert_eq!(
        env.node_json(&format!("/v1/packages/{author}/com.example.camera"))["newest"],
        "1.1.0"
    );
    let stat = env.node_json(&format!("/v1/content/{cid11}/stat"));
    assert_eq!(stat["complete"], true, "{stat}");

    // A gateway takes one file per release: no icons through it.
    env.write("icon.png", b"\x89PNG not really");
    env.write("icon.toml", b"icon = \"icon.png\"\n");
    env.cli(&[
        "--gateway",
        &gw,
        "publish",
        "app-1.1.0.bin",
        "--package",
        "com.example.camera",
        "--version",
        "1.2.0",
        "--metadata",
        "icon.toml",
    ])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: a gateway takes one file per release, so the metadata's icon and screenshots cannot go through it; publish through your node (--node URL), or leave them out

"#]]);

    // info, ls and search read the gateway's JSON API; records verified here.
    env.cli(&[
        "--gateway",
        &gw,
        "info",
        &format!("{author}/com.example.camera"),
    ])
    .assert()
    .success()
    .stdout_eq(format!(
        "{author}/com.example.camera
title:    Example Camera
summary:  Takes pictures
newest:   1.1.0
versions:
  1.1.0        code 2             70000 B  {cid11}
  1.0.0        code 1           1200000 B  bafybei[..]
"
    ));
    let info: serde_json::Value = serde_json::from_str(&env.stdout(&[
        "--gateway",
        &gw,
        "info",
        &format!("{author}/com.example.camera@1.1.0"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(info["verified"], true);
    assert_eq!(info["metadata"]["title"], "Example Camera");
    env.cli(&["--gateway", &gw, "ls", &author])
        .assert()
        .success()
        .stdout_eq(format!("{author}/com.example.camera\n"));
    let stranger = ipsr_proto::AuthorKey::from_seed(&[5; 32]).author_id();
    env.cli(&["--gateway", &gw, "ls", &stranger.to_string()])
        .assert()
        .success()
        .stdout_eq(format!("the gateway knows no packages of {stranger}\n"));
    let hit = format!("{author}/com.example.camera  1.1.0  Example Camera\n");
    env.cli(&["--gateway", &gw, "search", "camera"])
        .assert()
        .success()
        .stdout_eq(hit.clone());
    // The node ranks by the same rules.
    env.cli(&["search", "cam"])
        .assert()
        .success()
        .stdout_eq(hit);
    let found: serde_json::Value =
        serde_json::from_str(&env.stdout(&["--gateway", &gw, "search", "camera", "--json"]))
            .unwrap();
    assert_eq!(found["packages"][0]["summary"], "Takes pictures");
    env.cli(&["--gateway", &gw, "search", "zebra"])
        .assert()
        .success()
        .stdout_eq(str![[r#"
nothing matches "zebra"

"#]]);

    // download and verify: the bytes from the gateway, checked here.
    let downloaded: serde_json::Value = serde_json::from_str(&env.stdout(&[
        "--gateway",
        &gw,
        "download",
        &format!("{author}/com.example.camera"),
        "-o",
        "got.apk",
        "--json",
    ]))
    .unwrap();
    assert_eq!(downloaded["version"], "1.1.0");
    assert_eq!(
        downloaded["pinned"], false,
        "a gateway pins nothing of ours"
    );
    assert_eq!(std::fs::read(env.path("got.apk")).unwrap(), v11);
    env.cli(&[
        "--gateway",
        &gw,
        "verify",
        "got.apk",
        &format!("{author}/com.example.camera@1.1.0"),
    ])
    .assert()
    .success();

    // yank through the gateway: the next download is 1.0.0.
    env.cli(&[
        "--gateway",
        &gw,
        "yank",
        &format!("{author}/com.example.camera@1.1.0"),
        "--reason",
        "blurry",
    ])
    .assert()
    .success()
    .stdout_eq(format!(
        "yanked {author}/com.example.camera@1.1.0\nrecord: [..]\n"
    ));
    env.cli(&[
        "--gateway",
        &gw,
        "download",
        &format!("{author}/com.example.camera"),
    ])
    .assert()
    .success()
    .stdout_eq(format!(
        "{spec1}
cid:     bafybei[..] (verified)
size:    1200000 bytes, sha256 [..]
saved:   app-1.0.0.bin
"
    ));
    assert_eq!(std::fs::read(env.path("app-1.0.0.bin")).unwrap(), v1);

    // status is the gateway's health; peers and add need a node.
    env.cli(&["--gateway", &gw, "status"])
        .assert()
        .success()
        .stdout_eq(format!(
            "gateway:   {gw}\nstatus:    ok\npeer id:   12D3KooW[..]\npeers:     0\n"
        ));
    env.cli(&["--gateway", &gw, "peers"])
        .assert()
        .code(7)
        .stderr_eq(str![[r#"
error: peers needs a node: a gateway does not offer it; run one with `ipsr-node run` and pass --node URL instead of --gateway

"#]]);
    env.cli(&["--gateway", &gw, "add", "got.apk"])
        .assert()
        .code(7);
    env.cli(&["--gateway", &gw, "--node", &env.api, "status"])
        .assert()
        .code(2);
    env.cli(&["--gateway", "http://127.0.0.1:1", "status"])
        .assert()
        .code(5)
        .stderr_eq(str![[r#"
error: cannot reach the gateway at http://127.0.0.1:1 ([..]); check the URL given with --gateway or IPSR_GATEWAY

"#]]);

    // A gateway that takes no uploads from this author: exit 7, nothing stored.
    let closed = env.gateway(Uploads::Off);
    env.cli(&[
        "--gateway",
        &closed,
        "publish",
        "app-1.0.0.bin",
        "--package",
        "com.example.camera",
        "--version",
        "2.0.0",
    ])
    .assert()
    .code(7)
    .stderr_eq(format!(
        "error: {author}/com.example.camera@2.0.0: the gateway at {closed} takes no uploads from this author; publish through your own node (--node) or ask the gateway's operator to allow your author id\n"
    ));
    // A file over the gateway's upload limit: a usage error (2).
    let mut small = GatewayConfig::default();
    small.uploads = Uploads::Anyone;
    small.max_upload_bytes = 1000;
    let small = env.gateway_with(small);
    env.cli(&[
        "--gateway",
        &small,
        "publish",
        "app-1.0.0.bin",
        "--package",
        "com.example.camera",
        "--version",
        "2.0.0",
    ])
    .assert()
    .code(2)
    .stderr_eq(format!(
        "error: {author}/com.example.camera@2.0.0: the gateway at {small} refused it as too large: the request body is over the 1000-byte limit; publish through your own node (--node)\n"
    ));
    let versions = env.node_json(&format!("/v1/packages/{author}/com.example.camera"));
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
}

/// A gateway is not trusted: a release view with a broken record, a view
/// that differs from its record, and bytes that are not the signed ones
/// all fail with 4, and nothing is written.
#[test]
fn a_lying_gateway_is_caught() {
    let env = Env::new();
    let author = env.stdout(&["key", "generate"]).trim().to_owned();
    let bytes = pattern(21, 100_000);
    env.write("app.bin", &bytes);
    env.stdout(&[
        "publish",
        "app.bin",
        "--package",
        "com.example.app",
        "--version",
        "1.0.0",
    ]);
    let package = env.node_json(&format!("/v1/packages/{author}/com.example.app"));
    let release = env.node_json(&format!("/v1/packages/{author}/com.example.app/1.0.0"));
    let spec = format!("{author}/com.example.app@1.0.0");

    // The signed record with one byte changed.
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut record = b64.decode(release["record"].as_str().unwrap()).unwrap();
    *record.last_mut().unwrap() ^= 1;
    let mut forged = release.clone();
    forged["record"] = b64.encode(&record).into();
    let liar = env.liar(package.to_string(), forged.to_string(), bytes.clone());
    env.cli(&["--gateway", &liar, "info", &spec])
        .assert()
        .code(4)
        .stderr_eq(format!("error: {spec}: the record does not verify: [..]\n"));

    // The genuine record, but a view that says something else.
    let mut retitled = release.clone();
    retitled["metadata"]["title"] = "Totally Legit Bank".into();
    let liar = env.liar(package.to_string(), retitled.to_string(), bytes.clone());
    env.cli(&["--gateway", &liar, "info", &spec, "--json"])
        .assert()
        .code(4)
        .stdout_eq("")
        .stderr_eq(format!(
            "error: {spec}: the metadata the gateway shows is not what the signed record says\n"
        ));

    // The genuine views, other bytes of the same length.
    let mut evil = bytes.clone();
    evil[500] ^= 0xff;
    let liar = env.liar(package.to_string(), release.to_string(), evil);
    env.cli(&["--gateway", &liar, "download", &spec, "-o", "evil.apk"])
        .assert()
        .code(4)
        .stderr_eq(str![[r#"
error: content [..]: the bytes received (100000 bytes) hash to [..], not to the signed CID; nothing was written to evil.apk

"#]]);
    assert!(!env.path("evil.apk").exists());
    // Nor does verify believe it: the local file is checked against the record.
    env.cli(&["--gateway", &liar, "verify", "app.bin", &spec])
        .assert()
        .success();
}

#[test]
fn publish_checks_an_apk_against_its_manifest() {
    let env = Env::new();
    let author = env.stdout(&["key", "generate"]).trim().to_owned();
    let apk = |name: &str| {
        let bytes = std::fs::read(fixture("apk").join(name)).unwrap();
        env.write(name, &bytes);
    };
    apk("example-1.2.0.apk"); // com.example.app, versionName 1.2.0, versionCode 7, SDK 21..34
    apk("example-1.3.apk"); // the same package, versionName "1.3", versionCode 8
    let publish = |file: &str, package: &str, version: &str, extra: &[&str]| {
        let mut args = vec!["publish", file, "--package", package, "--version", version];
        args.extend_from_slice(extra);
        env.cli(&args)
    };

    // Each flag that disagrees with the manifest: exit 2, naming the field.
    publish("example-1.2.0.apk", "com.example.other", "1.2.0", &[])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: example-1.2.0.apk: the manifest's package is com.example.app, but --package is com.example.other; make them agree and publish again

"#]]);
    publish("example-1.2.0.apk", "com.example.app", "1.2.1", &[])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: example-1.2.0.apk: the manifest's versionName is 1.2.0, but --version is 1.2.1; make them agree and publish again

"#]]);
    publish(
        "example-1.2.0.apk",
        "com.example.app",
        "1.2.0",
        &["--version-code", "9"],
    )
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: example-1.2.0.apk: the manifest's versionCode is 7, but --version-code is 9; make them agree and publish again

"#]]);
    env.write("meta.toml", b"title = \"Example\"\nmin_sdk = 26\n");
    publish(
        "example-1.2.0.apk",
        "com.example.app",
        "1.2.0",
        &["--metadata", "meta.toml"],
    )
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: example-1.2.0.apk: the manifest's minSdkVersion is 21, but the metadata's min_sdk is 26; make them agree and publish again

"#]]);
    // Not an APK at all, and a cut one.
    env.write("fake.apk", &pattern(5, 4096));
    publish("fake.apk", "com.example.app", "1.2.0", &[])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: fake.apk: not a readable APK ([..]); publish a valid APK, or a file not named *.apk

"#]]);
    let real = std::fs::read(env.path("example-1.2.0.apk")).unwrap();
    env.write("cut.apk", &real[..real.len() / 2]);
    publish("cut.apk", "com.example.app", "1.2.0", &[])
        .assert()
        .code(2)
        .stderr_eq("error: cut.apk: not a readable APK ([..]); publish a valid APK, or a file not named *.apk\n");
    // None of that reached the node.
    env.cli(&["info", &format!("{author}/com.example.app")])
        .assert()
        .code(3);

    // Agreeing flags: the version code and the SDKs come from the manifest.
    let spec = format!("{author}/com.example.app@1.2.0");
    publish("example-1.2.0.apk", "com.example.app", "1.2.0", &[])
        .assert()
        .success()
        .stdout_eq(format!(
            "{spec}
cid:     bafkrei[..]
size:    {size} bytes, sha256 [..]
code:    7
apk:     com.example.app, versionCode 7, versionName 1.2.0, SDK 21..34
record:  [..]
see:     ipsr-cli info {spec}
         {api}/v1/packages/{author}/com.example.app/1.2.0
",
            size = real.len(),
            api = env.api
        ));
    let info: serde_json::Value =
        serde_json::from_str(&env.stdout(&["info", &spec, "--json"])).unwrap();
    assert_eq!(info["version_code"], 7, "{info}");
    assert_eq!(info["platform"], "android", "{info}");
    assert_eq!(info["metadata"]["min_sdk"], 21, "{info}");
    assert_eq!(info["metadata"]["target_sdk"], 34, "{info}");

    // A versionName that is not SemVer is noted and not compared; the JSON
    // output carries the manifest.
    let out = publish("example-1.3.apk", "com.example.app", "1.3.0", &["--json"])
        .assert()
        .success()
        .stderr_eq(str![[r#"
note: example-1.3.apk: the manifest's versionName "1.3" is not a SemVer version, so it was not compared with --version 1.3.0

"#]]);
    let published: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(published["version_code"], 8);
    assert_eq!(
        published["apk"],
        serde_json::json!({
            "package": "com.example.app",
            "version_code": 8,
            "version_name": "1.3",
            "min_sdk": 21,
            "target_sdk": 34,
            "signing_cert_sha256": null
        })
    );

    // An APK whose versionCode is not above the published ones.
    apk("example-1.4.0-code5.apk");
    publish("example-1.4.0-code5.apk", "com.example.app", "1.4.0", &[])
        .assert()
        .code(6)
        .stderr_eq(str![[r#"
error: the APK's versionCode 5 is not higher than 8, the highest published for com.example.app; build the APK with 9 or more

"#]]);

    // A signed APK: its certificate's SHA-256 goes into the signed record.
    apk("example-signed-1.5.0.apk"); // versionCode 10
    let cert =
        std::fs::read_to_string(fixture("apk/example-signed-1.5.0.apk.cert-sha256")).unwrap();
    let cert = cert.trim();
    env.write(
        "wrong-cert.toml",
        format!("signing_cert_sha256 = \"{}\"\n", "ab".repeat(32)).as_bytes(),
    );
    publish(
        "example-signed-1.5.0.apk",
        "com.example.app",
        "1.5.0",
        &["--metadata", "wrong-cert.toml"],
    )
    .assert()
    .code(2)
    .stderr_eq(format!(
        "error: example-signed-1.5.0.apk: the manifest's signing certificate SHA-256 is {cert}, but the metadata's signing_cert_sha256 is {}; make them agree and publish again\n",
        "ab".repeat(32)
    ));
    publish("example-signed-1.5.0.apk", "com.example.app", "1.5.0", &[])
        .assert()
        .success()
        .stdout_eq(format!(
            "{author}/com.example.app@1.5.0
cid:     bafkrei[..]
size:    [..] bytes, sha256 [..]
code:    10
apk:     com.example.app, versionCode 10, versionName 1.5.0, SDK 21..34, signed by certificate {cert}
[..]
[..]
[..]
"
        ));
    let info: serde_json::Value = serde_json::from_str(&env.stdout(&[
        "info",
        &format!("{author}/com.example.app@1.5.0"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(info["metadata"]["signing_cert_sha256"], cert, "{info}");
}
