//! Through a node: keys, publish, info, download, yank, add, completions,
//! and bad input with its exit codes.

use ipsr_testkit::pattern;
use snapbox::str;

use crate::common::Env;

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
        .stdout_eq(format!(
            "default          {author}\ndefault-recovery k51qzi5uqu5d[..]\n"
        ));

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
size:    2.0 MiB (2097169 bytes), sha256 [..]
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
    // The file's SHA-256 is signed into the record: the node lists it.
    let listed = env.node_json(&format!("/v1/packages/{author}/com.example.app/1.1.0"));
    assert_eq!(listed["sha256"], published["sha256"]);
    assert_eq!(
        published["sha256"].as_str().unwrap(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            std::fs::read(env.path("app-1.1.0.bin")).unwrap()
        ))
    );
    let cid11 = published["cid"].as_str().unwrap().to_owned();

    // Not newer, already there, version code too low: exit 6.
    let publish = |file: &str, version: &str, extra: &[&str]| env.publish_app(file, version, extra);
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
  1.1.0        code 2       293.0 KiB  {cid11}
  1.0.0        code 1         2.0 MiB  bafybei[..]
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
size:    293.0 KiB (300000 bytes), sha256 [..]
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
    let publish_app = |file: &str, extra: &[&str]| env.publish_app(file, "1.0.0", extra);
    publish_app("missing.apk", &[])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: FILE missing.apk: no such file

"#]]);
    env.write(
        "long.toml",
        format!("title = \"{}\"\n", "x".repeat(101)).as_bytes(),
    );
    publish_app("app.bin", &["--metadata", "long.toml"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: metadata.title is 101 bytes, over the 100-byte limit; fix it and publish again

"#]]);
    // Text that would show other than it reads: a bidi override in the
    // title, a zero width space in the file name. Refused before the key is
    // asked for or anything is uploaded.
    env.write("bidi.toml", br#"title = "Notes\u202Ekpa.exe""#);
    publish_app("app.bin", &["--metadata", "bidi.toml"])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: metadata.title contains U+202E, an invisible or bidirectional formatting character; fix it and publish again

"#]]);
    env.write("app.apk\u{200B}", b"app bytes");
    publish_app("app.apk\u{200B}", &[])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: file_name contains U+200B, an invisible or bidirectional formatting character; fix it and publish again

"#]]);
    env.write("bad.json", br#"{"title": "x", "colour": "red"}"#);
    publish_app("app.bin", &["--metadata", "bad.json"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: --metadata bad.json: not valid metadata JSON: unknown field `colour`, [..]

"#]]);
    env.write("url.toml", b"homepage = \"javascript:alert(1)\"\n");
    publish_app("app.bin", &["--metadata", "url.toml"])
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

/// A node whose API requires its token (as one bound off loopback does):
/// the CLI sends it from `--node-token-file`, `IPSR_NODE_TOKEN_FILE` or
/// `IPSR_NODE_TOKEN`, with reads and uploads alike. Without one, the node's
/// refusal is a usage error that says what to pass; a wrong one is a
/// failure.
#[test]
fn a_node_that_requires_its_token_is_sent_it() {
    const TOKEN: &str = "cli-test-token-5e0b8f2a9d17c4e3";
    let env = Env::with_token(TOKEN);
    let file = env.write("api-token", format!("{TOKEN}\n").as_bytes());
    let file = file.to_str().unwrap();
    env.cli(&["status"]).assert().code(2).stderr_eq(
        "error: status: the node at [..] requires its API token (this node's API requires \
         its token: send Authorization: Bearer TOKEN, with the token from the node's API \
         token file); pass --node-token-file FILE, or set IPSR_NODE_TOKEN_FILE or \
         IPSR_NODE_TOKEN\n",
    );
    let peer = env.node.peer_id().to_string();
    for status in [
        env.cli(&["--json", "--node-token-file", "api-token", "status"]),
        env.cli(&["--json", "status"])
            .env("IPSR_NODE_TOKEN_FILE", file),
        env.cli(&["--json", "status"]).env("IPSR_NODE_TOKEN", TOKEN),
    ] {
        let out = status.assert().success();
        let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(json["peer_id"], peer.as_str());
    }
    // An upload (a streamed POST) carries it too.
    env.write("app.bin", &pattern(9, 100_000));
    let added = env
        .cli(&["--json", "add", "app.bin"])
        .env("IPSR_NODE_TOKEN", TOKEN)
        .assert()
        .success();
    let added: serde_json::Value = serde_json::from_slice(&added.get_output().stdout).unwrap();
    assert!(
        added["cid"].as_str().unwrap().starts_with("bafk"),
        "{added}"
    );

    env.cli(&["status"])
        .env("IPSR_NODE_TOKEN", "not-the-token-at-all")
        .assert()
        .code(1)
        .stderr_eq(
            "error: status: the node at [..] refused the API token (the Authorization header \
             does not carry this node's API token); check the token file (the node's is \
             DATA_DIR/api-token)\n",
        );
    env.cli(&["status"])
        .env("IPSR_NODE_TOKEN", TOKEN)
        .env("IPSR_NODE_TOKEN_FILE", file)
        .assert()
        .code(2)
        .stderr_eq("error: IPSR_NODE_TOKEN_FILE and IPSR_NODE_TOKEN are both set; unset one\n");
    env.cli(&["--node-token-file", "missing", "status"])
        .assert()
        .code(2)
        .stderr_eq("error: --node-token-file missing: no such file\n");
    // The node's token is for the node: never with a gateway.
    let gateway = env.gateway(ipsr_gateway::Uploads::Off);
    env.cli(&[
        "--gateway",
        &gateway,
        "--node-token-file",
        "api-token",
        "status",
    ])
    .assert()
    .code(2);
}
