//! Bitswap 1.2.0 messages: the protobuf schema, CID prefixes, framing, and
//! the typed [`Message`] the rest of the module works with.
//!
//! Read this against `docs/bitswap.md` (and the spec, ipfs/specs
//! `src/bitswap-protocol.md`). Decoding is the only place where untrusted
//! bytes turn into domain values:
//!
//! * a frame is `uvarint(len) ‖ protobuf`, `len <= MAX_MESSAGE_SIZE`; the
//!   length is checked before the body is allocated, and the body's buffer
//!   grows as its bytes arrive ([`FrameDecoder`]);
//! * the protobuf types (`pb::*`) stay private to this file; they are
//!   decoded zero-copy from a [`Bytes`] buffer;
//! * every payload block is rebuilt as a [`Block`] by hashing its data
//!   under the CID prefix the sender gave, so a decoded [`Message`] only
//!   ever carries blocks whose bytes match their CID. Whether that CID was
//!   wanted is the caller's question.
//! * field 2 (`blocks`, Bitswap 1.0.0) is decoded too: each entry is taken
//!   as a CIDv0 (dag-pb, sha2-256) block, as 1.0.0 peers meant it.
//!
//! Encoding writes the frame as a list of [`Bytes`] segments so a block's
//! data is shared, not copied, on its way to the stream.

use bytes::{BufMut, Bytes, BytesMut};
use cid::Cid;
#[cfg(test)]
use futures::{AsyncRead, AsyncReadExt as _};
use futures::{AsyncWrite, AsyncWriteExt as _};
use multihash_codetable::{Code, MultihashDigest};
use prost::Message as _;

use crate::block::{self, Block, BlockError, DAG_PB, MAX_BLOCK_SIZE, SHA2_256};

/// The largest message (the protobuf after the length prefix) sent or
/// accepted: 4 MiB, the spec's limit.
pub(crate) const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// The private protobuf schema (`Message` of `bitswap-protocol.md`),
/// written out by hand for prost.
mod pb {
    use bytes::Bytes;

    /// `Message`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Message {
        /// Field 1: the sender's wants.
        #[prost(message, optional, tag = "1")]
        pub(super) wantlist: Option<Wantlist>,
        /// Field 2 (Bitswap 1.0.0 only): raw block bytes, CIDv0.
        #[prost(bytes = "bytes", repeated, tag = "2")]
        pub(super) blocks: Vec<Bytes>,
        /// Field 3: blocks with their CID prefix (1.1.0+).
        #[prost(message, repeated, tag = "3")]
        pub(super) payload: Vec<Block>,
        /// Field 4: Have / DontHave answers (1.2.0).
        #[prost(message, repeated, tag = "4")]
        pub(super) block_presences: Vec<BlockPresence>,
        /// Field 5: bytes the sender still has queued for us.
        #[prost(int32, tag = "5")]
        pub(super) pending_bytes: i32,
    }

    /// `Message.Wantlist`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Wantlist {
        #[prost(message, repeated, tag = "1")]
        pub(super) entries: Vec<Entry>,
        #[prost(bool, tag = "2")]
        pub(super) full: bool,
    }

    /// `Message.Wantlist.Entry`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Entry {
        #[prost(bytes = "bytes", tag = "1")]
        pub(super) block: Bytes,
        #[prost(int32, tag = "2")]
        pub(super) priority: i32,
        #[prost(bool, tag = "3")]
        pub(super) cancel: bool,
        /// `WantType`: 0 = Block, 1 = Have.
        #[prost(int32, tag = "4")]
        pub(super) want_type: i32,
        #[prost(bool, tag = "5")]
        pub(super) send_dont_have: bool,
    }

    /// `Message.Block`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Block {
        #[prost(bytes = "bytes", tag = "1")]
        pub(super) prefix: Bytes,
        #[prost(bytes = "bytes", tag = "2")]
        pub(super) data: Bytes,
    }

    /// `Message.BlockPresence`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct BlockPresence {
        #[prost(bytes = "bytes", tag = "1")]
        pub(super) cid: Bytes,
        /// `BlockPresenceType`: 0 = Have, 1 = DontHave.
        #[prost(int32, tag = "2")]
        pub(super) r#type: i32,
    }
}

