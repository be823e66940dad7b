//! Request bodies: one far over the bound (a form that never contains its
//! boundary, sent without end) is refused with 413 once the bound is
//! crossed, in bounded memory, also several at once; a body that stalls
//! or drips is answered 408; an honest publish works afterwards.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsr_content::unixfs::{Importer, Profile};
use ipsr_proto::ContentId;
use ipsr_testkit::{agent, form, key, pattern, release};
use tokio::io::AsyncWriteExt;

use crate::Gateway;
use crate::wire::{ATTACKER, Answer, HONEST, Sending, exchange, get, publish_head, runtime};

const MIB: u64 = 1024 * 1024;
/// What each endless form sends at most.
const ENDLESS: u64 = 300 * MIB;
/// How many are sent at once.
const PARALLEL: usize = 4;
/// How much the gateway's resident memory may grow meanwhile: a few
/// chunks per connection, far below one body.
const RSS_BOUND_KIB: u64 = 48 * 1024;

/// Sends a chunked `multipart/form-data` body of `total` bytes that never
/// contains its boundary, 64 KiB at a time from one buffer, until the
/// gateway answers; returns the answer and the bytes written before it.
async fn endless_form(to: SocketAddr, total: u64) -> (Option<Answer>, u64) {
    let head = publish_head(
        to,
        "Content-Type: multipart/form-data; boundary=never-sent\r\nTransfer-Encoding: chunked\r\n",
    );
    let mut sending = Sending::start(ATTACKER, to, &head, b"", Duration::from_secs(60)).await;
    let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
    chunk.extend(std::iter::repeat_n(b'a', 64 * 1024));
    chunk.extend_from_slice(b"\r\n");
    let mut sent = 0u64;
    while sent < total && !sending.answered() {
        if sending.writer.write_all(&chunk).await.is_err() {
            break;
        }
        sent += 64 * 1024;
    }
    if sent >= total {
        let _ = sending.writer.write_all(b"0\r\n\r\n").await;
    }
    (sending.answer().await.0, sent)
}

#[test]
fn forms_far_over_the_bound_are_refused_early_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // Uploads on: the largest bound there is.
    let mut gateway = Gateway::start(dir.path(), &["--uploads-from-anyone"]);
    let to = gateway.addr();
    let rt = runtime();
    assert_eq!(
        rt.block_on(get(HONEST, to, "/healthz")).unwrap().status,
        200
    );
    // The peak resident memory while the attack runs, sampled.
    let rss = gateway.peak_rss();
    let before = rss.before;
    let started = Instant::now();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..PARALLEL)
            .map(|_| tokio::spawn(endless_form(to, ENDLESS)))
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    let elapsed = started.elapsed();
    let peak = rss.stop();
    eprintln!(
        "{PARALLEL} endless forms: RSS {before} KiB before, {peak} KiB at most; \
         written before the answer (MiB): {:?}; {elapsed:?}",
        results
            .iter()
            .map(|(_, sent)| sent / MIB)
            .collect::<Vec<_>>()
    );
    for (answer, sent) in &results {
        let answer = answer.as_ref().expect("an answer before the body ends");
        assert_eq!(answer.status, 413, "{answer:?}");
        assert_eq!(answer.code().as_deref(), Some("too_large"));
        // What the sockets' buffers took before the refusal, no more.
        assert!(
            *sent < 64 * MIB,
            "{} MiB written before the answer",
            sent / MIB
        );
    }
    assert!(
        peak.saturating_sub(before) < RSS_BOUND_KIB,
        "resident memory grew by {} KiB",
        peak - before
    );
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");

    // A Content-Length over the bound: 413 without a byte of the body.
    let head = publish_head(
        to,
        &format!("Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {ENDLESS}\r\n"),
    );
    let answer = rt
        .block_on(exchange(
            ATTACKER,
            to,
            head.as_bytes(),
            Duration::from_secs(10),
        ))
        .expect("an answer");
    assert_eq!(answer.status, 413);

    // An honest publish with content still works.
    honest_publish(&gateway);
}

/// Publishes a release with its content through `gateway`'s form, then
/// downloads it.
fn honest_publish(gateway: &Gateway) {
    let content = pattern(11, 2 * 1024 * 1024 + 5);
    let mut importer = Importer::new(Profile::V1_2025);
    let _ = importer.push(&content);
    let (imported, _) = importer.finish();
    let cid = ContentId::try_from(imported.root).unwrap();
    let k = key(21);
    let record = release(&k, "1.0.0")
        .cid(cid)
        .size(content.len() as u64)
        .sign();
    let (content_type, body) = form(&[("record", &record.to_bytes()), ("content", &content)]);
    let mut response = agent()
        .post(format!("{}/api/v1/publish", gateway.http))
        .header("content-type", &content_type)
        .send(&body[..])
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(status, 201, "{text}");
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reply["content_uploaded"], true);
    let download = format!(
        "{}{}",
        gateway.http,
        reply["links"]["download"].as_str().unwrap()
    );
    let mut response = agent().get(download).call().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response
        .body_mut()
        .with_config()
        .limit(16 * MIB)
        .read_to_vec()
        .unwrap();
    assert!(bytes == content, "the download is the content");
}

/// Sends `head` and the `first` bytes of a body, then one byte every
/// `drip` (never, when `None`) until answered; returns the answer and when
/// it came.
async fn stalled(
    to: SocketAddr,
    head: String,
    first: Vec<u8>,
    drip: Option<Duration>,
) -> (Option<Answer>, Duration) {
    let limit = Duration::from_secs(20);
    let mut sending = Sending::start(ATTACKER, to, &head, &first, limit).await;
    if let Some(drip) = drip {
        sending.drip(drip, limit).await;
    }
    sending.answer().await
}

#[test]
fn stalled_and_dripping_bodies_are_answered_408() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(
        dir.path(),
        &["--body-idle-timeout-secs", "1", "--body-timeout-secs", "3"],
    );
    let to = gateway.addr();
    let rt = runtime();
    let octet = publish_head(
        to,
        "Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n",
    );
    let multipart = publish_head(
        to,
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000\r\n",
    );
    let part = b"--b\r\nContent-Disposition: form-data; name=\"rec".to_vec();
    let (record, form, drip) = rt.block_on(async {
        tokio::join!(
            // Stops after a few bytes: the idle timeout.
            stalled(to, octet.clone(), vec![0u8; 10], None),
            stalled(to, multipart, part, None),
            // A byte every 300 ms, never idle for 1 s: the total timeout.
            stalled(to, octet, Vec::new(), Some(Duration::from_millis(300))),
        )
    });
    for (what, (answer, after)) in [("record", record), ("form", form), ("drip", drip)] {
        eprintln!(
            "{what}: {:?} after {after:?}",
            answer.as_ref().map(|a| a.status)
        );
        let answer = answer.unwrap_or_else(|| panic!("{what}: no answer within 20 s"));
        assert_eq!(answer.status, 408, "{what}: {answer:?}");
        assert_eq!(answer.code().as_deref(), Some("body_timeout"), "{what}");
        assert!(after < Duration::from_secs(15), "{what}: {after:?}");
    }
}
