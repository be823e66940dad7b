//! The indexer over TLS (`rediss://`, `rediss+cluster://`): a private
//! `redis-server` and a Redis Cluster serving TLS only, with certificates
//! of a test CA and a password. The index trusts the CA given as
//! `ca_cert`; without it (the system's roots), with another CA or with a
//! wrong password the connection is refused.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::Running;
use ipsr_indexer::{Index, RedisConfig, RedisIndex, StoreIndex};
use ipsr_testkit::{
    ClusterOptions, RedisCluster, RedisServer, TestCerts, free_port, releases, unique_prefix,
};

const PASSWORD: &str = "tls-s3cret";

/// The longest a ping may take to answer or fail.
const PING_LIMIT: Duration = Duration::from_secs(30);

/// A TLS-only server requiring [`PASSWORD`], and its certificates.
fn tls_server() -> (TestCerts, RedisServer) {
    let certs = TestCerts::generate();
    let server = RedisServer::start_tls(free_port(), &certs, Some(PASSWORD));
    (certs, server)
}

/// The index's configuration: `url`, trusting `ca` (the system's roots
/// when `None`), a fresh prefix, a short response timeout.
fn config(url: &str, ca: Option<&Path>, name: &str) -> RedisConfig {
    let mut config = RedisConfig::new(url);
    config.ca_cert = ca.map(Path::to_path_buf);
    config.prefix = unique_prefix(name);
    config.response_timeout = Duration::from_secs(2);
    config
}

/// Pings with `config`: the answer, within 30 s.
async fn ping(config: &RedisConfig) -> Result<(), String> {
    let index = RedisIndex::open(config).map_err(|e| format!("open: {e}"))?;
    tokio::time::timeout(PING_LIMIT, index.ping())
        .await
        .unwrap_or_else(|_| panic!("no answer to a ping within {PING_LIMIT:?}"))
        .map_err(|e| e.to_string())
}

/// Pings with `config`, which must be refused: the error's text.
async fn refused(config: &RedisConfig) -> String {
    match ping(config).await {
        Ok(()) => panic!("{} was not refused", config.redacted_url()),
        Err(e) => {
            eprintln!("{} refused: {e}", config.redacted_url());
            e
        }
    }
}

/// Indexes 50 records of a fresh node with `config`; the index then
/// answers as the node's embedded store does.
async fn indexes_like_the_store(config: &RedisConfig) {
    let started = Instant::now();
    ping(config).await.unwrap();
    let index = RedisIndex::open(config).unwrap();
    let (_dir, node) = common::node().await;
    let running = Running::start(&node, index.clone());
    let records = releases(50);
    for r in records.iter().cloned() {
        node.publish(r).await.unwrap();
    }
    running.caught_up(&node).await;
    assert_eq!(
        running.metrics.records_indexed.load(Ordering::Relaxed) as usize,
        records.len()
    );
    let store = StoreIndex::new(node.store().clone());
    assert_eq!(index.stats().await.unwrap(), store.stats().await.unwrap());
    assert_eq!(
        index.recent(100).await.unwrap(),
        store.recent(100).await.unwrap()
    );
    assert_eq!(
        index.packages(None, 100).await.unwrap(),
        store.packages(None, 100).await.unwrap()
    );
    eprintln!(
        "{}: 50 records indexed and checked in {:?}",
        config.redacted_url(),
        started.elapsed()
    );
}

/// Whether `error` says that the server's certificate was not trusted.
fn about_the_certificate(error: &str) -> bool {
    error.to_lowercase().contains("certificate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_with_a_password_indexes_like_the_store() {
    let (certs, server) = tls_server();
    let url = server.url();
    assert_eq!(
        url,
        format!("rediss://:{PASSWORD}@127.0.0.1:{}", server.port)
    );
    indexes_like_the_store(&config(&url, Some(&certs.ca), "tls")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_is_refused_without_its_ca() {
    let (certs, server) = tls_server();
    let url = server.url();
    // The system's roots do not know the test CA.
    let error = refused(&config(&url, None, "system_roots")).await;
    assert!(about_the_certificate(&error), "{error}");
    // Nor does another CA.
    let other = TestCerts::generate();
    let error = refused(&config(&url, Some(&other.ca), "other_ca")).await;
    assert!(about_the_certificate(&error), "{error}");
    // Nor does plain Redis on a TLS port get an answer.
    let plain = url.replacen("rediss://", "redis://", 1);
    refused(&config(&plain, None, "plain")).await;
    // The CA given, it answers.
    ping(&config(&url, Some(&certs.ca), "right_ca"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_over_tls_is_refused() {
    let (certs, server) = tls_server();
    let wrong = server.url().replace(PASSWORD, "wrong");
    let error = refused(&config(&wrong, Some(&certs.ca), "wrong_password")).await;
    assert!(
        error.contains("WRONGPASS") || error.to_lowercase().contains("auth"),
        "{error}"
    );
    let none = server.url().replace(&format!(":{PASSWORD}@"), "");
    let error = refused(&config(&none, Some(&certs.ca), "no_password")).await;
    assert!(
        error.contains("NOAUTH") || error.to_lowercase().contains("auth"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_with_a_password_indexes_like_the_store() {
    let certs = TestCerts::generate();
    let started = Instant::now();
    let cluster = RedisCluster::start(ClusterOptions {
        masters: 3,
        password: Some(PASSWORD.into()),
        tls: Some(certs.clone()),
        ..ClusterOptions::default()
    });
    eprintln!(
        "TLS cluster of 3 masters healthy in {:?}",
        started.elapsed()
    );
    let url = cluster.url();
    assert!(
        url.starts_with(&format!("rediss+cluster://:{PASSWORD}@127.0.0.1:")),
        "{url}"
    );
    indexes_like_the_store(&config(&url, Some(&certs.ca), "tls_cluster")).await;
    let error = refused(&config(&url, None, "tls_cluster_system_roots")).await;
    assert!(about_the_certificate(&error), "{error}");
}
