//! Range requests (`docs/dev/abuse.md`, "Range requests"): a client asks
//! for the last byte of a large file again and again. Each answer must
//! cost the gateway about one leaf block and the nodes above it, not a
//! read of the file up to the byte.

use std::time::Duration;

use ipsr_testkit::{PatternReader, agent_with_timeout};

use super::{Gateway, procs};

const MIB: u64 = 1024 * 1024;

/// The file: 256 MiB under unixfs-v1-2025, 256 leaves of 1 MiB under its
/// root (`IPSR_ABUSE_RANGE_MIB` changes it; the bench measures 1 GiB).
fn size() -> u64 {
    std::env::var("IPSR_ABUSE_RANGE_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(256)
        * MIB
}

/// `bytes=-1` requests measured.
const REQUESTS: u32 = 20;

/// The most CPU time the gateway may spend on one `bytes=-1` answer. It
/// reads the root three times (the first-byte check, the size, the walk)
/// and one 1 MiB leaf, rehashing each: a few ms even in a debug build.
/// Reading up to the byte rehashes the whole file: about 0.4 s for 256 MiB.
const CPU_PER_REQUEST: f64 = 0.05;

#[test]
fn the_last_byte_of_a_large_file_costs_a_leaf_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gateway::start(dir.path(), &["--rate-limit", "0"]);
    let size = size();
    let cid = g.add(PatternReader::new(18, size), "unixfs-v1-2025");
    let middle = size / 2 - 10..size / 2 + MIB + 10;
    let expected = PatternReader::new(18, size).slices(&[0..16, middle.clone(), size - 1..size]);
    let url = format!("{}/ipfs/{cid}", g.http);
    let agent = agent_with_timeout(Duration::from_secs(60));
    let get = |range: &str| procs::get_range(&agent, &url, range);

    // Honest ranges are right: the start, a middle spanning three leaves.
    let (status, _, body) = get("bytes=0-15");
    assert_eq!((status, &body), (206, &expected[0]));
    let (status, _, body) = get(&format!("bytes={}-{}", middle.start, middle.end - 1));
    assert_eq!((status, &body), (206, &expected[1]));

    let before = g.cpu_secs();
    for _ in 0..REQUESTS {
        let (status, content_range, body) = get("bytes=-1");
        assert_eq!(status, 206);
        assert_eq!(
            content_range,
            format!("bytes {}-{}/{size}", size - 1, size - 1)
        );
        assert_eq!(body, expected[2]);
    }
    let per_request = (g.cpu_secs() - before) / f64::from(REQUESTS);
    println!(
        "bytes=-1 of {} MiB: {:.1} ms CPU a request",
        size / MIB,
        per_request * 1000.0
    );
    assert!(
        per_request < CPU_PER_REQUEST,
        "bytes=-1 of {} MiB cost {per_request:.3} CPU-s a request (bound {CPU_PER_REQUEST})",
        size / MIB
    );
    // The gateway still answers the whole file's first bytes at once.
    let (status, _, body) = get("bytes=0-15");
    assert_eq!((status, &body), (206, &expected[0]));
}
