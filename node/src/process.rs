//! The process's own figures for `/metrics` (Prometheus' standard
//! `process_*` names): memory, CPU time, open files, threads and start
//! time, read from Linux's `/proc`. The parsing is sans IO; [`sample`]
//! reads the files, and answers `None` where there is no `/proc` (another
//! OS), so the metrics are left out rather than wrong.

use std::path::Path;

/// Clock ticks per second of `/proc/*/stat` times: Linux's `USER_HZ`,
/// which is 100 on every architecture it exports to user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of the process's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sample {
    /// Resident set size, bytes (`VmRSS`).
    pub(crate) resident_bytes: u64,
    /// Virtual memory size, bytes (`VmSize`).
    pub(crate) virtual_bytes: u64,
    /// User and system CPU time, seconds.
    pub(crate) cpu_seconds: f64,
    /// Open file descriptors.
    pub(crate) open_fds: u64,
    /// The soft limit on open file descriptors; `None` when unlimited.
    pub(crate) max_fds: Option<u64>,
    /// Threads.
    pub(crate) threads: u64,
    /// When the process started, Unix seconds.
    pub(crate) start_time_seconds: f64,
}

/// Reads the figures of this process from `/proc`.
pub(crate) fn sample() -> Option<Sample> {
    let proc = Path::new("/proc");
    let read = |p: &str| std::fs::read_to_string(proc.join(p)).ok();
    let status = status(&read("self/status")?)?;
    let (cpu_seconds, start_ticks) = stat(&read("self/stat")?)?;
    let boot = boot_time(&read("stat")?)?;
    let open_fds = std::fs::read_dir(proc.join("self/fd")).ok()?.count() as u64;
    Some(Sample {
        resident_bytes: status.resident_bytes,
        virtual_bytes: status.virtual_bytes,
        threads: status.threads,
        cpu_seconds,
        open_fds,
        max_fds: read("self/limits").and_then(|l| max_open_files(&l)),
        start_time_seconds: boot as f64 + start_ticks / TICKS_PER_SECOND,
    })
}

/// What `/proc/self/status` gives.
#[derive(Debug, PartialEq)]
struct Status {
    resident_bytes: u64,
    virtual_bytes: u64,
    threads: u64,
}

/// `VmRSS`, `VmSize` (in kB) and `Threads` of `/proc/self/status`.
fn status(text: &str) -> Option<Status> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some(Status {
        resident_bytes: field("VmRSS")?.saturating_mul(1024),
        virtual_bytes: field("VmSize")?.saturating_mul(1024),
        threads: field("Threads")?,
    })
}

/// CPU seconds (`utime` + `stime`) and the start time in ticks after boot
/// (`starttime`) of `/proc/self/stat`. The command name (field 2) is in
/// parentheses and may hold spaces and `)`, so fields are counted from the
/// last `)`.
fn stat(text: &str) -> Option<(f64, f64)> {
    let (_, rest) = text.rsplit_once(')')?;
    // After the name: field 3 (state) is index 0.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    let cpu = (number(14)? + number(15)?) as f64 / TICKS_PER_SECOND;
    Some((cpu, number(22)? as f64))
}

/// `btime` of `/proc/stat`: when the system booted, Unix seconds.
fn boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit of "Max open files" in `/proc/self/limits`.
fn max_open_files(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_files() {
        let status = "Name:\tipsr-node\nVmSize:\t  123456 kB\nVmRSS:\t   51200 kB\nThreads:\t17\n";
        assert_eq!(
            super::status(status),
            Some(Status {
                resident_bytes: 51200 * 1024,
                virtual_bytes: 123456 * 1024,
                threads: 17
            })
        );
        assert_eq!(super::status("Name:\tx\n"), None);
        // A command name with a space and a parenthesis.
        let stat =
            "4242 (ipsr) node) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 17 0 12345 0 0";
        assert_eq!(super::stat(stat), Some((3.0, 12345.0)));
        assert_eq!(super::stat("4242 (x) S 1"), None);
        assert_eq!(
            boot_time("cpu 1 2 3\nbtime 1764000000\n"),
            Some(1_764_000_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(max_open_files(unlimited), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn samples_this_process() {
        let s = sample().expect("Linux has /proc");
        assert!(s.resident_bytes > 1024 * 1024, "{s:?}");
        assert!(s.virtual_bytes >= s.resident_bytes, "{s:?}");
        assert!(s.threads >= 1 && s.open_fds >= 3, "{s:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // Started within the last day, and not in the future.
        assert!(
            s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0,
            "{s:?}"
        );
    }
}