/// Why a frame or message was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MessageError {
    /// The length prefix announces more than [`MAX_MESSAGE_SIZE`] bytes.
    #[error("message of {0} bytes is over the {MAX_MESSAGE_SIZE}-byte limit")]
    TooLarge(u64),
    /// The length prefix is not a valid unsigned varint.
    #[error("malformed length prefix")]
    BadLength,
    /// Reading or writing the stream failed (includes EOF inside a frame).
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
    /// The body is not a valid protobuf `Message`.
    #[error("protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A wantlist entry or presence names an unparsable CID.
    #[error("bad cid in {field}")]
    BadCid {
        /// Which field held it.
        field: &'static str,
    },
    /// An enum field has a value the schema does not define.
    #[error("unknown value {value} in {field}")]
    UnknownEnum {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: i32,
    },
    /// A payload block's prefix is malformed.
    #[error("bad block prefix: {0}")]
    BadPrefix(#[from] PrefixError),
    /// A payload block cannot be a block IPSR accepts (hash, codec, size).
    #[error("bad block: {0}")]
    BadBlock(#[from] BlockError),
}

impl MessageError {
    /// True if the error is about a payload block (the peer sent bytes
    /// that cannot be the block it claims), not about framing or schema.
    pub(crate) fn is_bad_block(&self) -> bool {
        matches!(self, Self::BadPrefix(_) | Self::BadBlock(_))
    }
}

/// Why CID prefix bytes were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PrefixError {
    /// A varint is truncated or overlong.
    #[error("malformed varint")]
    Varint,
    /// Bytes remain after the four varints.
    #[error("trailing bytes")]
    Trailing,
    /// The CID version is neither 0 nor 1.
    #[error("unknown cid version {0}")]
    Version(u64),
    /// A CIDv0 prefix other than `00 70 12 20`.
    #[error("cidv0 prefix must be dag-pb sha2-256/32")]
    BadV0,
    /// A hash other than sha2-256 with a 32-byte digest.
    #[error("unsupported multihash 0x{code:x}/{len}")]
    Hash {
        /// Multihash code.
        code: u64,
        /// Digest length.
        len: u64,
    },
}

/// A CID without its digest: `uvarint(version) ‖ uvarint(codec) ‖
/// uvarint(multihash code) ‖ uvarint(digest length)` (the go-cid
/// `Prefix.Bytes()` layout). CIDv0 is `00 70 12 20`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefix {
    /// CID version, 0 or 1.
    pub(crate) version: u64,
    /// Multicodec of the content.
    pub(crate) codec: u64,
    /// Multihash function code.
    pub(crate) mh_code: u64,
    /// Digest length in bytes.
    pub(crate) digest_len: u64,
}

impl Prefix {
    /// The prefix of `cid`.
    pub(crate) fn of(cid: &Cid) -> Self {
        Self {
            version: match cid.version() {
                cid::Version::V0 => 0,
                cid::Version::V1 => 1,
            },
            codec: cid.codec(),
            mh_code: cid.hash().code(),
            digest_len: u64::from(cid.hash().size()),
        }
    }

    /// The wire bytes.
    pub(crate) fn to_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8);
        for n in [self.version, self.codec, self.mh_code, self.digest_len] {
            put_varint(&mut out, n);
        }
        out
    }

    /// Parses wire bytes; all of `bytes` must be consumed.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, PrefixError> {
        let mut rest = bytes;
        let mut next = || -> Result<u64, PrefixError> {
            let (n, r) = unsigned_varint::decode::u64(rest).map_err(|_| PrefixError::Varint)?;
            rest = r;
            Ok(n)
        };
        let prefix = Self {
            version: next()?,
            codec: next()?,
            mh_code: next()?,
            digest_len: next()?,
        };
        if !rest.is_empty() {
            return Err(PrefixError::Trailing);
        }
        Ok(prefix)
    }

    /// Hashes `data` as this prefix says and returns the block it names.
    /// IPSR only hashes with sha2-256; other hashes are refused.
    pub(crate) fn block(self, data: Bytes) -> Result<Block, MessageError> {
        if self.mh_code != SHA2_256 || self.digest_len != 32 {
            return Err(PrefixError::Hash {
                code: self.mh_code,
                len: self.digest_len,
            }
            .into());
        }
        if data.len() > MAX_BLOCK_SIZE {
            return Err(BlockError::TooLarge { size: data.len() }.into());
        }
        let digest = Code::Sha2_256.digest(&data);
        let cid = match self.version {
            0 if self.codec == DAG_PB => Cid::new_v0(digest).map_err(|_| PrefixError::BadV0)?,
            0 => return Err(PrefixError::BadV0.into()),
            1 => Cid::new_v1(self.codec, digest),
            v => return Err(PrefixError::Version(v).into()),
        };
        block::check_cid(&cid)?;
        // Hashed just above: the bytes match the CID by construction.
        Ok(Block::trusted(cid, data))
    }
}

/// What a wantlist entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WantType {
    /// Send me the block (`WantType.Block = 0`).
    Block,
    /// Tell me whether you have it (`WantType.Have = 1`).
    Have,
}

