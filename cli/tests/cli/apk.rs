//! `publish` checks an APK against its manifest.

use ipsr_testkit::pattern;
use snapbox::str;

use crate::common::{Env, fixture};

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
            "signing_cert_sha256": null,
            "permissions": [],
            "native_code": []
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
size:    [..] bytes[..], sha256 [..]
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

/// The SHA-256 apksigner printed for a fixture (`fixtures/apk/make.sh`).
fn printed(name: &str) -> Vec<String> {
    std::fs::read_to_string(fixture(&format!("apk/{name}")))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Rule 9 of `docs/records.md`, as an author meets it: an APK signed by
/// another certificate is refused, unless the author's identity names the
/// certificate; one with a v3 proof of rotation from the package's
/// certificate goes through; downloads check the APK against its record.
#[test]
fn an_apks_certificate_must_follow_the_package() {
    let old = printed("example-signed-1.5.0.apk.cert-sha256")[0].clone();
    let stranger = printed("example-stranger-1.6.0.apk.cert-sha256")[0].clone();
    let rotated = printed("example-rotated-1.6.0.apk.cert-sha256")[0].clone();
    let start = || {
        let env = Env::new();
        let author = env.stdout(&["key", "generate"]).trim().to_owned();
        for name in [
            "example-signed-1.5.0.apk",
            "example-stranger-1.6.0.apk",
            "example-rotated-1.6.0.apk",
        ] {
            env.write(name, &std::fs::read(fixture("apk").join(name)).unwrap());
        }
        env.publish_app("example-signed-1.5.0.apk", "1.5.0", &[])
            .assert()
            .success();
        (env, author)
    };

    // A stranger's certificate: refused, with the three ways out.
    let (env, author) = start();
    env.publish_app("example-stranger-1.6.0.apk", "1.6.0", &[])
        .assert()
        .code(6)
        .stderr_eq(format!(
            "error: the APK is signed by certificate {stranger}, but com.example.app 1.5.0 is signed by {old}: Android will not install it over the app, and no node would offer it as an update. Sign it with that certificate, rotate to the new one with a v3 proof of rotation (apksigner rotate, then apksigner sign --lineage), or name it in your identity: ipsr-cli identity update --add-apk-cert {stranger} --key ADMIN\n"
        ));
    // The author names it in the identity: now it goes through, and is the
    // newest everywhere.
    env.cli(&[
        "identity",
        "update",
        "--key",
        "default",
        "--add-apk-cert",
        &stranger,
    ])
    .assert()
    .success();
    env.publish_app("example-stranger-1.6.0.apk", "1.6.0", &[])
        .assert()
        .success()
        .stderr_eq(format!(
            "note: certificate {stranger} replaces {old} (1.5.0); your identity names it\n"
        ));
    let package = env.node_json(&format!("/v1/packages/{author}/com.example.app"));
    assert_eq!(package["newest"], "1.6.0");
    assert_eq!(package["versions"][0]["certificate"]["check"], "allowed");
    let info = env.stdout(&["info", &format!("{author}/com.example.app@1.6.0")]);
    assert!(
        info.contains(&format!(
            "\ncertificate:  {stranger} (new: the author's identity names it)\n"
        )),
        "{info}"
    );
    env.cli(&["download", &format!("{author}/com.example.app")])
        .assert()
        .success();

    // A v3 proof of rotation from the package's certificate goes through.
    let (env, author) = start();
    env.publish_app("example-rotated-1.6.0.apk", "1.6.0", &[])
        .assert()
        .success()
        .stderr_eq(format!(
            "note: the APK's proof of rotation moves com.example.app from certificate {old} (1.5.0) to {rotated}\n"
        ));
    let package = env.node_json(&format!("/v1/packages/{author}/com.example.app"));
    assert_eq!(package["newest"], "1.6.0");
    assert_eq!(
        package["versions"][0]["certificate"],
        serde_json::json!({"sha256": rotated, "check": "rotated", "from": old})
    );
    let info = env.stdout(&[
        "download",
        &format!("{author}/com.example.app"),
        "-o",
        "got.apk",
    ]);
    assert!(
        info.starts_with(&format!("{author}/com.example.app@1.6.0\n")),
        "{info}"
    );
    env.cli(&[
        "verify",
        "got.apk",
        &format!("{author}/com.example.app@1.6.0"),
    ])
    .assert()
    .success();
}

/// `release` (a node's release view) with its record replaced by `claim`,
/// signed by the author's `default` key: drafted with a helper key, then
/// signed with `ipsr-cli sign`, as a thief holding the author's key could.
fn serve(env: &Env, release: &serde_json::Value, claim: ipsr_proto::Release) -> serde_json::Value {
    use base64::Engine;
    let helper = ipsr_proto::AuthorKey::from_seed(&[98; 32]);
    env.write(
        "claim.rec",
        &claim.sign_with(&[&helper]).unwrap().to_bytes(),
    );
    env.cli(&["sign", "claim.rec", "--key", "default"])
        .assert()
        .success();
    let signed =
        ipsr_proto::SignedRecord::from_bytes(&std::fs::read(env.path("claim.rec")).unwrap())
            .unwrap()
            .verify_any()
            .unwrap();
    let ipsr_proto::Signed::Record(forged) = signed else {
        panic!("a record")
    };
    let mut served = release.clone();
    served["record"] = base64::engine::general_purpose::STANDARD
        .encode(forged.to_bytes())
        .into();
    served["record_id"] = forged.id().to_string().into();
    served
}

/// A gateway that serves an APK with a record that claims another signing
/// certificate (so that rule 9 would take it for the package's own) is
/// caught on download: the CLI reads the certificate from the bytes.
#[test]
fn an_apk_not_signed_as_its_record_says_is_refused() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let env = Env::new();
    let author = env.stdout(&["key", "generate"]).trim().to_owned();
    let name = "example-stranger-1.6.0.apk";
    let bytes = std::fs::read(fixture("apk").join(name)).unwrap();
    env.write(name, &bytes);
    env.publish_app(name, "1.6.0", &[]).assert().success();
    let package = env.node_json(&format!("/v1/packages/{author}/com.example.app"));
    let release = env.node_json(&format!("/v1/packages/{author}/com.example.app/1.6.0"));
    let spec = format!("{author}/com.example.app@1.6.0");

    // The author's own signature on a record of the same bytes that claims
    // the certificate of 1.5.0.
    let genuine = ipsr_proto::SignedRecord::from_bytes(
        &b64.decode(release["record"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
    .verify()
    .unwrap();
    let mut claim = genuine.record().as_release().unwrap().clone();
    let old = printed("example-signed-1.5.0.apk.cert-sha256")[0].clone();
    let mut cert = [0u8; 32];
    hex::decode_to_slice(&old, &mut cert).unwrap();
    claim.metadata.signing_cert_sha256 = Some(cert);
    let mut served = serve(&env, &release, claim);
    served["metadata"]["signing_cert_sha256"] = old.clone().into();
    let liar = env.liar(package.to_string(), served.to_string(), bytes.clone());
    env.cli(&["--gateway", &liar, "download", &spec, "-o", "got.apk"])
        .assert()
        .code(4)
        .stderr_eq(format!(
            "error: content [..]: the signed record says the APK is signed by certificate {old}, but it is signed by {}; nothing was written to got.apk\n",
            printed("example-stranger-1.6.0.apk.cert-sha256")[0]
        ));
    assert!(!env.path("got.apk").exists());
    env.cli(&["--gateway", &liar, "verify", name, &spec])
        .assert()
        .code(4);

    // The author's signature on the right bytes with a wrong SHA-256.
    let mut claim = genuine.record().as_release().unwrap().clone();
    assert_eq!(
        claim.sha256.map(hex::encode),
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)))
    );
    claim.sha256 = Some([5; 32]);
    let mut served = serve(&env, &release, claim);
    served["sha256"] = "05".repeat(32).into();
    let liar = env.liar(package.to_string(), served.to_string(), bytes);
    env.cli(&["--gateway", &liar, "download", &spec, "-o", "got.apk"])
        .assert()
        .code(4)
        .stderr_eq(format!(
            "error: content [..]: the bytes received have SHA-256 [..], not the signed {}; nothing was written to got.apk\n",
            "05".repeat(32)
        ));
    assert!(!env.path("got.apk").exists());
}

