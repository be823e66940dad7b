//! Bitswap between in-process swarms on loopback TCP (noise + yamux), each
//! driven by its own task, each with an in-memory block source.
//!
//! ```text
//!   A (client, Bitswap) ──── B (server, Bitswap, holds blocks)
//!   │
//!   └──── C (raw libp2p-stream peer: hand-made, sometimes hostile, bytes)
//! ```
//!
//! Every wait is bounded by `tokio::time::timeout`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cid::Cid;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use ipsr_content::Block;
use ipsr_content::bitswap::{
    Bitswap, BitswapConfig, BlockSource, MAX_MESSAGE_SIZE, PROTOCOL, WantError,
};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Stream, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

/// The longest a test waits for one thing.
const T: Duration = Duration::from_secs(30);
const RAW: u64 = 0x55;

#[derive(Default)]
struct MemSource(Mutex<HashMap<Cid, Block>>);

impl MemSource {
    fn insert(&self, block: Block) {
        self.0.lock().unwrap().insert(*block.cid(), block);
    }
}

impl BlockSource for MemSource {
    fn get(&self, cid: &Cid) -> Option<Block> {
        self.0.lock().unwrap().get(cid).cloned()
    }
    fn size_of(&self, cid: &Cid) -> Option<u64> {
        self.0
            .lock()
            .unwrap()
            .get(cid)
            .map(|b| b.data().len() as u64)
    }
}

enum Cmd {
    Dial(Multiaddr, PeerId, oneshot::Sender<()>),
}

struct Node {
    peer: PeerId,
    addr: Multiaddr,
    control: libp2p_stream::Control,
    bitswap: Option<Bitswap>,
    source: Arc<MemSource>,
    cmd: mpsc::Sender<Cmd>,
    task: tokio::task::JoinHandle<()>,
}

impl Node {
    fn bitswap(&self) -> &Bitswap {
        self.bitswap.as_ref().unwrap()
    }

    async fn connect(&self, other: &Node) {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Dial(other.addr.clone(), other.peer, tx))
            .await
            .unwrap();
        timeout(T, rx).await.unwrap().unwrap();
    }
}

/// A swarm on 127.0.0.1, with Bitswap unless `raw`.
async fn node(raw: bool, config: BitswapConfig) -> Node {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let addr = timeout(T, async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    })
    .await
    .unwrap();
    let peer = *swarm.local_peer_id();
    let control = swarm.behaviour().new_control();
    let source = Arc::new(MemSource::default());
    let bitswap = (!raw).then(|| {
        let (bitswap, actor) = Bitswap::new(control.clone(), source.clone(), config);
        tokio::spawn(actor);
        bitswap
    });
    let (cmd, mut rx) = mpsc::channel(8);
    let events_bitswap = bitswap.clone();
    let task = tokio::spawn(async move {
        let mut dials: HashMap<PeerId, Vec<oneshot::Sender<()>>> = HashMap::new();
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        for tx in dials.remove(&peer_id).unwrap_or_default() {
                            let _ = tx.send(());
                        }
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                        if let Some(b) = &events_bitswap {
                            b.peer_disconnected(peer_id);
                        }
                    }
                    _ => {}
                },
                Some(cmd) = rx.recv() => match cmd {
                    Cmd::Dial(addr, peer, tx) => {
                        if swarm.is_connected(&peer) {
                            let _ = tx.send(());
                        } else {
                            dials.entry(peer).or_default().push(tx);
                            swarm.dial(addr.with(Protocol::P2p(peer))).unwrap();
                        }
                    }
                },
            }
        }
    });
    Node {
        peer,
        addr,
        control,
        bitswap,
        source,
        cmd,
        task,
    }
}

async fn pair() -> (Node, Node) {
    let a = node(false, BitswapConfig::default()).await;
    let b = node(false, BitswapConfig::default()).await;
    a.connect(&b).await;
    (a, b)
}