/// One wantlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WantEntry {
    /// The wanted block.
    pub(crate) cid: Cid,
    /// Higher first.
    pub(crate) priority: i32,
    /// Revokes an earlier entry for `cid`.
    pub(crate) cancel: bool,
    /// Block or Have.
    pub(crate) want_type: WantType,
    /// Answer DontHave if missing.
    pub(crate) send_dont_have: bool,
}

impl WantEntry {
    /// A want (not a cancel).
    pub(crate) fn want(cid: Cid, want_type: WantType, send_dont_have: bool) -> Self {
        Self {
            cid,
            priority: 1,
            cancel: false,
            want_type,
            send_dont_have,
        }
    }

    /// A cancel of any want for `cid`.
    pub(crate) fn cancel(cid: Cid) -> Self {
        Self {
            cid,
            priority: 0,
            cancel: true,
            want_type: WantType::Block,
            send_dont_have: false,
        }
    }
}

/// The wantlist part of a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Wantlist {
    /// The entries, in wire order.
    pub(crate) entries: Vec<WantEntry>,
    /// True: these entries replace the whole wantlist; false: a delta.
    pub(crate) full: bool,
}

/// A Have / DontHave answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// `BlockPresenceType.Have = 0`.
    Have,
    /// `BlockPresenceType.DontHave = 1`.
    DontHave,
}

/// A decoded (or to-be-encoded) Bitswap message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Message {
    /// Wants, if any.
    pub(crate) wantlist: Option<Wantlist>,
    /// Blocks, each verified against its CID (payload and 1.0.0 blocks).
    pub(crate) blocks: Vec<Block>,
    /// Have / DontHave answers.
    pub(crate) presences: Vec<(Cid, Presence)>,
    /// The sender's queued bytes (informational).
    pub(crate) pending_bytes: i32,
}

/// An encoded frame: the length prefix and the message as segments that
/// share block data.
#[derive(Debug, Clone, Default)]
pub(crate) struct Frame {
    segments: Vec<Bytes>,
    len: usize,
}

impl Frame {
    /// Total bytes on the wire, prefix included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// All segments joined (tests and small frames).
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        self.segments
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect()
    }
}

fn put_varint(buf: &mut impl BufMut, n: u64) {
    let mut tmp = unsigned_varint::encode::u64_buffer();
    buf.put_slice(unsigned_varint::encode::u64(n, &mut tmp));
}

fn varint_len(n: u64) -> usize {
    let mut tmp = unsigned_varint::encode::u64_buffer();
    unsigned_varint::encode::u64(n, &mut tmp).len()
}

/// Bytes of a length-delimited protobuf field of `len` bytes (tag < 16).
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// Writes the key of a length-delimited field (tag < 16) and its length.
fn put_len_field(buf: &mut BytesMut, tag: u8, len: usize) {
    buf.put_u8((tag << 3) | 2);
    put_varint(buf, len as u64);
}

impl Message {
    /// Encoded size of one payload block (field 3 entry), key included.
    pub(crate) fn block_encoded_len(block: &Block) -> usize {
        let prefix_len = Prefix::of(block.cid()).to_bytes().len();
        field_len(field_len(prefix_len) + field_len(block.data().len()))
    }

    /// Encoded size of one presence (field 4 entry), key included.
    pub(crate) fn presence_encoded_len(cid: &Cid) -> usize {
        field_len(field_len(cid.encoded_len()) + 2)
    }

