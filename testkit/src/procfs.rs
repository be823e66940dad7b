//! What Linux's `/proc` says about a process: resident memory and CPU time,
//! for abuse tests that assert a bound and benchmarks that print one.

/// The resident memory (`VmRSS`) of process `pid` (`None`: this process),
/// in KiB; `None` when there is no such process or no `/proc`.
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// A size in KiB from `/proc/{pid}/status` (`None`: this process):
/// `VmRSS`, `RssAnon` (heap, stacks), `RssFile` (pages of mapped files,
/// the executable's code among them)...
pub fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(proc_file(pid, "status")).ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The CPU time (user + system) process `pid` (`None`: this process) used
/// so far, in seconds (clock ticks of 1/100 s, Linux's `CLK_TCK`); 0 when
/// unknown. The machine may be shared: CPU time says more than wall time.
pub fn cpu_secs(pid: Option<u32>) -> f64 {
    let Ok(stat) = std::fs::read_to_string(proc_file(pid, "stat")) else {
        return 0.0;
    };
    // The fields after the command name (which may hold spaces).
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn proc_file(pid: Option<u32>, name: &str) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}/{name}"),
        None => format!("/proc/self/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_burns_cpu() {
        let kib = rss_kib(None).unwrap();
        assert!(kib > 100, "{kib} KiB");
        assert_eq!(rss_kib(Some(std::process::id())).map(|k| k > 0), Some(true));
        let before = cpu_secs(None);
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        assert!(cpu_secs(None) > before, "CPU time grows while spinning");
        assert_eq!(rss_kib(Some(u32::MAX)), None, "no such process");
    }
}
