//! Embeds IPSR nodes in a program, as a library: node A adds an app's bytes
//! and publishes a signed release; node B, connected to A only, receives the
//! record over the swarm, verifies it, then fetches the bytes by CID from A
//! over Bitswap (every block checked) and compares them.
//!
//! Run: `cargo run -p ipsr-example-publish-and-fetch`

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use ipsr_content::unixfs::Profile;
use ipsr_node::{Client, Config};
use ipsr_proto::{AuthorKey, ContentId, Release, ReleaseKey};

/// Starts a node on loopback with its data in `dir`.
async fn node(dir: &std::path::Path) -> anyhow::Result<Client> {
    Ok(ipsr_node::spawn(Config::local(dir.to_owned())).await?)
}

/// Polls `check` every 100 ms for up to 30 s.
async fn wait<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> anyhow::Result<T> {
    for _ in 0..300 {
        if let Some(value) = check().await {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("timed out waiting for {what}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dirs = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = node(dirs.0.path()).await?;
    let b = node(dirs.1.path()).await?;
    let addr = wait("A's address", async || a.listen_addrs().await.ok()?.pop()).await?;
    b.dial(addr).await?;
    println!(
        "node A {} and node B {} are connected",
        a.peer_id(),
        b.peer_id()
    );

    // The author's side, on A: the bytes as IPFS blocks, then a signed record.
    let app = Bytes::from(
        (0..2_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let imported = a
        .content()
        .add_bytes(app.clone(), Profile::V1_2025, None)
        .await?;
    let key = AuthorKey::generate()?;
    let mut release = Release::new(
        key.author_id(),
        "com.example.embedded".parse()?,
        "1.0.0".parse()?,
        1,
        ContentId::try_from(imported.root)?,
    );
    release.size = imported.size;
    release.metadata.title = "Embedded".into();
    let record = release.sign(&key)?;
    let wanted: ReleaseKey = record.release_key();
    a.publish(record).await?;
    println!("A published {wanted} with CID {}", imported.root);

    // B: the record arrives (gossip or sync) and is verified before it is kept.
    let state = wait("the record on B", async || {
        b.store().release(&wanted).ok().flatten()
    })
    .await?;
    let held = state
        .release()
        .and_then(|r| r.record().as_release())
        .context("B holds the release record")?;
    println!("B holds {wanted}: CID {}", held.cid);

    // B fetches the bytes by CID from whoever provides them (A).
    let (mut chunks, done) = b.content().cat(*held.cid.cid(), Vec::new());
    let mut fetched = Vec::with_capacity(app.len());
    while let Some(chunk) = chunks.recv().await {
        fetched.extend_from_slice(&chunk);
    }
    let report = done.await??;
    if fetched != app {
        bail!("the fetched bytes differ from the published ones");
    }
    println!(
        "B fetched {} bytes in {} blocks from the swarm: identical",
        fetched.len(),
        report.fetched
    );
    Ok(())
}