    fn head(&self) -> pb::Message {
        pb::Message {
            wantlist: self.wantlist.as_ref().map(|wl| pb::Wantlist {
                entries: wl
                    .entries
                    .iter()
                    .map(|e| pb::Entry {
                        block: Bytes::from(e.cid.to_bytes()),
                        priority: e.priority,
                        cancel: e.cancel,
                        want_type: match e.want_type {
                            WantType::Block => 0,
                            WantType::Have => 1,
                        },
                        send_dont_have: e.send_dont_have,
                    })
                    .collect(),
                full: wl.full,
            }),
            blocks: Vec::new(),
            payload: Vec::new(),
            block_presences: self
                .presences
                .iter()
                .map(|(cid, p)| pb::BlockPresence {
                    cid: Bytes::from(cid.to_bytes()),
                    r#type: match p {
                        Presence::Have => 0,
                        Presence::DontHave => 1,
                    },
                })
                .collect(),
            pending_bytes: self.pending_bytes,
        }
    }

    /// Encodes the message as one length-prefixed frame. Block data is
    /// shared with the [`Block`]s, not copied. Fields 1, 4 and 5 come
    /// first, then the payload (field 3): protobuf allows any order.
    pub(crate) fn encode(&self) -> Frame {
        let head = self.head();
        let mut body_len = head.encoded_len();
        let mut block_heads = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let prefix = Prefix::of(block.cid()).to_bytes();
            let data_len = block.data().len();
            let inner = field_len(prefix.len()) + field_len(data_len);
            let mut h = BytesMut::with_capacity(16 + prefix.len());
            put_len_field(&mut h, 3, inner);
            put_len_field(&mut h, 1, prefix.len());
            h.put_slice(&prefix);
            put_len_field(&mut h, 2, data_len);
            body_len += h.len() + data_len;
            block_heads.push(h.freeze());
        }
        let mut first = BytesMut::with_capacity(10 + head.encoded_len());
        put_varint(&mut first, body_len as u64);
        let prefix_len = first.len();
        // Encoding into a BytesMut cannot run out of space.
        let _ = head.encode(&mut first);
        let mut segments = Vec::with_capacity(1 + 2 * self.blocks.len());
        segments.push(first.freeze());
        for (h, block) in block_heads.into_iter().zip(&self.blocks) {
            segments.push(h);
            segments.push(block.data().clone());
        }
        Frame {
            segments,
            len: prefix_len + body_len,
        }
    }

    /// Decodes a message body (without its length prefix) and checks it:
    /// CIDs parse, enums are known, every block is rebuilt from its prefix
    /// and data (see [`Prefix::block`]).
    pub(crate) fn decode(body: Bytes) -> Result<Self, MessageError> {
        if body.len() > MAX_MESSAGE_SIZE {
            return Err(MessageError::TooLarge(body.len() as u64));
        }
        let pb = pb::Message::decode(body)?;
        let wantlist = match pb.wantlist {
            None => None,
            Some(wl) => {
                let mut entries = Vec::with_capacity(wl.entries.len());
                for e in wl.entries {
                    let cid = Cid::try_from(&e.block[..]).map_err(|_| MessageError::BadCid {
                        field: "wantlist entry",
                    })?;
                    let want_type = match e.want_type {
                        0 => WantType::Block,
                        1 => WantType::Have,
                        value => {
                            return Err(MessageError::UnknownEnum {
                                field: "wantType",
                                value,
                            });
                        }
                    };
                    entries.push(WantEntry {
                        cid,
                        priority: e.priority,
                        cancel: e.cancel,
                        want_type,
                        send_dont_have: e.send_dont_have,
                    });
                }
                Some(Wantlist {
                    entries,
                    full: wl.full,
                })
            }
        };
        let v0 = Prefix {
            version: 0,
            codec: DAG_PB,
            mh_code: SHA2_256,
            digest_len: 32,
        };
        let mut blocks = Vec::with_capacity(pb.blocks.len() + pb.payload.len());
        for data in pb.blocks {
            blocks.push(v0.block(data)?);
        }
        for b in pb.payload {
            blocks.push(Prefix::from_bytes(&b.prefix)?.block(b.data)?);
        }
        let mut presences = Vec::with_capacity(pb.block_presences.len());
        for p in pb.block_presences {
            let cid = Cid::try_from(&p.cid[..]).map_err(|_| MessageError::BadCid {
                field: "blockPresence",
            })?;
            let presence = match p.r#type {
                0 => Presence::Have,
                1 => Presence::DontHave,
                value => {
                    return Err(MessageError::UnknownEnum {
                        field: "blockPresence type",
                        value,
                    });
                }
            };
            presences.push((cid, presence));
        }
        Ok(Self {
            wantlist,
            blocks,
            presences,
            pending_bytes: pb.pending_bytes,
        })
    }
}

/// The first room given to a frame body: a body grows from this size,
/// doubling as its bytes arrive, up to its announced length.
pub(crate) const FIRST_BODY_CHUNK: usize = 64 * 1024;

/// Splits a byte stream into frame bodies without trusting the length
/// prefix with memory: sans-IO, the caller reads into [`buf`](Self::buf)
/// and reports how much it read with [`consume`](Self::consume).
///
/// * The prefix is taken a byte at a time, so a read never goes past the
///   current frame and nothing is left over between frames.
/// * A length over [`MAX_MESSAGE_SIZE`] is refused when the prefix ends,
///   before anything is allocated for the body.
/// * The body starts with room for [`FIRST_BODY_CHUNK`] bytes (or its length,
///   if less) and doubles only once that room is full, never beyond its
///   length. A peer that announces 4 MiB and sends one byte costs 64 KiB;
///   in general a body holds at most twice the bytes received plus 64 KiB,
///   and never more than its length.
#[derive(Debug, Default)]
pub(crate) struct FrameDecoder {
    state: DecodeState,
    /// Where a prefix byte is read to.
    byte: [u8; 1],
}