fn block(data: impl Into<Vec<u8>>) -> Block {
    Block::hash(cid::Version::V1, RAW, data.into()).unwrap()
}

fn varint(n: usize) -> Vec<u8> {
    let mut buf = unsigned_varint::encode::usize_buffer();
    unsigned_varint::encode::usize(n, &mut buf).to_vec()
}

/// `uvarint(len) ‖ body`.
fn frame(body: &[u8]) -> Vec<u8> {
    [varint(body.len()), body.to_vec()].concat()
}

/// A length-delimited protobuf field (tag < 16).
fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
    [vec![(tag << 3) | 2], varint(bytes.len()), bytes.to_vec()].concat()
}

/// `Message { payload: [Block { prefix, data }] }`.
fn payload_message(prefix: &[u8], data: &[u8]) -> Vec<u8> {
    field(3, &[field(1, prefix), field(2, data)].concat())
}

/// `Message { wantlist: { entries: [{ block: cid, wantType: Block }] } }`
/// (sendDontHave false).
fn want_message(cid: &Cid) -> Vec<u8> {
    field(1, &field(1, &field(1, &cid.to_bytes())))
}

async fn read_raw_frame(stream: &mut Stream) -> Vec<u8> {
    let mut len = 0usize;
    for i in 0.. {
        let mut byte = [0u8];
        stream.read_exact(&mut byte).await.unwrap();
        len |= usize::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.unwrap();
    body
}

/// Sends one block (`prefix`, `data`) in a message of its own on `out`.
async fn send_block(out: &mut Stream, prefix: &[u8], data: &[u8]) {
    out.write_all(&frame(&payload_message(prefix, data)))
        .await
        .unwrap();
    out.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetches_a_verified_block() {
    let (a, b) = pair().await;
    let x = block(b"hello bitswap".to_vec());
    b.source.insert(x.clone());
    let got = timeout(T, a.bitswap().want_block(b.peer, *x.cid()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, x);
    let stats = a.bitswap().stats();
    assert_eq!(stats.blocks_received, 1);
    assert_eq!(stats.bytes_received, 13);
    assert_eq!(b.bitswap().stats().blocks_sent, 1);
    // The gauge is refreshed after the actor handled the answer.
    timeout(T, async {
        while a.bitswap().stats().wants_in_flight != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dont_have_and_want_have() {
    let (a, b) = pair().await;
    let present = block(vec![7u8; 100_000]);
    let small = block(b"small".to_vec());
    let missing = block(b"nobody has this".to_vec());
    b.source.insert(present.clone());
    b.source.insert(small.clone());
    let bs = a.bitswap();
    let missing_block = timeout(T, bs.want_block(b.peer, *missing.cid()))
        .await
        .unwrap();
    assert_eq!(missing_block, Err(WantError::DontHave));
    let have = timeout(T, bs.want_have(b.peer, *present.cid()))
        .await
        .unwrap();
    assert_eq!(have, Ok(true));
    // A small block may come as the block itself: still "true".
    let have_small = timeout(T, bs.want_have(b.peer, *small.cid()))
        .await
        .unwrap();
    assert_eq!(have_small, Ok(true));
    let have_missing = timeout(T, bs.want_have(b.peer, *missing.cid()))
        .await
        .unwrap();
    assert_eq!(have_missing, Ok(false));
    assert_eq!(a.bitswap().stats().bad_blocks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_wants_complete() {
    let (a, b) = pair().await;
    let blocks: Vec<Block> = (0..200u32)
        .map(|i| {
            let mut data = vec![0u8; 256 * 1024];
            for (j, chunk) in data.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&(i.wrapping_mul(2_654_435_761) ^ j as u32).to_le_bytes());
            }
            block(data)
        })
        .collect();
    for x in &blocks {
        b.source.insert(x.clone());
    }
    let bs = a.bitswap().clone();
    let wants = blocks.iter().map(|x| {
        let bs = bs.clone();
        let cid = *x.cid();
        let peer = b.peer;
        async move { bs.want_block(peer, cid).await }
    });
    let got = timeout(Duration::from_secs(120), futures::future::join_all(wants))
        .await
        .unwrap();
    for (x, got) in blocks.iter().zip(got) {
        assert_eq!(&got.unwrap(), x);
    }
    let stats = a.bitswap().stats();
    assert_eq!(stats.blocks_received, 200);
    assert_eq!(stats.bytes_received, 200 * 256 * 1024);
}

/// C answers A's want with bytes that are not the wanted block, then (in a
/// second round) with a valid block A never asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_blocks_from_a_malicious_peer() {
    let a = node(false, BitswapConfig::default()).await;
    let mut c = node(true, BitswapConfig::default()).await;
    a.connect(&c).await;
    let mut incoming = c.control.accept(PROTOCOL).unwrap();
    let x = block(b"the wanted block".to_vec());
    let mut kept = Vec::new();
    for round in 0..2 {
        let bs = a.bitswap().clone();
        let (peer, cid) = (c.peer, *x.cid());
        let want = tokio::spawn(async move { bs.want_block(peer, cid).await });
        // A's want arrives on the stream A opened (first round only; the
        // stream is reused afterwards).
        let mut inbound = if round == 0 {
            let (from, s) = timeout(T, incoming.next()).await.unwrap().unwrap();
            assert_eq!(from, a.peer);
            Some(s)
        } else {
            None
        };
        if let Some(s) = inbound.as_mut() {
            let want_frame = timeout(T, read_raw_frame(s)).await.unwrap();
            assert!(!want_frame.is_empty());
        }
        let mut out = timeout(T, c.control.open_stream(a.peer, PROTOCOL))
            .await
            .unwrap()
            .unwrap();
        let body = if round == 0 {
            // The prefix of X with other bytes: hashes to some other CID.
            payload_message(&[0x01, 0x55, 0x12, 0x20], b"not the wanted block")
        } else {
            // A valid block, never wanted.
            let y = block(b"unsolicited".to_vec());
            payload_message(&[0x01, 0x55, 0x12, 0x20], y.data())
        };
        out.write_all(&frame(&body)).await.unwrap();
        out.flush().await.unwrap();
        let result = timeout(T, want).await.unwrap().unwrap();
        assert_eq!(result, Err(WantError::BadBlock), "round {round}");
        assert_eq!(a.bitswap().stats().bad_blocks, round + 1);
        // Keep C's end of A's stream open for the next round.
        kept.extend(inbound);
    }
}

/// Waits until `f` holds, polling; panics after `T`.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    timeout(T, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// Reads from `stream` until it ends (EOF or reset); returns what it read.
async fn read_to_end_or_reset(stream: &mut Stream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = timeout(T, stream.read_to_end(&mut got)).await.unwrap();
    got
}

/// A correct block that arrives again, after its want was answered or
/// cancelled, or from a peer it was not asked of while another peer was, is
/// a duplicate: counted, ignored, and the sender keeps its wants.
///
/// ```text
///   B (real, holds W) ── A ── C (raw: sends X twice, a late Z, W unasked)
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_correct_blocks_are_not_bad_blocks() {
    let a = node(false, BitswapConfig::default()).await;
    let b = node(false, BitswapConfig::default()).await;
    let mut c = node(true, BitswapConfig::default()).await;
    a.connect(&b).await;
    a.connect(&c).await;
    let mut incoming = c.control.accept(PROTOCOL).unwrap();
    let raw = [0x01, 0x55, 0x12, 0x20];
    let bs = a.bitswap().clone();

    // X: C sends it twice in one message, then once more in another.
    let x = block(b"sent twice".to_vec());
    let want = tokio::spawn({
        let (bs, peer, cid) = (bs.clone(), c.peer, *x.cid());
        async move { bs.want_block(peer, cid).await }
    });
    let (_, mut wants) = timeout(T, incoming.next()).await.unwrap().unwrap();
    timeout(T, read_raw_frame(&mut wants)).await.unwrap();
    let mut out = timeout(T, c.control.open_stream(a.peer, PROTOCOL))
        .await
        .unwrap()
        .unwrap();
    let twice = [
        payload_message(&raw, x.data()),
        payload_message(&raw, x.data()),
    ]
    .concat();
    out.write_all(&frame(&twice)).await.unwrap();
    send_block(&mut out, &raw, x.data()).await;
    assert_eq!(timeout(T, want).await.unwrap().unwrap(), Ok(x.clone()));
    eventually("two duplicates of X", || {
        a.bitswap().stats().duplicate_blocks == 2
    })
    .await;

    // Z: A gives up on it (the future is dropped, a cancel goes out), then
    // C's answer arrives anyway.
    let z = block(b"late after a cancel".to_vec());
    let dropped = tokio::spawn({
        let (bs, peer, cid) = (bs.clone(), c.peer, *z.cid());
        async move { bs.want_block(peer, cid).await }
    });
    timeout(T, read_raw_frame(&mut wants)).await.unwrap();
    dropped.abort();
    // The cancel reaches C: A has forgotten the want.
    timeout(T, read_raw_frame(&mut wants)).await.unwrap();
    send_block(&mut out, &raw, z.data()).await;
    eventually("the late Z counted as a duplicate", || {
        a.bitswap().stats().duplicate_blocks == 3
    })
    .await;

    // W: A asked B for it and got it; C sends it too, unasked.
    let w = block(b"asked of B".to_vec());
    b.source.insert(w.clone());
    let got = timeout(T, bs.want_block(b.peer, *w.cid())).await.unwrap();
    assert_eq!(got, Ok(w.clone()));
    send_block(&mut out, &raw, w.data()).await;
    eventually("W from C counted as a duplicate", || {
        a.bitswap().stats().duplicate_blocks == 4
    })
    .await;

    // None of it was held against C: a new want to it still completes.
    let y = block(b"still trusted".to_vec());
    let want = tokio::spawn({
        let (bs, peer, cid) = (bs.clone(), c.peer, *y.cid());
        async move { bs.want_block(peer, cid).await }
    });
    timeout(T, read_raw_frame(&mut wants)).await.unwrap();
    send_block(&mut out, &raw, y.data()).await;
    assert_eq!(timeout(T, want).await.unwrap().unwrap(), Ok(y));
    let stats = a.bitswap().stats();
    assert_eq!(stats.bad_blocks, 0);
    assert_eq!(stats.duplicate_blocks, 4);
    assert_eq!(stats.blocks_received, 7);
}

/// A block over 2 MiB (in a message under 4 MiB) is a bad block, whatever
/// was wanted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_block_is_a_bad_block() {
    let a = node(false, BitswapConfig::default()).await;
    let mut c = node(true, BitswapConfig::default()).await;
    a.connect(&c).await;
    let mut incoming = c.control.accept(PROTOCOL).unwrap();
    let data = vec![9u8; ipsr_content::MAX_BLOCK_SIZE + 1];
    // The CID of those bytes, as C would claim it.
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(&data)
    };
    let mh = multihash::Multihash::<64>::wrap(0x12, &digest).unwrap();
    let cid = Cid::new_v1(RAW, mh);
    let bs = a.bitswap().clone();
    let want = tokio::spawn({
        let peer = c.peer;
        async move { bs.want_block(peer, cid).await }
    });
    let (_, mut wants) = timeout(T, incoming.next()).await.unwrap().unwrap();
    timeout(T, read_raw_frame(&mut wants)).await.unwrap();
    let mut out = timeout(T, c.control.open_stream(a.peer, PROTOCOL))
        .await
        .unwrap()
        .unwrap();
    let body = payload_message(&[0x01, 0x55, 0x12, 0x20], &data);
    assert!(body.len() < MAX_MESSAGE_SIZE);
    out.write_all(&frame(&body)).await.unwrap();
    out.flush().await.unwrap();
    assert_eq!(
        timeout(T, want).await.unwrap().unwrap(),
        Err(WantError::BadBlock)
    );
    let stats = a.bitswap().stats();
    assert_eq!(stats.bad_blocks, 1);
    assert_eq!(stats.duplicate_blocks, 0);
}

/// Opens a stream from raw `c` to `a`, asks for `x` on it and waits for
/// the answer on `answers` (the stream `a` opened to `c`, taken from
/// `incoming` the first time): proof that `a` reads the stream.
/// libp2p-stream drops a stream that arrives while the one before still
/// waits for Bitswap to take it, so a test opens the next stream only after
/// this.
async fn open_and_use(
    c: &mut Node,
    a: &Node,
    incoming: &mut libp2p_stream::IncomingStreams,
    answers: &mut Option<Stream>,
    x: &Block,
) -> Stream {
    let mut s = timeout(T, c.control.open_stream(a.peer, PROTOCOL))
        .await
        .unwrap()
        .unwrap();
    s.write_all(&frame(&want_message(x.cid()))).await.unwrap();
    s.flush().await.unwrap();
    if answers.is_none() {
        let (from, stream) = timeout(T, incoming.next()).await.unwrap().unwrap();
        assert_eq!(from, a.peer);
        *answers = Some(stream);
    }
    let body = timeout(T, read_raw_frame(answers.as_mut().unwrap()))
        .await
        .unwrap();
    assert_eq!(body, payload_message(&[0x01, 0x55, 0x12, 0x20], x.data()));
    s
}

/// A peer may read at most `max_inbound_streams_per_peer` streams at once:
/// one more is reset at once and counted; the others keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inbound_streams_are_capped_per_peer() {
    let config = BitswapConfig {
        max_inbound_streams_per_peer: 2,
        ..BitswapConfig::default()
    };
    let a = node(false, config).await;
    let mut c = node(true, BitswapConfig::default()).await;
    c.connect(&a).await;
    let mut incoming = c.control.accept(PROTOCOL).unwrap();
    let blocks: Vec<Block> = (0..3u8).map(|i| block(vec![i; 1000])).collect();
    for x in &blocks {
        a.source.insert(x.clone());
    }
    let mut answers = None;
    let first = open_and_use(&mut c, &a, &mut incoming, &mut answers, &blocks[0]).await;
    let mut second = open_and_use(&mut c, &a, &mut incoming, &mut answers, &blocks[1]).await;
    let mut third = timeout(T, c.control.open_stream(a.peer, PROTOCOL))
        .await
        .unwrap()
        .unwrap();
    let _ = third
        .write_all(&frame(&want_message(blocks[2].cid())))
        .await;
    let _ = third.flush().await;
    eventually("one refused stream", || {
        a.bitswap().stats().streams_refused == 1
    })
    .await;
    // The third stream is reset: C's read ends instead of hanging.
    assert!(read_to_end_or_reset(&mut third).await.is_empty());
    // The first two are still read: the want sent on the third is sent
    // again on the second, and answered.
    second
        .write_all(&frame(&want_message(blocks[2].cid())))
        .await
        .unwrap();
    second.flush().await.unwrap();
    let body = timeout(T, read_raw_frame(answers.as_mut().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        body,
        payload_message(&[0x01, 0x55, 0x12, 0x20], blocks[2].data())
    );
    drop(first);
    let stats = a.bitswap().stats();
    assert_eq!(stats.streams_refused, 1);
    assert_eq!(stats.protocol_errors, 0);
}

/// An inbound stream on which nothing arrives for the idle timeout is
/// closed, whether it falls silent between messages or stops inside a
/// frame that announced 4 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_inbound_streams_are_closed() {
    let config = BitswapConfig {
        inbound_idle_timeout: Duration::from_secs(1),
        ..BitswapConfig::default()
    };
    let a = node(false, config).await;
    let mut c = node(true, BitswapConfig::default()).await;
    c.connect(&a).await;
    let mut incoming = c.control.accept(PROTOCOL).unwrap();
    let blocks: Vec<Block> = (0..2u8).map(|i| block(vec![i; 1000])).collect();
    for x in &blocks {
        a.source.insert(x.clone());
    }
    let mut answers = None;
    let mut silent = open_and_use(&mut c, &a, &mut incoming, &mut answers, &blocks[0]).await;
    let mut stalled = open_and_use(&mut c, &a, &mut incoming, &mut answers, &blocks[1]).await;
    let mut bytes = varint(MAX_MESSAGE_SIZE);
    bytes.push(0x0a);
    stalled.write_all(&bytes).await.unwrap();
    stalled.flush().await.unwrap();
    // Both end on C's side (A dropped them) without C doing anything.
    assert!(read_to_end_or_reset(&mut silent).await.is_empty());
    assert!(read_to_end_or_reset(&mut stalled).await.is_empty());
    eventually("two idle streams closed", || {
        a.bitswap().stats().streams_idle_closed == 2
    })
    .await;
    assert_eq!(a.bitswap().stats().protocol_errors, 0);
}

/// A closes its own outbound stream after `outbound_idle` with nothing to
/// send (a clean close, not a reset), and opens a new one for the next want.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_outbound_stream_is_closed_and_reopened() {
    let config = BitswapConfig {
        outbound_idle: Duration::from_millis(500),
        ..BitswapConfig::default()
    };
    let a = node(false, config).await;
    let mut c = node(true, BitswapConfig::default()).await;
    a.connect(&c).await;
    let mut incoming = c.control.accept(PROTOCOL).unwrap();
    let x = block(b"first".to_vec());
    let y = block(b"second".to_vec());
    let bs = a.bitswap().clone();
    let first = tokio::spawn({
        let (bs, peer, cid) = (bs.clone(), c.peer, *x.cid());
        async move { bs.want_block(peer, cid).await }
    });
    let (_, mut s1) = timeout(T, incoming.next()).await.unwrap().unwrap();
    timeout(T, read_raw_frame(&mut s1)).await.unwrap();
    let mut out = timeout(T, c.control.open_stream(a.peer, PROTOCOL))
        .await
        .unwrap()
        .unwrap();
    send_block(&mut out, &[0x01, 0x55, 0x12, 0x20], x.data()).await;
    assert_eq!(timeout(T, first).await.unwrap().unwrap(), Ok(x));
    // Nothing more to send: A closes the stream; C reads a clean end.
    let mut rest = Vec::new();
    timeout(T, s1.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
    // The next want goes out on a new stream.
    let second = tokio::spawn({
        let (bs, peer, cid) = (bs.clone(), c.peer, *y.cid());
        async move { bs.want_block(peer, cid).await }
    });
    let (_, mut s2) = timeout(T, incoming.next()).await.unwrap().unwrap();
    assert!(
        !timeout(T, read_raw_frame(&mut s2))
            .await
            .unwrap()
            .is_empty()
    );
    send_block(&mut out, &[0x01, 0x55, 0x12, 0x20], y.data()).await;
    assert_eq!(timeout(T, second).await.unwrap().unwrap(), Ok(y));
}

/// C sends a frame announcing 4 MiB + 1 bytes: A refuses it without
/// reading it, and keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_frame_is_refused() {
    let (a, b) = pair().await;
    let mut c = node(true, BitswapConfig::default()).await;
    c.connect(&a).await;
    let mut out = timeout(T, c.control.open_stream(a.peer, PROTOCOL))
        .await
        .unwrap()
        .unwrap();
    let mut bytes = varint(MAX_MESSAGE_SIZE + 1);
    bytes.extend_from_slice(&[0u8; 1024]);
    timeout(T, out.write_all(&bytes)).await.unwrap().unwrap();
    timeout(T, out.flush()).await.unwrap().unwrap();
    timeout(T, async {
        while a.bitswap().stats().protocol_errors == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    // A still serves and fetches.
    let x = block(b"still alive".to_vec());
    b.source.insert(x.clone());
    let got = timeout(T, a.bitswap().want_block(b.peer, *x.cid()))
        .await
        .unwrap();
    assert_eq!(got, Ok(x));
}

/// C never answers and then goes away: A's want fails with Disconnected
/// long before its 60 s timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disconnect_mid_want_fails_promptly() {
    let config = BitswapConfig {
        want_timeout: Duration::from_secs(60),
        ..BitswapConfig::default()
    };
    let a = node(false, config).await;
    let mut c = node(true, BitswapConfig::default()).await;
    a.connect(&c).await;
    let mut incoming = c.control.accept(PROTOCOL).unwrap();
    let x = block(b"never answered".to_vec());
    let bs = a.bitswap().clone();
    let (peer, cid) = (c.peer, *x.cid());
    let want = tokio::spawn(async move { bs.want_block(peer, cid).await });
    let (_, mut s) = timeout(T, incoming.next()).await.unwrap().unwrap();
    timeout(T, read_raw_frame(&mut s)).await.unwrap();
    // C's swarm goes away: the connection closes.
    c.task.abort();
    drop(s);
    drop(incoming);
    let result = timeout(Duration::from_secs(10), want)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Err(WantError::Disconnected));
}

/// C wants X from B without sendDontHave; B lacks X, so it stays silent and
/// remembers the want. When X is added, B sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn block_added_serves_a_remembered_want() {
    let b = node(false, BitswapConfig::default()).await;
    let mut c = node(true, BitswapConfig::default()).await;
    c.connect(&b).await;
    let mut incoming = c.control.accept(PROTOCOL).unwrap();
    let x = block(vec![42u8; 300_000]);
    let mut out = timeout(T, c.control.open_stream(b.peer, PROTOCOL))
        .await
        .unwrap()
        .unwrap();
    out.write_all(&frame(&want_message(x.cid()))).await.unwrap();
    out.flush().await.unwrap();
    timeout(T, async {
        while b.bitswap().stats().peer_wants == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    b.source.insert(x.clone());
    b.bitswap().block_added(*x.cid());
    let (from, mut s) = timeout(T, incoming.next()).await.unwrap().unwrap();
    assert_eq!(from, b.peer);
    let body = timeout(T, read_raw_frame(&mut s)).await.unwrap();
    assert_eq!(body, payload_message(&[0x01, 0x55, 0x12, 0x20], x.data()));
    assert_eq!(b.bitswap().stats().peer_wants, 0);
}

/// Throughput with 1 MiB blocks and 32 wants in flight. Run with
/// `cargo test --release -p ipsr-node --test bitswap -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement; run in release"]
async fn throughput_1mib_blocks() {
    let (a, b) = pair().await;
    let blocks: Vec<Block> = (0..512u32)
        .map(|i| {
            let mut data = vec![0u8; 1 << 20];
            data[..4].copy_from_slice(&i.to_le_bytes());
            block(data)
        })
        .collect();
    for x in &blocks {
        b.source.insert(x.clone());
    }
    let bs = a.bitswap().clone();
    let start = std::time::Instant::now();
    let fetched = futures::stream::iter(blocks.iter().map(|x| {
        let bs = bs.clone();
        let (peer, cid) = (b.peer, *x.cid());
        async move { bs.want_block(peer, cid).await.unwrap() }
    }))
    .buffer_unordered(32)
    .count();
    let n = timeout(Duration::from_secs(300), fetched).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(n, 512);
    println!("512 MiB in {secs:.2} s: {:.0} MiB/s", 512.0 / secs);
}
