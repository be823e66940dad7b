//! Identity documents between nodes (`docs/records.md`, sections 8 and 9):
//! gossip and sync carry them like records, and every node drops what a
//! revoked key signed.

#![allow(clippy::unwrap_used)]

use ipsr_node::Client;
use ipsr_proto::{AuthorKey, Identity, PackageKey, Signed, SignedIdentity, SignedRecord};
use ipsr_testkit::{release, wait_until, yank};

mod common;

fn doc(
    author: &AuthorKey,
    prev: Option<&SignedIdentity>,
    signers: &[&AuthorKey],
    admins: &[&AuthorKey],
    seq: u64,
    by: &AuthorKey,
) -> SignedIdentity {
    let ids = |keys: &[&AuthorKey]| {
        let mut ids: Vec<_> = keys.iter().map(|k| k.author_id()).collect();
        ids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        ids
    };
    Identity {
        prev: prev.map(|p| p.identity_id()),
        signers: ids(signers),
        admins: ids(admins),
        created_at: seq,
        seq,
        ..Identity::implicit(author.author_id())
    }
    .sign(&[by])
    .unwrap()
}

fn newest(node: &Client, key: &PackageKey) -> Option<SignedRecord> {
    node.store().newest(key).unwrap()
}

/// The story between three nodes: a thief's records signed with a
/// stolen signer key reach every node, the author's new identity document
/// removes them everywhere, and a node that joins afterwards never holds
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_every_node_and_a_late_joiner() {
    let (_da, a, a_addr) = common::node(|_| {}).await;
    let (_db, b, _) = common::node(|_| {}).await;
    b.dial(a_addr.clone()).await.unwrap();
    wait_until("a and b share the records topic", || async {
        !a.mesh_peers().await.unwrap().is_empty() && !b.mesh_peers().await.unwrap().is_empty()
    })
    .await;

    let main = AuthorKey::from_seed(&[21; 32]);
    let recovery = AuthorKey::from_seed(&[22; 32]);
    let laptop = AuthorKey::from_seed(&[23; 32]);
    let new = AuthorKey::from_seed(&[24; 32]);
    let genesis = doc(&main, None, &[&laptop], &[&main, &recovery], 10, &main);
    let v1 = release(&main, "1.0.0")
        .code(1)
        .seq(20)
        .build()
        .sign(&laptop)
        .unwrap();
    let thief = release(&main, "9.9.9")
        .code(u64::MAX)
        .seq(30)
        .build()
        .sign(&laptop)
        .unwrap();
    let thief_yank = yank(&main, "1.0.0").seq(30).build().sign(&laptop).unwrap();
    a.publish_signed(Signed::Identity(genesis.clone()))
        .await
        .unwrap();
    for r in [&v1, &thief, &thief_yank] {
        assert!(a.publish(r.clone()).await.unwrap().is_news());
    }
    let pkey = v1.record().package_key();
    wait_until("b took the thief's records", || async {
        newest(&b, &pkey).as_ref() == Some(&thief)
    })
    .await;

    // recovery replaces laptop, on node b; the author re-signs 1.0.0 on a.
    let rotated = doc(
        &main,
        Some(&genesis),
        &[&new],
        &[&main, &recovery],
        40,
        &recovery,
    );
    assert!(
        b.publish_signed(Signed::Identity(rotated))
            .await
            .unwrap()
            .is_news()
    );
    wait_until("a dropped what laptop signed", || async {
        newest(&a, &pkey).is_none() && a.store().record(&thief.id()).unwrap().is_none()
    })
    .await;
    let resigned = release(&main, "1.0.0")
        .code(1)
        .seq(50)
        .build()
        .sign(&new)
        .unwrap();
    assert!(a.publish(resigned.clone()).await.unwrap().is_news());
    for node in [&a, &b] {
        wait_until("1.0.0 is back, not yanked", || async {
            newest(node, &pkey).as_ref() == Some(&resigned)
        })
        .await;
        assert!(node.store().record(&thief_yank.id()).unwrap().is_none());
    }

    // A node that joins now catches up by sync: the documents, then the
    // re-signed release; the thief's records are held by no one.
    let (_dc, c, _) = common::node(|_| {}).await;
    c.dial(a_addr).await.unwrap();
    wait_until("c caught up", || async {
        newest(&c, &pkey).as_ref() == Some(&resigned)
    })
    .await;
    let author = main.author_id();
    assert_eq!(
        c.store().identity(&author).unwrap().identity(),
        a.store().identity(&author).unwrap().identity()
    );
    for node in [&a, &b, &c] {
        assert!(node.store().record(&thief.id()).unwrap().is_none());
    }
}