#[derive(Debug)]
enum DecodeState {
    /// Reading the length prefix: its value so far and bytes taken.
    Prefix { len: u64, bytes: u32 },
    /// Reading a body of `len` bytes; `filled` of `body` are received.
    Body {
        len: usize,
        body: Vec<u8>,
        filled: usize,
    },
}

impl Default for DecodeState {
    fn default() -> Self {
        Self::Prefix { len: 0, bytes: 0 }
    }
}

impl FrameDecoder {
    /// Where the next bytes read from the stream go: at least one byte,
    /// never past the end of the current frame.
    pub(crate) fn buf(&mut self) -> &mut [u8] {
        match &mut self.state {
            DecodeState::Prefix { .. } => &mut self.byte,
            DecodeState::Body { len, body, filled } => {
                if *filled == body.len() {
                    // Full: double the room, up to the frame's length.
                    let room = (*filled).max(FIRST_BODY_CHUNK).min(*len - *filled);
                    body.reserve_exact(room);
                    body.resize(*filled + room, 0);
                }
                &mut body[*filled..]
            }
        }
    }

    /// Takes `n` bytes just read into [`buf`](Self::buf); returns a frame's
    /// body once it is complete. `n` must be at most the length of the last
    /// `buf()`.
    pub(crate) fn consume(&mut self, n: usize) -> Result<Option<Bytes>, MessageError> {
        match &mut self.state {
            DecodeState::Prefix { .. } if n == 0 => Ok(None),
            DecodeState::Prefix { len, bytes } => {
                let byte = self.byte[0];
                *len |= u64::from(byte & 0x7f) << (7 * *bytes);
                *bytes += 1;
                if byte & 0x80 != 0 {
                    if *bytes >= 9 {
                        return Err(MessageError::BadLength);
                    }
                    if *len > MAX_MESSAGE_SIZE as u64 {
                        // Already too large, whatever follows.
                        return Err(MessageError::TooLarge(*len));
                    }
                    return Ok(None);
                }
                if *bytes > 1 && byte == 0 {
                    // Overlong encoding (trailing zero group).
                    return Err(MessageError::BadLength);
                }
                let len = *len;
                if len > MAX_MESSAGE_SIZE as u64 {
                    return Err(MessageError::TooLarge(len));
                }
                if len == 0 {
                    self.state = DecodeState::default();
                    return Ok(Some(Bytes::new()));
                }
                self.state = DecodeState::Body {
                    // At most MAX_MESSAGE_SIZE, checked just above.
                    len: len as usize,
                    body: Vec::new(),
                    filled: 0,
                };
                Ok(None)
            }
            DecodeState::Body { len, body, filled } => {
                *filled += n;
                if *filled < *len {
                    return Ok(None);
                }
                let body = std::mem::take(body);
                self.state = DecodeState::default();
                Ok(Some(Bytes::from(body)))
            }
        }
    }

    /// True between two frames, where an end of stream is a clean close.
    pub(crate) fn between_frames(&self) -> bool {
        matches!(self.state, DecodeState::Prefix { bytes: 0, .. })
    }

    /// Bytes allocated for the body being read.
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        match &self.state {
            DecodeState::Prefix { .. } => 0,
            DecodeState::Body { body, .. } => body.capacity(),
        }
    }
}

