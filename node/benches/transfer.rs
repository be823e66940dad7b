//! Benchmark: download of a release between `ipsr-node` processes on
//! loopback (Bitswap over TCP + noise + yamux), next to a plain TCP socket
//! copy of the same size on the same machine in the same run (the ceiling:
//! the median of copies right before and after the pin and at the end),
//! and the resident memory of the nodes during the transfer.
//!
//! Node a adds the file. Node b downloads it into its blockstore with
//! `PUT /v1/pins/{cid}` (the node-to-node figure: every block verified and
//! written with fsync); node c downloads it through `GET /v1/content/{cid}`
//! and the bench reads and hashes the HTTP body (the figure a client of the
//! API sees; the bench's own reading and hashing share the two cores).
//!
//! ```sh
//! cargo bench -p ipsr-node --bench transfer               # 256 MiB
//! IPSR_BENCH_MIB=64 cargo bench -p ipsr-node --bench transfer
//! ```
//!
//! It also prints the CPU time (user + system, from `/proc`) each node
//! spent per MiB during the pin, which is steadier than the rate on a
//! shared machine and shows which side a change helped.
//!
//! Next to the ceiling it measures a floor: the same bytes sealed and
//! opened with the cipher libp2p's transports use here and hashed with
//! SHA-256, by three threads and a socket with nothing else in between
//! (see [`floor`]). Any node that encrypts with that cipher and checks
//! every block does at least this work, so the floor shows how much of the
//! gap to raw TCP is the work itself and how much is the node.
//!
//! `IPSR_NODE_BIN=/path/to/ipsr-node` runs another build of the node (to
//! compare two builds in alternating runs of one bench binary).
//!
//! It prints its figures and asserts nothing (targets: at least 300 MiB/s,
//! at least a quarter of raw TCP, under 100 MiB RSS per node). Both
//! processes are killed when it ends, also on failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipsr_testkit::{XorShift, cpu_secs, rss_kib};
use ring::aead::{AES_256_GCM, CHACHA20_POLY1305};
use sha2::{Digest, Sha256};

mod common;

use common::{agent, env_usize, get_json, start};

const MIB: usize = 1024 * 1024;

/// `len` bytes from a seeded xorshift generator.
fn data(len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    XorShift::new(0x9e37_79b9_7f4a_7c15).fill(&mut out);
    out
}

/// Samples the peak RSS of `pids` every 20 ms until `stop` is set.
fn sample(
    pids: Vec<u32>,
    stop: Arc<AtomicBool>,
) -> (Vec<Arc<AtomicU64>>, std::thread::JoinHandle<()>) {
    let peaks: Vec<Arc<AtomicU64>> = pids.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    let out = peaks.clone();
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            for (pid, peak) in pids.iter().zip(&peaks) {
                peak.fetch_max(rss_kib(Some(*pid)).unwrap_or(0), Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (out, handle)
}

/// Copies `len` bytes over a loopback TCP connection with 1 MiB writes and
/// reads; returns MiB/s.
fn raw_tcp(len: usize) -> f64 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sender = std::thread::spawn(move || {
        let buf = vec![7u8; MIB];
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut sent = 0;
        while sent < len {
            let n = (len - sent).min(MIB);
            s.write_all(&buf[..n]).unwrap();
            sent += n;
        }
    });
    let (mut r, _) = listener.accept().unwrap();
    let start = Instant::now();
    let mut buf = vec![0u8; MIB];
    let mut got = 0;
    while got < len {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "short copy");
        got += n;
    }
    let secs = start.elapsed().as_secs_f64();
    sender.join().unwrap();
    len as f64 / MIB as f64 / secs
}

/// Plaintext bytes per noise transport message (65535 minus the 16-byte
/// tag), as libp2p-noise frames a stream.
const NOISE_FRAME: usize = 65535 - 16;

