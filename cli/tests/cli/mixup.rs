//! A node's API given as `--gateway`, a gateway given as `--node`, and an
//! address without its scheme: each says what answers and what to pass.
//!
//! ```text
//!   ipsr-cli --node GATEWAY ──HTTP──▶ gateway ──▶ node ◀──HTTP── ipsr-cli --gateway NODE_API
//! ```

use ipsr_gateway::Uploads;
use ipsr_testkit::pattern;

use crate::common::Env;

#[test]
fn a_gateway_given_as_the_node_and_the_reverse_are_named() {
    let env = Env::new();
    let gw = env.gateway(Uploads::Anyone);
    let author = env.stdout(&["key", "generate"]).trim().to_owned();
    let as_node = format!(
        "error: {gw} is an IPSR gateway, not a node's API; use --gateway {gw} (or IPSR_GATEWAY), or give --node the node's API address (`ipsr-node run` prints it as `api: http://...`)\n"
    );
    // status, publish (before anything is uploaded), and add, whose upload
    // the gateway cuts short (8 MiB: more than it reads before refusing).
    env.write("app.bin", &pattern(3, 8 << 20));
    for args in [
        &["status"][..],
        &[
            "publish",
            "app.bin",
            "--package",
            "com.example.app",
            "--version",
            "1.0.0",
        ],
        &["add", "app.bin"],
        &["info", &format!("{author}/com.example.app")],
    ] {
        let mut all = vec!["--node", gw.as_str()];
        all.extend_from_slice(args);
        env.cli(&all).assert().code(2).stderr_eq(as_node.as_str());
    }
    // The same through IPSR_NODE.
    env.cli(&["status"])
        .env("IPSR_NODE", &gw)
        .assert()
        .code(2)
        .stderr_eq(as_node.as_str());
    // Nothing was published meanwhile.
    env.cli(&["info", &format!("{author}/com.example.app")])
        .assert()
        .code(3);

    let api = &env.api;
    let as_gateway = format!(
        "error: {api} is an IPSR node's API, not a gateway; use --node {api} (or IPSR_NODE), or give --gateway the gateway's URL (`ipsr-gateway` prints it as `gateway: http://...`)\n"
    );
    for args in [
        &["search", "camera"][..],
        &["info", &format!("{author}/com.example.app")],
        &["ls", &author],
    ] {
        let mut all = vec!["--gateway", api.as_str()];
        all.extend_from_slice(args);
        env.cli(&all)
            .assert()
            .code(2)
            .stderr_eq(as_gateway.as_str());
    }

    // The right server's own "not found" stays what it was.
    env.cli(&[
        "--gateway",
        &gw,
        "info",
        &format!("{author}/com.example.app"),
    ])
    .assert()
    .code(3)
    .stderr_eq(format!(
        "error: {author}/com.example.app: not found on the gateway at {gw}\n"
    ));
}

#[test]
fn a_node_token_challenge_names_a_node_too() {
    let env = Env::with_token("sesame-sesame-sesame-sesame");
    let api = &env.api;
    env.cli(&["--gateway", api, "search", "camera"])
        .assert()
        .code(2)
        .stderr_eq(format!(
            "error: {api} is an IPSR node's API, not a gateway; use --node {api} (or IPSR_NODE), or give --gateway the gateway's URL (`ipsr-gateway` prints it as `gateway: http://...`)\n"
        ));
}

#[test]
fn an_address_without_its_scheme_gets_one_with_its_own_port() {
    let env = Env::new();
    env.cli(&["--node", "127.0.0.1:5650", "status"])
        .assert()
        .code(2)
        .stderr_eq(
            "error: --node: \"127.0.0.1:5650\" is not a URL; write it with its scheme: http://127.0.0.1:5650\n",
        );
    env.cli(&["--node", "localhost:5650", "status"])
        .assert()
        .code(2)
        .stderr_eq(
            "error: --node: \"localhost:5650\" is not a URL; write it with its scheme: http://localhost:5650\n",
        );
    env.cli(&["--gateway", "gateway.example.org", "status"])
        .assert()
        .code(2)
        .stderr_eq(
            "error: --gateway: \"gateway.example.org\" is not a URL; write it with its scheme: https://gateway.example.org\n",
        );
}
