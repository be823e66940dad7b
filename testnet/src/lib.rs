//! Drives a local testnet (`testnet/up.sh` and friends) from Rust, for the
//! end-to-end test: start, run the demo, kill and restart members, read
//! their status, stop. A [`Testnet`] stops every process it started when
//! dropped, also when a test fails.
//!
//! The scripts are the interface (`testnet/README.md`); this crate only runs
//! them with a private run folder and reads the files they write. The
//! helpers its test shares with every other (processes, Redis servers,
//! ports, waits, records) are in `ipsr-testkit`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ipsr_testkit::agent;

/// Where the scripts are.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// A testnet started by [`Testnet::up`]; `down.sh` runs on drop.
#[derive(Debug)]
pub struct Testnet {
    run: PathBuf,
    /// Nodes (the gateway not counted).
    pub nodes: usize,
}

/// A script that failed, with its output.
#[derive(Debug)]
pub struct ScriptError(pub String);

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptError {}

impl Testnet {
    /// `up.sh -n NODES --base-port BASE [--redis URL]` with its run folder
    /// in `run`, running the binaries in `bin` (`IPSR_TESTNET_BIN`).
    pub fn up(
        run: &Path,
        nodes: usize,
        base: u16,
        redis: Option<&str>,
        bin: &Path,
    ) -> Result<Self, ScriptError> {
        let net = Self {
            run: run.to_owned(),
            nodes,
        };
        let mut args = vec![
            "-n".to_owned(),
            nodes.to_string(),
            "--base-port".into(),
            base.to_string(),
        ];
        if let Some(url) = redis {
            args.extend(["--redis".into(), url.into()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let bin = bin.to_string_lossy();
        net.script_with("up.sh", &refs, &[("IPSR_TESTNET_BIN", &bin)])?;
        Ok(net)
    }

    /// Runs `testnet/NAME ARGS` and returns its standard output.
    pub fn script(&self, name: &str, args: &[&str]) -> Result<String, ScriptError> {
        self.script_with(name, args, &[])
    }

    fn script_with(
        &self,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<String, ScriptError> {
        let out: Output = Command::new(scripts().join(name))
            .args(args)
            .env("IPSR_TESTNET_RUN", &self.run)
            .envs(env.iter().copied())
            .output()
            .map_err(|e| ScriptError(format!("cannot run {name}: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(ScriptError(format!(
                "{name} {args:?} failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    /// A file the scripts wrote about member `member` (`1`.., `gateway`).
    pub fn file(&self, member: &str, name: &str) -> String {
        let dir = if member == "gateway" {
            "gateway".to_owned()
        } else {
            format!("node{member}")
        };
        std::fs::read_to_string(self.run.join(dir).join(name))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// Member `member`'s node API URL.
    pub fn api(&self, member: &str) -> String {
        self.file(member, "api")
    }

    /// The gateway's HTTP URL.
    pub fn http(&self) -> String {
        self.file("gateway", "http")
    }

    /// `GET {api}/v1/status` of a member.
    pub fn status(&self, member: &str) -> Option<serde_json::Value> {
        let mut response = agent()
            .get(format!("{}/v1/status", self.api(member)))
            .call()
            .ok()?;
        serde_json::from_reader(response.body_mut().as_reader()).ok()
    }

    /// The process id of a member, if it runs.
    pub fn pid(&self, member: &str) -> Option<u32> {
        self.file(member, "pid").parse().ok()
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        let _ = self.script("down.sh", &[]);
    }
}

/// The folder with the workspace's binaries (`ipsr-node`, `ipsr-gateway`,
/// `ipsr-cli`) of the build the calling test belongs to. `cargo test
/// --workspace` (the README's test command) builds them there before any
/// test runs, so they are used as they are. Only when one is missing (this
/// crate's tests run alone in a fresh target dir) is cargo run to build
/// them. (A nested cargo inside a running test sees the test's environment,
/// which makes some build scripts rerun: it is avoided when it can be.)
pub fn binaries() -> Result<PathBuf, ScriptError> {
    let exe = std::env::current_exe().map_err(|e| ScriptError(e.to_string()))?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| ScriptError("no target folder".into()))?
        .to_owned();
    let names = ["ipsr-node", "ipsr-gateway", "ipsr-cli"];
    if names.iter().all(|n| dir.join(n).exists()) {
        return Ok(dir);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.current_dir(scripts().join("..")).args([
        "test",
        "--workspace",
        "--no-run",
        "--locked",
        "--quiet",
    ]);
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let out = build
        .output()
        .map_err(|e| ScriptError(format!("cannot run cargo: {e}")))?;
    if !out.status.success() {
        return Err(ScriptError(format!(
            "cannot build the binaries: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    match names.iter().find(|n| !dir.join(n).exists()) {
        Some(name) => Err(ScriptError(format!("no {name} in {}", dir.display()))),
        None => Ok(dir),
    }
}
