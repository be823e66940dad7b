//! The whole story on a real 5-node testnet started by `testnet/up.sh`
//! (debug binaries), with the gateway on its own `redis-server`: the demo
//! script with its checks, then faults: `kill -9` of a node during a
//! publish, a node that was down while 50 releases were published, and the
//! gateway's Redis stopped and started again. Every process is stopped when
//! the test ends, also when it fails.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ipsr_proto::AuthorKey;
use ipsr_testkit::{RedisServer, TIMEOUT, agent, cid, free_base_port, free_port, poll, release};
use ipsr_testnet::{Testnet, binaries};

const NODES: usize = 5;

/// `package` 1.0.0 titled `Package {n}`, with content `cid(n)`.
fn record(key: &AuthorKey, package: &str, n: u64) -> Vec<u8> {
    release(key, "1.0.0")
        .package(package)
        .cid(cid(u32::try_from(n).unwrap()))
        .title(format!("Package {n}"))
        .sign()
        .to_bytes()
}

fn post(api: &str, record: &[u8]) -> Option<u16> {
    agent()
        .post(format!("{api}/v1/records"))
        .header("content-type", "application/octet-stream")
        .send(record)
        .ok()
        .map(|r| r.status().as_u16())
}

fn records(net: &Testnet, member: &str) -> Option<u64> {
    net.status(member)?["records"].as_u64()
}

/// Waits until every running member holds `want` records.
fn converge(net: &Testnet, members: &[String], want: u64, what: &str) {
    for m in members {
        let got = poll(TIMEOUT, || (records(net, m)? >= want).then_some(()));
        assert!(
            got.is_some(),
            "{what}: member {m} holds {:?} of {want} records",
            records(net, m)
        );
    }
}

#[test]
fn demo_then_faults() {
    let run = tempfile::tempdir().unwrap();
    let base = free_base_port(NODES as u16 + 1).expect("a free port range");
    let mut redis = RedisServer::start(free_port());
    let bin = binaries().unwrap_or_else(|e| panic!("{e}"));
    let net = Testnet::up(run.path(), NODES, base, Some(&redis.url()), &bin)
        .unwrap_or_else(|e| panic!("{e}"));
    let members: Vec<String> = (1..=NODES)
        .map(|i| i.to_string())
        .chain(["gateway".to_owned()])
        .collect();

    // 1. The user story, checked step by step by the script itself.
    let demo = net.script("demo.sh", &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(demo.contains("both copies are identical"), "{demo}");
    assert!(demo.contains("now give 1.0.0 again"), "{demo}");
    let status = net.script("status.sh", &[]).unwrap();
    assert_eq!(status.matches(" up ").count(), NODES + 1, "{status}");
    let after_demo = records(&net, "1").unwrap();
    converge(&net, &members, after_demo, "after the demo");

    // 2. kill -9 of node 3 while it publishes; it comes back and catches up.
    let key = AuthorKey::from_seed(&[3; 32]);
    let during = record(&key, "com.example.crash", 0);
    let api3 = net.api("3");
    let publisher = std::thread::spawn(move || post(&api3, &during));
    std::thread::sleep(Duration::from_millis(5));
    net.script("kill.sh", &["3"]).unwrap();
    let _ = publisher.join();
    let while_down = record(&key, "com.example.after", 1);
    assert_eq!(post(&net.api("1"), &while_down), Some(200));
    net.script("restart.sh", &["3"]).unwrap();
    // Whether or not the crashed publish was stored, every node agrees.
    let crashed_kept = poll(Duration::from_secs(5), || {
        let v = agent()
            .get(format!(
                "{}/v1/packages/{}/com.example.crash",
                net.api("1"),
                key.author_id()
            ))
            .call()
            .ok()?;
        (v.status() == 200).then_some(())
    })
    .is_some();
    let want = after_demo + 1 + u64::from(crashed_kept);
    converge(&net, &members, want, "after the crash");

    // 3. Node 5 is down while 50 releases are published; it has all of
    // them soon after it comes back.
    net.script("kill.sh", &["5"]).unwrap();
    let author = AuthorKey::from_seed(&[5; 32]);
    for n in 0..50u64 {
        let r = record(&author, &format!("com.example.batch{n}"), 100 + n);
        assert_eq!(
            post(&net.api(&(1 + n as usize % 4).to_string()), &r),
            Some(200)
        );
    }
    let want = want + 50;
    let up: Vec<String> = members.iter().filter(|m| *m != "5").cloned().collect();
    converge(&net, &up, want, "while node 5 is down");
    let back = Instant::now();
    net.script("restart.sh", &["5"]).unwrap();
    converge(&net, &["5".to_owned()], want, "node 5 after its restart");
    println!(
        "node 5 caught up on 50 releases {:.2} s after its restart began",
        back.elapsed().as_secs_f64()
    );

    // 4. The gateway's Redis stops (and loses everything: no persistence);
    // records keep coming; Redis starts again; the gateway ends with every
    // record.
    let port = redis.port;
    redis.stop();
    for n in 0..5u64 {
        let r = record(&author, &format!("com.example.late{n}"), 200 + n);
        assert_eq!(post(&net.api("2"), &r), Some(200));
    }
    let down = agent()
        .get(format!(
            "{}/api/v1/author/{}",
            net.http(),
            author.author_id()
        ))
        .call()
        .unwrap();
    assert_eq!(down.status(), 503, "Redis down: the gateway says so");
    let _redis = RedisServer::start(port);
    let listed = poll(TIMEOUT, || {
        let mut r = agent()
            .get(format!(
                "{}/api/v1/author/{}",
                net.http(),
                author.author_id()
            ))
            .call()
            .ok()?;
        let v: serde_json::Value = serde_json::from_reader(r.body_mut().as_reader()).ok()?;
        let n = v["packages"].as_array()?.len();
        (n == 55).then_some(n)
    });
    assert_eq!(listed, Some(55), "every package is back in Redis");

    // 5. down.sh stops every process it started.
    let pids: Vec<u32> = members.iter().filter_map(|m| net.pid(m)).collect();
    assert_eq!(pids.len(), NODES + 1);
    net.script("down.sh", &[]).unwrap();
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "pid {pid} still runs"
        );
    }
}
