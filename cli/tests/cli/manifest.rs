//! `publish` takes the package, version, permissions and native code of an
//! APK from its manifest, and the metadata file's `changelog`; its errors.

use snapbox::str;

use crate::common::{Env, fixture};

/// Copies `apk/NAME` into the work dir.
fn apk(env: &Env, name: &str) {
    let bytes = std::fs::read(fixture("apk").join(name)).unwrap();
    env.write(name, &bytes);
}

#[test]
fn an_apk_names_its_package_version_permissions_and_abis() {
    let env = Env::new();
    let author = env.stdout(&["key", "generate"]).trim().to_owned();
    // com.example.app 1.7.0, versionCode 12, INTERNET, CAMERA and (API 23+)
    // READ_CONTACTS, lib/x86_64/ then lib/arm64-v8a/.
    apk(&env, "example-native-1.7.0.apk");

    // Metadata that contradicts the APK's permissions is refused.
    env.write(
        "wrong.toml",
        b"title = \"Example\"\npermissions = [\"android.permission.INTERNET\"]\n",
    );
    env.cli(&["publish", "example-native-1.7.0.apk", "--metadata", "wrong.toml"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: example-native-1.7.0.apk: the manifest requests the permissions android.permission.INTERNET, android.permission.CAMERA, android.permission.READ_CONTACTS, but the metadata's permissions are android.permission.INTERNET; leave permissions out of the metadata (publish reads them from the APK), or make them agree

"#]]);
    // native_code is the APK's alone.
    env.write("abi.toml", b"native_code = [\"x86\"]\n");
    env.cli(&["publish", "example-native-1.7.0.apk", "--metadata", "abi.toml"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: --metadata abi.toml: native_code is read from the APK (its lib/ABI/ folders), not the metadata; leave it out

"#]]);
    // A changelog over its limit names the field.
    let long = format!("changelog = \"\"\"{}\"\"\"\n", "x".repeat(2001));
    env.write("long.toml", long.as_bytes());
    env.cli(&[
        "publish",
        "example-native-1.7.0.apk",
        "--metadata",
        "long.toml",
    ])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: metadata.changelog is 2001 bytes, over the 2000-byte limit; fix it and publish again

"#]]);

    // No --package, no --version: the manifest's. The permissions, the
    // ABIs and the SDKs go into the signed record; the changelog keeps its
    // lines.
    env.write(
        "meta.toml",
        b"title = \"Example\"\nchangelog = \"\"\"\nFaster sync.\nFixed the camera.\"\"\"\n",
    );
    let spec = format!("{author}/com.example.app@1.7.0");
    env.cli(&["publish", "example-native-1.7.0.apk", "--metadata", "meta.toml"])
        .assert()
        .success()
        .stdout_eq(format!(
            "{spec}
cid:     bafkrei[..]
size:    [..] bytes[..], sha256 [..]
code:    12
apk:     com.example.app, versionCode 12, versionName 1.7.0, SDK 21..34
         permissions: android.permission.INTERNET, android.permission.CAMERA, android.permission.READ_CONTACTS
         native code: x86_64, arm64-v8a
record:  [..]
see:     ipsr-cli info {spec}
         {api}/v1/packages/{author}/com.example.app/1.7.0
",
            api = env.api
        ));
    let info: serde_json::Value =
        serde_json::from_str(&env.stdout(&["info", &spec, "--json"])).unwrap();
    let m = &info["metadata"];
    assert_eq!(
        m["permissions"],
        serde_json::json!([
            "android.permission.INTERNET",
            "android.permission.CAMERA",
            "android.permission.READ_CONTACTS"
        ]),
        "{info}"
    );
    assert_eq!(m["native_code"], serde_json::json!(["x86_64", "arm64-v8a"]));
    assert_eq!(m["changelog"], "Faster sync.\nFixed the camera.");
    assert_eq!(
        (m["min_sdk"].as_u64(), m["target_sdk"].as_u64()),
        (Some(21), Some(34))
    );
    // `info` shows them.
    env.cli(&["info", &spec])
        .assert()
        .success()
        .stdout_eq(format!(
            "{spec}
record:       [..] (signature verified)
cid:          [..]
size:         [..]
file name:    example-native-1.7.0.apk
platform:     android
version code: 12
signed at:    [..]
yanked:       no
title:        Example
sdk:          min 21, target 34
permissions:  android.permission.INTERNET, android.permission.CAMERA, android.permission.READ_CONTACTS
native code:  x86_64, arm64-v8a

changes:
    Faster sync.
    Fixed the camera.
"
        ));
}

#[test]
fn a_version_name_that_is_not_semver_needs_a_version() {
    let env = Env::new();
    env.stdout(&["key", "generate"]);
    apk(&env, "example-1.3.apk"); // versionName "1.3"
    env.cli(&["publish", "example-1.3.apk"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: example-1.3.apk: the manifest's versionName "1.3" is not a SemVer version, which IPSR versions are; pass --version 1.3.0 (or another SemVer version)

"#]]);
    // A file that is not an APK names neither.
    env.write("app.bin", b"bytes");
    env.cli(&["publish", "app.bin", "--version", "1.0.0"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: app.bin: --package NAME is needed for a file that is not an APK (only an APK's manifest names its package and version)

"#]]);
    env.cli(&["publish", "app.bin", "--package", "com.example.app"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: app.bin: --version VERSION is needed for a file that is not an APK (only an APK's manifest names its package and version)

"#]]);
}

#[test]
fn a_toml_error_says_where() {
    let env = Env::new();
    env.stdout(&["key", "generate"]);
    env.write("app.bin", b"bytes");
    env.write("meta.toml", b"title = \"Example\"\n\nsummary = one line\n");
    env.publish_app("app.bin", "1.0.0", &["--metadata", "meta.toml"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: --metadata meta.toml: not valid metadata TOML at line 3, column 11: [..]

"#]]);
    env.write("meta.toml", b"title = \"Example\"\ncolour = \"red\"\n");
    env.publish_app("app.bin", "1.0.0", &["--metadata", "meta.toml"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: --metadata meta.toml: not valid metadata TOML at line 2, column 1: unknown field `colour`, [..]

"#]]);
}