/// The least work an encrypted, verified block transfer has to do, with
/// nothing else: a sender thread seals each 1 MiB block in noise-sized
/// frames with `cipher` (ring's, as noise uses here) and writes them to a
/// loopback socket; a receiver thread reads and opens the frames and hands
/// each block to a third thread that hashes it with SHA-256 (as every
/// received block is checked against its CID). No multiplexer, no
/// protocol, no disk. Returns MiB/s.
///
/// libp2p's TCP transports encrypt with ChaCha20-Poly1305 here (noise's
/// only cipher; libp2p-tls offers it first), so that is the floor for
/// IPSR; the same floor with AES-256-GCM shows what the cipher alone
/// weighs on this CPU.
fn floor(len: usize, cipher: &'static ring::aead::Algorithm) -> f64 {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey};
    let key = move || LessSafeKey::new(UnboundKey::new(cipher, &[9u8; 32]).unwrap());
    let nonce = |n: u64| {
        let mut bytes = [0u8; 12];
        bytes[4..].copy_from_slice(&n.to_le_bytes());
        Nonce::assume_unique_for_key(bytes)
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sender = std::thread::spawn(move || {
        let key = key();
        let block = data(MIB);
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let mut out = Vec::with_capacity(MIB + 1024);
        let (mut sent, mut n) = (0, 0u64);
        while sent < len {
            out.clear();
            for chunk in block[..(len - sent).min(MIB)].chunks(NOISE_FRAME) {
                let start = out.len();
                out.extend_from_slice(&((chunk.len() + 16) as u16).to_be_bytes());
                out.extend_from_slice(chunk);
                let tag = key
                    .seal_in_place_separate_tag(nonce(n), Aad::empty(), &mut out[start + 2..])
                    .unwrap();
                out.extend_from_slice(tag.as_ref());
                n += 1;
                sent += chunk.len();
            }
            s.write_all(&out).unwrap();
        }
    });
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    for _ in 0..6 {
        empty_tx.send(Vec::with_capacity(MIB)).unwrap();
    }
    let hasher = std::thread::spawn(move || {
        let mut blocks = 0usize;
        for block in full_rx {
            std::hint::black_box(Sha256::digest(&block));
            blocks += 1;
            let _ = empty_tx.send(block);
        }
        blocks
    });
    let (mut r, _) = listener.accept().unwrap();
    let start = Instant::now();
    let key = key();
    let mut frame = vec![0u8; NOISE_FRAME + 16];
    let (mut got, mut n) = (0, 0u64);
    let mut block = empty_rx.recv().unwrap();
    while got < len {
        let mut head = [0u8; 2];
        r.read_exact(&mut head).unwrap();
        let body = &mut frame[..usize::from(u16::from_be_bytes(head))];
        r.read_exact(body).unwrap();
        let plain = key.open_in_place(nonce(n), Aad::empty(), body).unwrap();
        n += 1;
        got += plain.len();
        block.extend_from_slice(plain);
        if block.len() == MIB || got == len {
            full_tx.send(block).unwrap();
            block = empty_rx.recv().unwrap();
            block.clear();
        }
    }
    drop(full_tx);
    assert_eq!(hasher.join().unwrap(), len.div_ceil(MIB));
    let secs = start.elapsed().as_secs_f64();
    sender.join().unwrap();
    len as f64 / MIB as f64 / secs
}

/// Lowest, median and highest of three figures.
fn spread(mut figures: Vec<f64>) -> [f64; 3] {
    figures.sort_by(f64::total_cmp);
    [figures[0], figures[1], figures[2]]
}

fn main() {
    let mib = env_usize("IPSR_BENCH_MIB", 256);
    let len = mib * MIB;
    let base = tempfile::tempdir().unwrap();
    let agent = agent();

    let file = data(len);
    let expected = hex::encode(Sha256::digest(&file));
    let a = start(&base.path().join("a"), &[]);
    let b = start(&base.path().join("b"), std::slice::from_ref(&a.p2p));
    let c = start(&base.path().join("c"), std::slice::from_ref(&a.p2p));
    for node in [&b, &c] {
        while get_json(&agent, &format!("{}/v1/status", node.api))["peers"].as_u64() == Some(0) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let added_at = Instant::now();
    let mut response = agent
        .post(&format!("{}/v1/content", a.api))
        .header("content-type", "application/octet-stream")
        .send(&file[..])
        .unwrap();
    let added: serde_json::Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    let add_secs = added_at.elapsed().as_secs_f64();
    let cid = added["cid"]
        .as_str()
        .expect("the add answers a CID")
        .to_owned();
    drop(file);

    let stop = Arc::new(AtomicBool::new(false));
    let (peaks, sampler) = sample(vec![a.pid, b.pid], stop.clone());
    // The ceiling moves a lot on a shared machine: copy right before and
    // right after the pin and once more at the end, and take the median.
    let mut tcp = vec![raw_tcp(len)];
    let floors = || [floor(len, &CHACHA20_POLY1305), floor(len, &AES_256_GCM)];
    let mut bare = vec![floors()];
    let cpu_before = [cpu_secs(Some(a.pid)), cpu_secs(Some(b.pid))];
    let started = Instant::now();
    let pinned = agent
        .put(&format!("{}/v1/pins/{cid}", b.api))
        .send_empty()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let pin_secs = started.elapsed().as_secs_f64();
    let cpu_ms_per_mib = [
        (cpu_secs(Some(a.pid)) - cpu_before[0]) * 1000.0 / mib as f64,
        (cpu_secs(Some(b.pid)) - cpu_before[1]) * 1000.0 / mib as f64,
    ];
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert!(pinned.contains("\"fetched\""), "pin failed: {pinned}");
    tcp.push(raw_tcp(len));
    bare.push(floors());

    let started = Instant::now();
    let mut response = agent
        .get(&format!("{}/v1/content/{cid}", c.api))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200, "download refused");
    let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB];
    let mut got = 0usize;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        got += n;
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(got, len, "short download");
    assert_eq!(hex::encode(hasher.finalize()), expected, "bytes differ");

    let ipsr = mib as f64 / pin_secs;
    let http = mib as f64 / secs;
    tcp.push(raw_tcp(len));
    bare.push(floors());
    let [tcp_low, tcp, tcp_high] = spread(tcp);
    let bare = [0, 1].map(|i| spread(bare.iter().map(|f| f[i]).collect()));
    let (peak_a, peak_b) = (
        peaks[0].load(Ordering::Relaxed) as f64 / 1024.0,
        peaks[1].load(Ordering::Relaxed) as f64 / 1024.0,
    );
    println!("transfer of {mib} MiB ({cid})");
    println!(
        "  add on a (HTTP upload + import):  {:8.1} MiB/s",
        mib as f64 / add_secs
    );
    println!("  download a -> b (Bitswap, pin):   {ipsr:8.1} MiB/s   (target >= 300)");
    println!("  download a -> c (Bitswap + HTTP): {http:8.1} MiB/s");
    println!(
        "  raw loopback TCP copy:            {tcp:8.1} MiB/s   (median of 3: {tcp_low:.0}–{tcp_high:.0})"
    );
    println!(
        "  ratio IPSR / raw TCP:             {:8.3}       (target >= 0.25)",
        ipsr / tcp
    );
    for (name, [low, median, high]) in ["ChaCha20-Poly1305", "AES-256-GCM"].iter().zip(&bare) {
        println!(
            "  floor: TCP + {name:<17} + SHA-256: {median:8.1} MiB/s   (median of 3: {low:.0}–{high:.0}; {:.3} of raw TCP; IPSR {:.2} of it)",
            median / tcp,
            ipsr / median
        );
    }
    println!(
        "  CPU of the pin per MiB:           a {:.2} ms, b {:.2} ms (sender, receiver)",
        cpu_ms_per_mib[0], cpu_ms_per_mib[1]
    );
    println!(
        "  peak RSS during the download:     a {peak_a:.1} MiB, b {peak_b:.1} MiB (target < 100 each)"
    );
}
