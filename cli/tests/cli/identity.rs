//! Identities: the story of a stolen signer key (`docs/records.md`,
//! section 10), then a two-of-three threshold, as an author types it.

use ipsr_gateway::Uploads;
use ipsr_testkit::pattern;

use crate::common::Env;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn a_stolen_signer_key_is_revoked_and_the_release_re_signed_then_two_of_three() {
    let env = Env::new();
    let gateway = env.gateway(Uploads::Off);

    // main (with main-recovery, the default), and two signer keys.
    let main = env
        .stdout(&["key", "generate", "--name", "main"])
        .trim()
        .to_owned();
    let laptop = env
        .stdout(&["key", "generate", "--name", "laptop", "--no-recovery"])
        .trim()
        .to_owned();
    let phone = env
        .stdout(&["key", "generate", "--name", "phone", "--no-recovery"])
        .trim()
        .to_owned();
    assert!(
        env.config
            .path()
            .join("ipsr/keys/main-recovery.toml")
            .exists()
    );

    // main posts its first document (made by `key generate`), then hands
    // signing to laptop.
    env.cli(&[
        "identity",
        "update",
        "--key",
        "main",
        "--add-signer",
        "laptop",
        "--remove-signer",
        "main",
        "--name",
        "Example Apps",
    ])
    .assert()
    .success();
    let shown = json(&env.stdout(&["identity", "show", &main, "--json"]));
    assert_eq!(shown["document"]["signers"], serde_json::json!([laptop]));
    assert_eq!(shown["document"]["admins"].as_array().unwrap().len(), 2);
    assert_eq!(shown["document"]["name"], "Example Apps");

    let app = format!("{main}/com.example.app");
    env.write("app-1.0.0.bin", &pattern(1, 200_000));
    env.write("app-9.9.9.bin", &pattern(9, 1000));
    let publish = |file: &str, version: &str, key: &str, extra: &[&str]| {
        let mut args = vec![file, "--author", &main, "--key", key];
        args.extend_from_slice(extra);
        env.publish_app(args[0], version, &args[1..])
    };
    // main itself no longer signs.
    publish("app-1.0.0.bin", "1.0.0", "main", &[])
        .assert()
        .code(2);
    publish("app-1.0.0.bin", "1.0.0", "laptop", &[])
        .assert()
        .success();

    // A thief with a copy of laptop: the largest version code, and a yank.
    publish(
        "app-9.9.9.bin",
        "9.9.9",
        "laptop",
        &["--version-code", "18446744073709551615"],
    )
    .assert()
    .success();
    env.cli(&[
        "yank",
        &format!("{app}@1.0.0"),
        "--reason",
        "gone",
        "--key",
        "laptop",
    ])
    .assert()
    .success();
    assert_eq!(
        env.node_json(&format!("/v1/packages/{app}"))["newest"],
        "9.9.9"
    );

    // The author, with the recovery key, removes laptop and adds phone.
    let updated = json(&env.stdout(&[
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
        "--json",
    ]));
    let to_resign = updated["to_resign"].as_array().unwrap();
    assert!(to_resign.contains(&serde_json::json!(format!("{app}@1.0.0"))));
    assert!(to_resign.contains(&serde_json::json!(format!("{app}@9.9.9"))));
    // Nothing laptop signed counts any more, on the node or in the CLI.
    env.cli(&["info", &app]).assert().code(3);
    env.cli(&["resign", &format!("{app}@1.0.0"), "--key", "phone"])
        .assert()
        .success();

    // Every view says 1.0.0, not yanked; 9.9.9 exists nowhere; the author
    // id never changed.
    let package = env.node_json(&format!("/v1/packages/{app}"));
    assert_eq!(package["newest"], "1.0.0");
    let versions: Vec<_> = package["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].clone(), v["yanked"].clone()))
        .collect();
    assert_eq!(
        versions,
        vec![(serde_json::json!("1.0.0"), serde_json::json!(false))]
    );
    let api = ureq::get(format!("{gateway}/api/v1/package/{app}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(json(&api)["newest"], "1.0.0");
    let page = ureq::get(format!("{gateway}/p/{app}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(page.contains("1.0.0") && !page.contains("9.9.9"));
    env.cli(&["download", &app, "-o", "got.bin"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(env.path("got.bin")).unwrap(),
        pattern(1, 200_000)
    );
    env.cli(&["info", &format!("{app}@9.9.9")]).assert().code(3);

    // Two of three maintainers: phone, tablet and desk; two must sign.
    for name in ["tablet", "desk"] {
        env.stdout(&["key", "generate", "--name", name, "--no-recovery"]);
    }
    env.cli(&[
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
    ])
    .assert()
    .success();
    // 1.0.0 carries one maintainer's signature now: a second one signs it.
    env.cli(&["resign", &format!("{app}@1.0.0"), "--key", "tablet"])
        .assert()
        .success();
    assert_eq!(
        env.node_json(&format!("/v1/packages/{app}"))["newest"],
        "1.0.0"
    );

    // One signature: held, served by no one.
    env.write("app-2.0.0.bin", &pattern(2, 1000));
    publish("app-2.0.0.bin", "2.0.0", "phone", &[])
        .assert()
        .success();
    assert_eq!(
        env.node_json(&format!("/v1/packages/{app}"))["newest"],
        "1.0.0"
    );
    // Signed by two (offline: a file passed from one to the other): current.
    publish("app-2.0.0.bin", "2.0.0", "phone", &["--out", "2.0.0.rec"])
        .assert()
        .success();
    env.cli(&["sign", "2.0.0.rec", "--key", "desk"])
        .assert()
        .success();
    env.cli(&["post", "2.0.0.rec"]).assert().success();
    assert_eq!(
        env.node_json(&format!("/v1/packages/{app}"))["newest"],
        "2.0.0"
    );
    let info = env.stdout(&["info", &format!("{app}@2.0.0")]);
    assert!(
        info.contains("signed by:    2 of 3 signers (needs 2)"),
        "{info}"
    );
    // The gateway says the same, in JSON and on the page, and the CLI
    // checks it through the gateway too (the identity chain comes with the
    // author's JSON).
    let get = |path: String| {
        ureq::get(format!("{gateway}{path}"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let release = json(&get(format!("/api/v1/package/{app}/2.0.0")));
    assert_eq!(
        release["signatures"],
        serde_json::json!({"signed": 2, "needed": 2, "signers": 3})
    );
    let author = json(&get(format!("/api/v1/author/{main}")));
    assert_eq!(author["identity"]["document"]["name"], "Example Apps");
    let page = get(format!("/p/{app}"));
    assert!(
        page.contains("2 of 3 maintainers signed this release (2 needed)"),
        "{page}"
    );
    assert!(page.contains("Example Apps"));
    let info = env.stdout(&["--gateway", &gateway, "info", &format!("{app}@2.0.0")]);
    assert!(
        info.contains("signed by:    2 of 3 signers (needs 2)"),
        "{info}"
    );
    // An identity document through a gateway, which passes it to its node.
    env.cli(&[
        "--gateway",
        &gateway,
        "identity",
        "update",
        "--author",
        &main,
        "--key",
        "main",
        "--name",
        "Example Apps, Inc.",
    ])
    .assert()
    .success();
    let node_author = env.node_json(&format!("/v1/authors/{main}"));
    assert_eq!(
        node_author["identity"]["document"]["name"],
        "Example Apps, Inc."
    );

    // The APK certificates the author vouches for.
    let cert = "ab".repeat(32);
    env.cli(&[
        "identity",
        "update",
        "--author",
        &main,
        "--key",
        "main",
        "--add-apk-cert",
        &cert,
    ])
    .assert()
    .success();
    let shown = json(&env.stdout(&["identity", "show", &main, "--json"]));
    assert_eq!(shown["document"]["apk_certs"], serde_json::json!([cert]));
    env.cli(&[
        "identity",
        "update",
        "--author",
        &main,
        "--key",
        "main",
        "--add-apk-cert",
        "12",
    ])
    .assert()
    .code(2);
    let _ = phone;
}
