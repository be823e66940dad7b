//! A read-only mirror node: an ordinary IPSR node (it validates, keeps and
//! passes on every record) that also pins every release of a list of
//! authors, so their apps stay available from it even when the authors'
//! own nodes are offline. This is the seeding policy an operator runs for
//! the authors they vouch for.
//!
//! Run: `cargo run -p ipsr-example-mirror -- --author k51… --bootstrap /ip4/…/p2p/…`

use std::collections::HashSet;
use std::time::Duration;

use clap::Parser;
use ipsr_node::Client;
use ipsr_node::run::{self, RunArgs};
use ipsr_proto::{AuthorId, Record, SignedRecord};
use tracing::{info, warn};

/// A read-only IPSR mirror: pins every release of the given authors.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// An author whose releases to pin; repeat for several.
    #[arg(long = "author", value_name = "AUTHOR", required = true)]
    authors: Vec<AuthorId>,
    #[command(flatten)]
    node: RunArgs,
}

/// How long one pin (a whole release fetched from the swarm) may take
/// before it is retried later.
const PIN_TIMEOUT: Duration = Duration::from_secs(600);
/// Log entries read at a time.
const PAGE: usize = 256;

/// The policy: the content to pin for a record, with its pin label, or
/// `None`. Release records of the listed authors are pinned; yanks change
/// nothing (a mirror keeps history: a yanked release stays downloadable by
/// its exact version).
fn to_pin(record: &SignedRecord, authors: &HashSet<AuthorId>) -> Option<(cid::Cid, String)> {
    match record.record() {
        Record::Release(r) if authors.contains(&r.author) => {
            Some((*r.cid.cid(), record.release_key().to_string()))
        }
        _ => None,
    }
}

/// Follows `node`'s record log from the start and pins what [`to_pin`]
/// picks; failed pins are retried on every later pass. Runs forever.
async fn mirror(node: Client, authors: HashSet<AuthorId>) {
    let mut head = node.log_head();
    let mut after = 0u64;
    let mut failed: Vec<(cid::Cid, String)> = Vec::new();
    loop {
        let store = node.store().clone();
        let page = tokio::task::spawn_blocking(move || store.log_after(after, PAGE)).await;
        let page = match page {
            Ok(Ok(page)) => page,
            Ok(Err(e)) => {
                warn!(error = %e, "cannot read the log");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                warn!(error = %e, "log reader failed");
                return;
            }
        };
        let mut todo: Vec<(cid::Cid, String)> = std::mem::take(&mut failed);
        for (_, entry) in &page.entries {
            // Identity documents carry no content to fetch.
            let ipsr_proto::Signed::Record(record) = entry else {
                continue;
            };
            todo.extend(to_pin(record, &authors));
        }
        // Past compacted entries too (records since superseded).
        after = page.next;
        for (cid, label) in todo {
            let pin = node.content().pin(cid, Some(label.clone()), Vec::new());
            match tokio::time::timeout(PIN_TIMEOUT, pin).await {
                Ok(Ok(report)) => info!(%label, %cid, fetched = report.fetched, "pinned"),
                Ok(Err(e)) => {
                    warn!(%label, %cid, error = %e, "cannot pin yet; will retry");
                    failed.push((cid, label));
                }
                Err(_) => {
                    warn!(%label, %cid, "pin timed out; will retry");
                    failed.push((cid, label));
                }
            }
        }
        if page.entries.len() < PAGE {
            // Caught up: wait for news (or retry failures after a while).
            let news = head.wait_for(|h| *h > after);
            let _ = tokio::time::timeout(Duration::from_secs(60), news).await;
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    run::init_logging();
    run::block_on(async {
        let running = run::start(run::settings(cli.node)?).await?;
        let authors: HashSet<AuthorId> = cli.authors.into_iter().collect();
        println!("mirroring {} author(s)", authors.len());
        let node = running.node.clone();
        running.until_stopped(mirror(node, authors)).await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;
    use ipsr_content::unixfs::Profile;
    use ipsr_node::Config;
    use ipsr_proto::{AuthorKey, ContentId, Release};

    use super::*;

    fn release(key: &AuthorKey, cid: ContentId, size: u64) -> SignedRecord {
        let mut r = Release::new(
            key.author_id(),
            "com.example.mirrored".parse().unwrap(),
            "1.0.0".parse().unwrap(),
            1,
            cid,
        );
        r.size = size;
        r.sign(key).unwrap()
    }

    /// Two nodes: an author publishes two releases (a listed author and
    /// another); the mirror pins exactly the listed author's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pins_the_listed_authors_releases_only() {
        let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let author = ipsr_node::spawn(Config::local(dirs.0.path().into()))
            .await
            .unwrap();
        let mirror_node = ipsr_node::spawn(Config::local(dirs.1.path().into()))
            .await
            .unwrap();
        let (listed, other) = (
            AuthorKey::from_seed(&[1; 32]),
            AuthorKey::from_seed(&[2; 32]),
        );
        let mut addrs = Vec::new();
        for _ in 0..100 {
            addrs = author.listen_addrs().await.unwrap();
            if !addrs.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        mirror_node.dial(addrs.pop().unwrap()).await.unwrap();
        let task = tokio::spawn(mirror(
            mirror_node.clone(),
            [listed.author_id()].into_iter().collect(),
        ));
        let a = author
            .content()
            .add_bytes(Bytes::from(vec![1u8; 300_000]), Profile::V1_2025, None)
            .await
            .unwrap();
        let b = author
            .content()
            .add_bytes(Bytes::from(vec![2u8; 1000]), Profile::V1_2025, None)
            .await
            .unwrap();
        author
            .publish(release(
                &listed,
                ContentId::try_from(a.root).unwrap(),
                a.size,
            ))
            .await
            .unwrap();
        author
            .publish(release(
                &other,
                ContentId::try_from(b.root).unwrap(),
                b.size,
            ))
            .await
            .unwrap();
        let mut pinned = false;
        for _ in 0..300 {
            let pins = mirror_node.content().pins().await.unwrap();
            if pins.iter().any(|p| p.root == a.root) {
                pinned = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(pinned, "the listed author's release is pinned");
        // Both records arrived; the other author's content is not pinned.
        assert_eq!(mirror_node.store().stats().unwrap().records, 2);
        let pins = mirror_node.content().pins().await.unwrap();
        assert!(!pins.iter().any(|p| p.root == b.root));
        assert!(mirror_node.content().stat(a.root).await.unwrap().complete);
        task.abort();
    }

    #[test]
    fn the_policy() {
        let listed = AuthorKey::from_seed(&[1; 32]);
        let authors = [listed.author_id()].into_iter().collect();
        let cid: ContentId = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
            .parse()
            .unwrap();
        let r = release(&listed, cid, 11);
        let (got, label) = to_pin(&r, &authors).unwrap();
        assert_eq!(got, *cid.cid());
        assert!(label.ends_with("/com.example.mirrored@1.0.0"), "{label}");
        let stranger = release(&AuthorKey::from_seed(&[2; 32]), cid, 11);
        assert_eq!(to_pin(&stranger, &authors), None);
        let yank = ipsr_proto::Yank::new(
            listed.author_id(),
            "com.example.mirrored".parse().unwrap(),
            "1.0.0".parse().unwrap(),
            "x".into(),
        )
        .sign(&listed)
        .unwrap();
        assert_eq!(to_pin(&yank, &authors), None);
    }
}