/// `info AUTHOR/PACKAGE` names the newest release's APK certificate and
/// its rule 9 check, through a node and through a gateway; a package whose
/// newest release names none shows no such line.
#[test]
fn info_shows_the_newest_releases_certificate() {
    let old = printed("example-signed-1.5.0.apk.cert-sha256")[0].clone();
    let rotated = printed("example-rotated-1.6.0.apk.cert-sha256")[0].clone();
    let env = Env::new();
    let gw = env.gateway(ipsr_gateway::Uploads::Anyone);
    let author = env.stdout(&["key", "generate"]).trim().to_owned();
    for name in ["example-signed-1.5.0.apk", "example-rotated-1.6.0.apk"] {
        env.write(name, &std::fs::read(fixture("apk").join(name)).unwrap());
    }
    let app = format!("{author}/com.example.app");
    let info = |server: &[&str]| {
        let mut args = server.to_vec();
        args.extend_from_slice(&["info", &app]);
        env.cli(&args)
    };
    let servers: [&[&str]; 2] = [&["--node", &env.api], &["--gateway", &gw]];

    env.publish_app("example-signed-1.5.0.apk", "1.5.0", &[])
        .assert()
        .success();
    for server in servers {
        info(server).assert().success().stdout_eq(format!(
            "{app}
newest:   1.5.0
certificate: {old} (the package's first)
versions:
  1.5.0        code 10 [..]
"
        ));
    }
    env.publish_app("example-rotated-1.6.0.apk", "1.6.0", &[])
        .assert()
        .success();
    for server in servers {
        info(server).assert().success().stdout_eq(format!(
            "{app}
newest:   1.6.0
certificate: {rotated} (new: the APK's v3 proof of rotation leads to it)
versions:
  1.6.0        code 11 [..]
  1.5.0        code 10 [..]
"
        ));
    }

    // Not an APK: no certificate line.
    env.write("other.bin", &pattern(5, 100));
    env.cli(&[
        "publish",
        "other.bin",
        "--package",
        "org.example.other",
        "--version",
        "1.0.0",
    ])
    .assert()
    .success();
    env.cli(&["info", &format!("{author}/org.example.other")])
        .assert()
        .success()
        .stdout_eq(format!(
            "{author}/org.example.other\nnewest:   1.0.0\nversions:\n  1.0.0 [..]\n"
        ));
}
