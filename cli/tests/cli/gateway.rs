//! Through gateways instead of a node, and a gateway that lies.

use base64::Engine;
use ipsr_gateway::{GatewayConfig, Uploads};
use ipsr_testkit::pattern;
use snapbox::str;

use crate::common::Env;

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
size:    1.1 MiB (1200000 bytes), sha256 [..]
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
  1.1.0        code 2        68.4 KiB  {cid11}
  1.0.0        code 1         1.1 MiB  bafybei[..]
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
size:    1.1 MiB (1200000 bytes), sha256 [..]
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
    small.max_upload_bytes = 100_000;
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
        "error: {author}/com.example.camera@2.0.0: the gateway at {small} refused it as too large: the request body is over the limit of 97.7 KiB (100000 bytes); publish through your own node (--node)\n"
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
    // With --json, stdout holds the error alone, none of the view.
    env.cli(&["--gateway", &liar, "info", &spec, "--json"])
        .assert()
        .code(4)
        .stdout_eq(format!(
            "{}\n",
            serde_json::json!({"error": {
                "kind": "verification",
                "exit_code": 4,
                "message": format!("{spec}: the metadata the gateway shows is not what the signed record says"),
            }})
        ))
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
error: content [..]: the bytes received, 97.7 KiB (100000 bytes), hash to [..], not to the signed CID; nothing was written to evil.apk

"#]]);
    assert!(!env.path("evil.apk").exists());
    // Nor does verify believe it: the local file is checked against the record.
    env.cli(&["--gateway", &liar, "verify", "app.bin", &spec])
        .assert()
        .success();
}

/// A gateway that serves a validly signed record of the author by a key the
/// author's identity does not name (a revoked signer, say) is caught: the
/// CLI counts signatures against the identity it checked itself.
#[test]
fn a_record_signed_by_a_key_the_identity_does_not_count_is_refused() {
    let env = Env::new();
    let author = env.stdout(&["key", "generate"]).trim().to_owned();
    let bytes = pattern(22, 10_000);
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
    let b64 = base64::engine::general_purpose::STANDARD;
    let genuine = ipsr_proto::SignedRecord::from_bytes(
        &b64.decode(release["record"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
    .verify()
    .unwrap();
    let stranger = ipsr_proto::AuthorKey::from_seed(&[99; 32]);
    let resigned = genuine.record().clone().sign(&stranger).unwrap();
    let mut forged = release.clone();
    forged["record"] = b64.encode(resigned.to_bytes()).into();
    forged["record_id"] = resigned.id().to_string().into();
    let liar = env.liar(package.to_string(), forged.to_string(), bytes);
    env.cli(&["--gateway", &liar, "info", &spec])
        .assert()
        .code(4)
        .stderr_eq(format!(
            "error: {spec}: the release record the gateway sent is signed by 0 of the author's signers, and the author's identity needs 1\n"
        ));
}
