//! With `--json`, a failure prints a JSON error object on standard output
//! too, for the command's own errors and clap's.

use crate::common::Env;

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn errors_with_json_are_json_on_stdout() {
    let env = Env::new();
    // The command's own error (exit 3), also on stderr as a line.
    let spec = format!(
        "{}/com.example.app",
        ipsr_proto::AuthorKey::from_seed(&[1; 32]).author_id()
    );
    let out = env.cli(&["info", &spec, "--json"]).assert().code(3);
    let out = out.get_output();
    assert_eq!(
        json_of(out),
        serde_json::json!({"error": {
            "kind": "not_found",
            "exit_code": 3,
            "message": format!("{spec}: not found on the node at {}", env.api),
        }})
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: {spec}: not found on the node at {}\n", env.api)
    );
    // A usage error clap finds (exit 2).
    let out = env.cli(&["--json", "info"]).assert().code(2);
    let value = json_of(out.get_output());
    assert_eq!(value["error"]["kind"], "usage");
    assert_eq!(value["error"]["exit_code"], 2);
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the following required arguments were not provided"),
        "{value}"
    );
    // Without --json, nothing on stdout.
    env.cli(&["info", &spec]).assert().code(3).stdout_eq("");
}
