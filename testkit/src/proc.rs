//! A child process read line by line, killed on drop.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::TIMEOUT;

/// A child process whose standard output is read line by line (standard
/// error is dropped, `RUST_LOG=warn`), killed on drop: a daemon started by
/// a test or a benchmark, read for its start-up lines.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Starts `command`; panics when it cannot be started.
    pub fn spawn(command: &mut Command) -> Self {
        Self::spawn_to(command.env("RUST_LOG", "warn"), Stdio::null())
    }

    /// Starts `command` with its standard error (its log, at `RUST_LOG`,
    /// `info` unless the command sets it) appended to the file `log`.
    pub fn spawn_logging(command: &mut Command, log: &std::path::Path) -> Self {
        if !command.get_envs().any(|(k, _)| k == "RUST_LOG") {
            command.env("RUST_LOG", "info");
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        Self::spawn_to(command, file.into())
    }

    fn spawn_to(command: &mut Command, stderr: Stdio) -> Self {
        let program = command.get_program().to_owned();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program:?}: {e}"));
        let stdout = child
            .stdout
            .take()
            .expect("the child's standard output is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
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

    /// [`line`](Self::line) within [`TIMEOUT`]; panics when none comes.
    pub fn expect_line(&self, prefix: &str) -> String {
        self.line(prefix, TIMEOUT)
            .unwrap_or_else(|| panic!("no `{prefix}` line"))
    }

    /// The process, e.g. to signal it or wait for it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

/// Runs `command` to its end with its output captured, as
/// [`Command::output`] does, but for at most `limit`: a process still
/// running then is killed and `None` returned (its own children must not
/// hold its output open). For a process that is expected to exit (a start
/// that must fail).
pub fn output_within(command: &mut Command, limit: Duration) -> Option<Output> {
    let program = command.get_program().to_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program:?}: {e}"));
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => break None,
        }
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (stdout, stderr) = (stdout.join(), stderr.join());
    Some(Output {
        status: status?,
        stdout: stdout.unwrap_or_default(),
        stderr: stderr.unwrap_or_default(),
    })
}

/// Reads `pipe` to its end on a thread of its own.
fn read_all<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    })
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_and_kills_on_drop() {
        let mut proc =
            Proc::spawn(Command::new("sh").args(["-c", "echo one; echo 'two: 2'; sleep 600"]));
        assert_eq!(proc.expect_line("two: "), "2");
        let pid = proc.child().id();
        drop(proc);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty(), "{stat}");
    }

    #[test]
    fn output_within_a_limit() {
        let done = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(
            (&done.stdout[..], &done.stderr[..]),
            (&b"out\n"[..], &b"err\n"[..])
        );
        let started = Instant::now();
        let hung = output_within(
            Command::new("sh").args(["-c", "exec sleep 600"]),
            Duration::from_millis(200),
        );
        assert!(hung.is_none());
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
