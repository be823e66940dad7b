//! The IPSR test kit: what the tests, benchmarks and the testnet driver of
//! every crate share, written once.
//!
//! | module | what |
//! |---|---|
//! | `proc` | [`Proc`]: a child process read line by line, killed on drop; [`output_within`]: a process run to its end, or killed after a limit |
//! | `redis` | [`RedisServer`], a private `redis-server`, plain or TLS; [`TestCerts`], a CA and a loopback server certificate made by `openssl`; [`redis_url`] of the shared one and [`unique_prefix`] for a test's keys in it |
//! | `redis_cluster` | [`RedisCluster`], a Redis Cluster of private `redis-server`s a test may kill and restart ([`ClusterOptions`], TLS among them); [`shared_cluster`], one per test process |
//! | `ports` | [`free_port`], [`free_base_port`] on loopback |
//! | `wait` | bounded waits: [`wait_until`] (async), [`wait_for`] and [`poll`] (blocking), all within [`TIMEOUT`] unless told |
//! | `data` | seeded test data: [`pattern`] bytes and the [`XorShift`] generator behind them; [`PatternReader`] for files too large to hold |
//! | `records` | one builder of signed records: [`release`], [`yank`], with [`key`], [`cid`] and the defaults [`PACKAGE`], [`CID`], [`T0`]; many at once: [`releases`]; bytes that never verify: [`tampered`] |
//! | `http` | [`agent`]: an HTTP client with a timeout that reports statuses as values; [`form`]: a `multipart/form-data` body |
//! | `procfs` | [`rss_kib`], [`status_kib`] and [`cpu_secs`] of a process, from `/proc` |
//! | `files` | [`dir_bytes`]: the size of a directory's files (a data dir on disk) |
//! | `flood` | [`IdleFlood`]: idle TCP connections from a chosen source address, reopened when closed; [`connect_from`] one connection from a chosen address |
//!
//! It depends on `ipsr-proto` only (never on the node, the indexer or the
//! gateway: their tests depend on it). Setup failures panic with what
//! failed; a test has nothing better to do with them.
//!
//! ```
//! use ipsr_testkit::{CID, T0, cid, key, release, yank};
//!
//! let author = key(1);
//! // com.example.app 1.1.0: version code 2, seq 20, created at T0 + 20.
//! let v2 = release(&author, "1.1.0").code(2).seq(20).cid(cid(2)).sign();
//! assert_eq!(v2.record().created_at(), T0 + 20);
//! let retraction = yank(&author, "1.1.0").seq(30).reason("crashes on start").sign();
//! assert_eq!(retraction.release_key(), v2.release_key());
//! // The defaults: version code 1, content CID.
//! assert_eq!(release(&author, "1.0.0").build().cid.to_string(), CID);
//! ```

mod data;
mod files;
mod flood;
mod http;
mod ports;
mod proc;
mod procfs;
mod records;
mod redis;
mod redis_cluster;
mod wait;

pub use data::{PatternReader, XorShift, pattern};
pub use files::dir_bytes;
pub use flood::{IdleFlood, connect_from};
pub use http::{AGENT_TIMEOUT, agent, agent_with_timeout, form, multipart};
pub use ports::{free_base_port, free_port};
pub use proc::{Proc, output_within};
pub use procfs::{cpu_secs, rss_kib, status_kib};
pub use records::{
    CID, PACKAGE, ReleaseBuilder, T0, YankBuilder, cid, key, release, releases, tampered, yank,
};
pub use redis::{RedisServer, TestCerts, redis_url, unique_prefix};
pub use redis_cluster::{ClusterOptions, RedisCluster, shared_cluster};
pub use wait::{TIMEOUT, poll, wait_for, wait_until};
