//! `yank` of a version that is already yanked: the same reason is nothing
//! to do, another reason is refused unless `--replace-reason` says so.

use ipsr_gateway::Uploads;
use ipsr_testkit::pattern;

use crate::common::Env;

/// The yank record in force on `spec` as the node serves it, if any.
fn yank_record(env: &Env, spec: &str) -> serde_json::Value {
    let path = spec.replacen('@', "/", 1);
    env.node_json(&format!("/v1/packages/{path}"))["yank_record"].clone()
}

/// Through a node and through a gateway (the state is read from each):
///
/// ```text
///   ipsr-cli --node ────────────────────────────▶ node
///   ipsr-cli --gateway ──▶ gateway (uploads: anyone) ──▶ (same node)
/// ```
#[test]
fn yanking_a_yanked_version() {
    let env = Env::new();
    let gw = env.gateway(Uploads::Anyone);
    let author = env.stdout(&["key", "generate"]).trim().to_owned();
    env.write("app-1.0.0.bin", &pattern(3, 5000));
    env.publish_app("app-1.0.0.bin", "1.0.0", &[])
        .assert()
        .success();
    let spec = format!("{author}/com.example.app@1.0.0");
    env.cli(&["yank", &spec, "--reason", "crashes on start"])
        .assert()
        .success();
    let first = yank_record(&env, &spec);
    assert!(first.is_string(), "{first}");

    for server in [&["--node", env.api.as_str()], &["--gateway", gw.as_str()]] {
        let yank = |extra: &[&str]| {
            let mut args = server.to_vec();
            args.extend_from_slice(&["yank", &spec]);
            args.extend_from_slice(extra);
            env.cli(&args)
        };
        // The same reason: a note, exit 0, nothing signed or sent.
        yank(&["--reason", "crashes on start"])
            .assert()
            .success()
            .stdout_eq(format!("yanked {spec}\nrecord: [..]\n"))
            .stderr_eq(format!(
                "note: {spec} is already yanked with this reason; nothing signed or sent\n"
            ));
        let out: serde_json::Value = serde_json::from_slice(
            &yank(&["--reason", "crashes on start", "--json"])
                .assert()
                .success()
                .get_output()
                .stdout
                .clone(),
        )
        .unwrap();
        assert_eq!(out["change"], "unchanged");
        // With --out too: no file is written.
        yank(&["--reason", "crashes on start", "--out", "yank.rec"])
            .assert()
            .success();
        assert!(!env.path("yank.rec").exists());
        assert_eq!(yank_record(&env, &spec), first);

        // Another reason: refused (conflict, 6), nothing sent.
        yank(&["--reason", "eats the battery"])
            .assert()
            .code(6)
            .stdout_eq("")
            .stderr_eq(format!(
                "error: {spec} is already yanked with another reason: \"crashes on start\"; pass --replace-reason to sign a yank with the new one\n"
            ));
        assert_eq!(yank_record(&env, &spec), first);
    }

    // --replace-reason signs the new yank; every view shows the new reason.
    env.cli(&[
        "yank",
        &spec,
        "--reason",
        "eats the battery",
        "--replace-reason",
    ])
    .assert()
    .success()
    .stdout_eq(format!("yanked {spec}\nrecord: [..]\n"))
    .stderr_eq("");
    assert_ne!(yank_record(&env, &spec), first);
    let view = env.node_json(&format!("/v1/packages/{author}/com.example.app/1.0.0"));
    assert_eq!(view["yank_reason"], "eats the battery");
    env.cli(&["--gateway", &gw, "info", &spec])
        .assert()
        .success()
        .stdout_eq("...\nyanked:       yes: eats the battery\n...\n");
    // And now that reason is the one that is nothing to do.
    env.cli(&["yank", &spec, "--reason", "eats the battery"])
        .assert()
        .success()
        .stderr_eq(format!(
            "note: {spec} is already yanked with this reason; nothing signed or sent\n"
        ));
}