/// Reads one frame body with `decoder`. `Ok(None)` on a clean end of
/// stream before a frame starts; an end inside a frame is an
/// [`UnexpectedEof`](std::io::ErrorKind::UnexpectedEof) error. (The
/// node's reader does the same with a timeout on each read: `inbound.rs`.)
#[cfg(test)]
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    decoder: &mut FrameDecoder,
) -> Result<Option<Bytes>, MessageError> {
    loop {
        let n = reader.read(decoder.buf()).await?;
        if n == 0 {
            if decoder.between_frames() {
                return Ok(None);
            }
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        if let Some(body) = decoder.consume(n)? {
            return Ok(Some(body));
        }
    }
}

/// Writes one frame (without flushing).
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &Frame,
) -> std::io::Result<()> {
    for segment in &frame.segments {
        writer.write_all(segment).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::RAW;

    fn raw_block(data: &'static [u8]) -> Block {
        Block::hash(cid::Version::V1, RAW, data).unwrap()
    }

    fn v0_block(data: &'static [u8]) -> Block {
        Block::hash(cid::Version::V0, DAG_PB, data).unwrap()
    }

    fn body(frame: &Frame) -> Bytes {
        let bytes = frame.to_vec();
        let (len, rest) = unsigned_varint::decode::u64(&bytes).unwrap();
        assert_eq!(len as usize, rest.len());
        Bytes::copy_from_slice(rest)
    }

    #[test]
    fn prefix_bytes_match_the_go_layout() {
        let v0 = v0_block(b"x");
        let v1_raw = raw_block(b"x");
        let v1_pb = Block::hash(cid::Version::V1, DAG_PB, &b"x"[..]).unwrap();
        assert_eq!(Prefix::of(v0.cid()).to_bytes(), [0x00, 0x70, 0x12, 0x20]);
        assert_eq!(
            Prefix::of(v1_raw.cid()).to_bytes(),
            [0x01, 0x55, 0x12, 0x20]
        );
        assert_eq!(Prefix::of(v1_pb.cid()).to_bytes(), [0x01, 0x70, 0x12, 0x20]);
        for b in [v0, v1_raw, v1_pb] {
            let p = Prefix::from_bytes(&Prefix::of(b.cid()).to_bytes()).unwrap();
            assert_eq!(p.block(b.data().clone()).unwrap(), b);
        }
    }

    #[test]
    fn bad_prefixes_are_refused() {
        assert_eq!(
            Prefix::from_bytes(&[0x01, 0x55, 0x12]),
            Err(PrefixError::Varint)
        );
        assert_eq!(
            Prefix::from_bytes(&[0x01, 0x55, 0x12, 0x20, 0x00]),
            Err(PrefixError::Trailing)
        );
        assert_eq!(
            Prefix::from_bytes(&[0x01, 0x55, 0x12, 0x80]),
            Err(PrefixError::Varint)
        );
        let data = Bytes::from_static(b"x");
        let cases: [&[u8]; 5] = [
            &[0x00, 0x55, 0x12, 0x20], // v0 must be dag-pb
            &[0x02, 0x55, 0x12, 0x20], // version 2
            &[0x01, 0x55, 0x13, 0x40], // sha2-512
            &[0x01, 0x55, 0x12, 0x10], // short digest
            &[0x01, 0x71, 0x12, 0x20], // dag-cbor
        ];
        for bytes in cases {
            let err = Prefix::from_bytes(bytes)
                .unwrap()
                .block(data.clone())
                .unwrap_err();
            assert!(err.is_bad_block(), "{bytes:?}: {err}");
        }
    }

    #[test]
    fn round_trip_every_field() {
        let b1 = raw_block(b"one");
        let b2 = v0_block(b"two");
        let msg = Message {
            wantlist: Some(Wantlist {
                entries: vec![
                    WantEntry::want(*b1.cid(), WantType::Block, true),
                    WantEntry::want(*b2.cid(), WantType::Have, false),
                    WantEntry::cancel(*b2.cid()),
                ],
                full: true,
            }),
            blocks: vec![b1.clone(), b2.clone()],
            presences: vec![(*b1.cid(), Presence::Have), (*b2.cid(), Presence::DontHave)],
            pending_bytes: 7,
        };
        let frame = msg.encode();
        assert_eq!(frame.len(), frame.to_vec().len());
        assert_eq!(Message::decode(body(&frame)).unwrap(), msg);
        let empty = Message::default();
        assert_eq!(empty.encode().to_vec(), [0u8]);
        assert_eq!(Message::decode(body(&empty.encode())).unwrap(), empty);
    }

    #[test]
    fn encoded_len_estimates_are_upper_bounds() {
        let b = raw_block(b"some data");
        let with_block = Message {
            blocks: vec![b.clone()],
            ..Message::default()
        };
        assert_eq!(
            body(&with_block.encode()).len(),
            Message::block_encoded_len(&b)
        );
        let with_presence = Message {
            presences: vec![(*b.cid(), Presence::DontHave)],
            ..Message::default()
        };
        assert!(body(&with_presence.encode()).len() <= Message::presence_encoded_len(b.cid()));
    }

    /// A hand-built wantlist: one entry {cid, priority 1, wantType Have,
    /// sendDontHave}, full = false.
    #[test]
    fn hand_built_wantlist() {
        let b = raw_block(b"hello");
        let cid = b.cid().to_bytes();
        assert_eq!(cid.len(), 36);
        let mut entry = vec![0x0a, 36];
        entry.extend_from_slice(&cid);
        entry.extend_from_slice(&[0x10, 0x01, 0x20, 0x01, 0x28, 0x01]);
        let mut wantlist = vec![0x0a, entry.len() as u8];
        wantlist.extend_from_slice(&entry);
        let mut msg = vec![0x0a, wantlist.len() as u8];
        msg.extend_from_slice(&wantlist);
        let decoded = Message::decode(Bytes::from(msg)).unwrap();
        assert_eq!(
            decoded.wantlist,
            Some(Wantlist {
                entries: vec![WantEntry::want(*b.cid(), WantType::Have, true)],
                full: false
            })
        );
    }

    /// A hand-built payload: field 3 {prefix 01 55 12 20, data "hello"}.
    #[test]
    fn hand_built_payload() {
        let b = raw_block(b"hello");
        let msg = [
            &[0x1a, 13, 0x0a, 4, 0x01, 0x55, 0x12, 0x20, 0x12, 5][..],
            b"hello",
        ]
        .concat();
        let decoded = Message::decode(Bytes::from(msg.clone())).unwrap();
        assert_eq!(decoded.blocks, vec![b.clone()]);
        // Our encoder produces the same bytes.
        let ours = Message {
            blocks: vec![b],
            ..Message::default()
        };
        assert_eq!(body(&ours.encode())[..], msg[..]);
    }

    /// A hand-built 1.0.0 message: field 2 raw bytes, taken as CIDv0.
    #[test]
    fn hand_built_legacy_block() {
        let msg = [&[0x12, 5][..], b"hello"].concat();
        let decoded = Message::decode(Bytes::from(msg)).unwrap();
        assert_eq!(decoded.blocks, vec![v0_block(b"hello")]);
    }

    /// A hand-built presence list: Have(a), DontHave(b), pendingBytes 3.
    #[test]
    fn hand_built_presences() {
        let a = raw_block(b"a");
        let b = raw_block(b"b");
        let mut msg = Vec::new();
        for (cid, t) in [(a.cid(), 0u8), (b.cid(), 1u8)] {
            let bytes = cid.to_bytes();
            msg.extend_from_slice(&[0x22, (2 + bytes.len() + 2) as u8, 0x0a, bytes.len() as u8]);
            msg.extend_from_slice(&bytes);
            msg.extend_from_slice(&[0x10, t]);
        }
        msg.extend_from_slice(&[0x28, 3]);
        let decoded = Message::decode(Bytes::from(msg)).unwrap();
        assert_eq!(
            decoded.presences,
            vec![(*a.cid(), Presence::Have), (*b.cid(), Presence::DontHave)]
        );
        assert_eq!(decoded.pending_bytes, 3);
    }

    #[test]
    fn malformed_messages_are_refused() {
        // Unknown want type 2.
        let cid = raw_block(b"x").cid().to_bytes();
        let mut entry = vec![0x0a, cid.len() as u8];
        entry.extend_from_slice(&cid);
        entry.extend_from_slice(&[0x20, 0x02]);
        let mut msg = vec![0x0a, (entry.len() + 2) as u8, 0x0a, entry.len() as u8];
        msg.extend_from_slice(&entry);
        assert!(matches!(
            Message::decode(Bytes::from(msg)),
            Err(MessageError::UnknownEnum { .. })
        ));
        // A presence with garbage instead of a CID.
        let msg = vec![0x22, 5, 0x0a, 3, 0xff, 0xff, 0xff];
        assert!(matches!(
            Message::decode(Bytes::from(msg)),
            Err(MessageError::BadCid { .. })
        ));
        // Truncated protobuf.
        assert!(matches!(
            Message::decode(Bytes::from_static(&[0x1a, 13, 0x0a])),
            Err(MessageError::Protobuf(_))
        ));
    }

    #[tokio::test]
    async fn frames_round_trip_over_a_stream() {
        let msg = Message {
            blocks: vec![raw_block(b"one"), raw_block(b"two")],
            ..Message::default()
        };
        let mut wire = Vec::new();
        write_frame(&mut wire, &msg.encode()).await.unwrap();
        write_frame(&mut wire, &Message::default().encode())
            .await
            .unwrap();
        let mut reader = futures::io::Cursor::new(wire);
        let mut decoder = FrameDecoder::default();
        let first = read_frame(&mut reader, &mut decoder)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Message::decode(first).unwrap(), msg);
        let second = read_frame(&mut reader, &mut decoder)
            .await
            .unwrap()
            .unwrap();
        assert!(second.is_empty());
        assert!(
            read_frame(&mut reader, &mut decoder)
                .await
                .unwrap()
                .is_none()
        );
    }

    /// Feeds `wire` to a decoder in pieces of the given sizes (cycled);
    /// returns the bodies, or the first error.
    fn decode_in_pieces(wire: &[u8], pieces: &[usize]) -> Result<Vec<Bytes>, MessageError> {
        let mut decoder = FrameDecoder::default();
        let mut bodies = Vec::new();
        let mut at = 0;
        let mut turn = 0;
        while at < wire.len() {
            let buf = decoder.buf();
            let n = pieces[turn % pieces.len()]
                .max(1)
                .min(buf.len())
                .min(wire.len() - at);
            turn += 1;
            buf[..n].copy_from_slice(&wire[at..at + n]);
            at += n;
            bodies.extend(decoder.consume(n)?);
        }
        assert!(decoder.between_frames(), "input ends inside a frame");
        Ok(bodies)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// However the bytes are cut into reads, the same frames come out.
        #[test]
        fn frames_survive_any_cut(
            sizes in proptest::collection::vec(0usize..300_000, 1..4),
            seed in proptest::num::u8::ANY,
            pieces in proptest::collection::vec(1usize..100_000, 1..8),
        ) {
            let bodies: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(k, &size)| {
                    (0..size).map(|i| (i as u8).wrapping_mul(31) ^ seed ^ k as u8).collect()
                })
                .collect();
            let mut wire = Vec::new();
            for body in &bodies {
                put_varint(&mut wire, body.len() as u64);
                wire.extend_from_slice(body);
            }
            let got = decode_in_pieces(&wire, &pieces).unwrap();
            proptest::prop_assert_eq!(got.len(), bodies.len());
            for (got, body) in got.iter().zip(&bodies) {
                proptest::prop_assert_eq!(&got[..], &body[..]);
            }
        }
    }

    #[test]
    fn a_body_grows_as_its_bytes_arrive() {
        let mut decoder = FrameDecoder::default();
        let mut prefix = Vec::new();
        put_varint(&mut prefix, MAX_MESSAGE_SIZE as u64);
        for byte in prefix {
            decoder.buf()[0] = byte;
            assert!(decoder.consume(1).unwrap().is_none());
        }
        assert_eq!(decoder.allocated(), 0, "nothing allocated for a length");
        // The peer announced 4 MiB and sends one byte.
        assert_eq!(decoder.buf().len(), FIRST_BODY_CHUNK);
        assert!(decoder.consume(1).unwrap().is_none());
        assert!(decoder.allocated() <= FIRST_BODY_CHUNK);
        // Then the rest, a byte short: the buffer doubles as it fills and
        // never holds more than twice what arrived plus the first chunk,
        // nor more than the frame.
        let mut received = 1;
        while received < MAX_MESSAGE_SIZE - 1 {
            let n = decoder.buf().len().min(MAX_MESSAGE_SIZE - 1 - received);
            assert!(decoder.consume(n).unwrap().is_none());
            received += n;
            assert!(decoder.allocated() <= 2 * received + FIRST_BODY_CHUNK);
            assert!(decoder.allocated() <= MAX_MESSAGE_SIZE);
        }
        assert_eq!(decoder.buf().len(), 1);
        let body = decoder.consume(1).unwrap().unwrap();
        assert_eq!(body.len(), MAX_MESSAGE_SIZE);
        assert!(decoder.between_frames());
        assert_eq!(decoder.allocated(), 0);
    }

    #[test]
    fn bad_length_prefixes_are_refused() {
        let refuse = |bytes: &[u8]| decode_in_pieces(bytes, &[1]).unwrap_err();
        // 4 MiB + 1, refused when its prefix ends (nothing after it read).
        let mut over = Vec::new();
        put_varint(&mut over, MAX_MESSAGE_SIZE as u64 + 1);
        assert!(
            matches!(refuse(&over), MessageError::TooLarge(n) if n == MAX_MESSAGE_SIZE as u64 + 1)
        );
        // An absurd length is refused as soon as it is too large.
        assert!(matches!(refuse(&[0xff; 12]), MessageError::TooLarge(_)));
        // Overlong: a trailing zero group.
        assert!(matches!(refuse(&[0x85, 0x00]), MessageError::BadLength));
        // Nine bytes and still going.
        assert!(matches!(refuse(&[0x80; 9]), MessageError::BadLength));
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_reading_it() {
        // Only the prefix of a 4 MiB + 1 frame: had the reader allocated and
        // tried to read the body, it would report an unexpected EOF instead.
        let mut header = Vec::new();
        put_varint(&mut header, MAX_MESSAGE_SIZE as u64 + 1);
        let mut reader = futures::io::Cursor::new(header);
        assert!(matches!(
            read_frame(&mut reader, &mut FrameDecoder::default()).await,
            Err(MessageError::TooLarge(n)) if n == MAX_MESSAGE_SIZE as u64 + 1
        ));
        // Exactly 4 MiB is allowed (body truncated here, so EOF).
        let mut header = Vec::new();
        put_varint(&mut header, MAX_MESSAGE_SIZE as u64);
        let mut reader = futures::io::Cursor::new(header);
        assert!(matches!(
            read_frame(&mut reader, &mut FrameDecoder::default()).await,
            Err(MessageError::Io(_))
        ));
    }
}
