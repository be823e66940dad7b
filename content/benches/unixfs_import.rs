//! UnixFS import throughput against `sha256sum` on the same file.
//!
//! Writes a pseudo-random file (1 GiB, or `IPSR_BENCH_MIB` MiB) to a temp
//! dir, times `sha256sum FILE` as a process (the baseline: one read and one
//! hash of every byte), then times an `unixfs-v1-2025` import of the file
//! with the blocks discarded, and prints both rates, their ratio (target:
//! import >= 70% of sha256sum) and the peak RSS of this process.
//!
//! `cargo bench -p ipsr-content --bench unixfs_import`
#![allow(clippy::unwrap_used)]

use std::io::{BufReader, Write};
use std::time::Instant;

use ipsr_content::unixfs::{self, Profile};
use ipsr_testkit::XorShift;

fn main() {
    let mib: u64 = std::env::var("IPSR_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.bin");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut rng = XorShift::new(0x2545_f491_4f6c_dd1d);
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..mib {
            rng.fill(&mut buf);
            file.write_all(&buf).unwrap();
        }
        file.into_inner().unwrap().sync_all().unwrap();
    }
    let bytes = mib << 20;
    let rate = |secs: f64| bytes as f64 / (1 << 20) as f64 / secs;

    let start = Instant::now();
    let out = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "sha256sum failed");
    let sha = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let reader = BufReader::with_capacity(1 << 20, std::fs::File::open(&path).unwrap());
    let mut blocks = 0u64;
    let imported = unixfs::import(reader, Profile::V1_2025, |_block| {
        blocks += 1;
        Ok::<_, std::convert::Infallible>(())
    })
    .unwrap();
    let import = start.elapsed().as_secs_f64();
    assert_eq!(imported.size, bytes);

    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("VmHWM: ? kB")
        .trim_start_matches("VmHWM:")
        .trim();

    println!("file: {mib} MiB, root {} ({blocks} blocks)", imported.root);
    println!(
        "sha256sum:             {:8.1} MiB/s ({sha:.2} s)",
        rate(sha)
    );
    println!(
        "import unixfs-v1-2025: {:8.1} MiB/s ({import:.2} s)",
        rate(import)
    );
    println!(
        "ratio import/sha256sum: {:.0}% (target >= 70%)",
        100.0 * sha / import
    );
    println!("peak RSS (VmHWM): {hwm}");
}
