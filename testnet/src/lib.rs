//! Drives a local testnet (`testnet/up.sh` and friends) from Rust, for the
//! end-to-end test: start, run the demo, kill and restart members, read
//! their status, stop. A [`Testnet`] stops every process it started when
//! dropped, also when a test fails.
//!
//! The scripts are the interface (`testnet/README.md`); this crate only runs
//! them with a private run folder and reads the files they write.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

/// An HTTP client with short timeouts that reports statuses as values.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Polls `check` every 100 ms until it gives a value or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process whose standard output is read line by line (standard
/// error is dropped, `RUST_LOG=warn`), killed on drop: a daemon started by
/// a test or a benchmark, read for its start-up lines.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Starts `command`.
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("the child's standard output is not piped"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines })
    }

    /// The next line of standard output, if one comes before `deadline`.
    pub fn next_line(&self, deadline: Instant) -> Option<String> {
        self.lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    }

    /// The rest of the first line starting with `prefix` that comes within
    /// `limit` (earlier lines are skipped).
    pub fn line(&self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let line = self.next_line(deadline)?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.to_owned());
            }
        }
    }

    /// The process, e.g. to signal it or wait for it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private `redis-server` on `port` (no persistence), killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    /// Starts it and waits until it accepts connections.
    pub fn start(port: u16) -> std::io::Result<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let server = Self {
            port,
            child: Some(child),
        };
        wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .ok_or_else(|| std::io::Error::other("redis-server did not start"))?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGKILL: it keeps nothing anyway) and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
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

/// A port that is free on loopback now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A base port `P` such that the testnet's ports (`P..=P+n`,
/// `P+100..=P+100+n`, `P+200`) are free on loopback now.
pub fn free_base_port(nodes: u16) -> Option<u16> {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    // Spread the starting points by process id so parallel runs differ.
    let start = 20_000 + (std::process::id() % 300) as u16 * 100;
    (0..300u16)
        .map(|i| 20_000 + (start - 20_000 + i * 100) % 30_000)
        .find(|&p| (0..=nodes).all(|i| free(p + i) && free(p + 100 + i)) && free(p + 200))
}

/// `len` pseudo-random bytes from a seeded xorshift generator: not
/// compressible, no two chunks alike, the same on every run. Test data for
/// content (imports, transfers, downloads).
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
