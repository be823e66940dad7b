//! What the benches that load the gateway over HTTP share: `wrk` runs
//! parsed, and nginx serving a folder as the baseline.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ipsr_testkit::{Proc, wait_for};

/// Under `cargo bench` (`cargo test --benches` runs benches without
/// `--bench`, and then they measure nothing: `None`), after checking that
/// wrk and nginx are installed: how long each wrk run lasts, in seconds
/// (`IPSR_BENCH_SECONDS`, 10).
pub fn setup() -> Option<u64> {
    if !std::env::args().any(|a| a == "--bench") {
        return None;
    }
    for program in ["wrk", "nginx"] {
        assert!(
            have(program),
            "{program} is needed: apt-get install wrk nginx-light"
        );
    }
    Some(
        std::env::var("IPSR_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    )
}

/// One wrk run's figures.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub requests_per_sec: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

impl Figures {
    /// Runs of equal length taken as one: the mean rate, the worst p99,
    /// every error.
    pub fn mean(runs: &[Figures]) -> Figures {
        let n = runs.len().max(1) as f64;
        Figures {
            requests_per_sec: runs.iter().map(|f| f.requests_per_sec).sum::<f64>() / n,
            p99_ms: runs.iter().map(|f| f.p99_ms).fold(0.0, f64::max),
            errors: runs.iter().map(|f| f.errors).sum(),
        }
    }
}

pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `wrk -t1 -c50 -d{secs}s --latency URL`, parsed.
pub fn wrk(url: &str, secs: u64) -> Figures {
    wrk_with(url, secs, &[])
}

/// [`wrk`] with request headers (`Name: value`).
pub fn wrk_with(url: &str, secs: u64, headers: &[&str]) -> Figures {
    let mut command = Command::new("wrk");
    command.args(["-t1", "-c50", &format!("-d{secs}s"), "--latency"]);
    for h in headers {
        command.args(["-H", h]);
    }
    let out = command.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {text}");
    let value = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|rest| rest.trim().to_owned())
            .unwrap_or_else(|| panic!("no `{prefix}` in wrk's output:\n{text}"))
    };
    let requests_per_sec = value("Requests/sec:").parse().unwrap();
    let p99_ms = duration_ms(&value("99%"));
    let errors = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("Non-2xx or 3xx responses:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    Figures {
        requests_per_sec,
        p99_ms,
        errors,
    }
}

/// wrk's durations: `812.00us`, `1.20ms`, `1.02s`.
fn duration_ms(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().unwrap();
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => panic!("unknown unit in {text}"),
    }
}

/// nginx, stopped with `nginx -s stop` (which also ends its workers; a
/// SIGKILL of the master alone would leave them running), then killed.
pub struct Nginx {
    conf: std::path::PathBuf,
    _proc: Proc,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let conf = self.conf.to_string_lossy().into_owned();
        let _ = Command::new("nginx")
            .args(["-c", &conf, "-e", "stderr", "-s", "stop"])
            .status();
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// nginx with `worker_processes auto` serving `root/www` on `port`.
pub fn nginx(root: &Path, port: u16) -> Nginx {
    nginx_with(root, port, "auto")
}

/// nginx serving `root/www` on `port` with `worker_processes workers`
/// (`1` or `auto`: which is faster depends on the machine). Its files go
/// in `root/nginx-{workers}`.
pub fn nginx_with(root: &Path, port: u16, workers: &str) -> Nginx {
    let own = root.join(format!("nginx-{workers}"));
    std::fs::create_dir_all(&own).unwrap();
    let conf = own.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; master_process on; worker_processes {workers}; pid {own}/nginx.pid;\n\
             error_log {own}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; default_type application/json;\n\
               client_body_temp_path {own}; proxy_temp_path {own}; fastcgi_temp_path {own};\n\
               uwsgi_temp_path {own}; scgi_temp_path {own};\n\
               server {{ listen 127.0.0.1:{port}; root {dir}/www; }} }}\n",
            dir = root.display(),
            own = own.display()
        ),
    )
    .unwrap();
    let proc =
        Proc::spawn(Command::new("nginx").args(["-c", conf.to_str().unwrap(), "-e", "stderr"]));
    wait_for("nginx to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    Nginx { conf, _proc: proc }
}
