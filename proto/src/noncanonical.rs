//! Non-canonical encodings of signed records, for tests (feature `test`):
//! the same record, validly signed, written in one of the ways
//! `docs/records.md` (section 1) forbids, at any level of nesting. Every
//! one of them must be refused as [`VerifyError::NonCanonical`]. And
//! [`signed_anyway`]: a record with invalid fields, canonically encoded and
//! validly signed.
//!
//! ```
//! use ipsr_proto::noncanonical::{Edit, Level, rewrite};
//! use ipsr_proto::{AuthorKey, SignedRecord, VerifyError, Yank};
//!
//! let key = AuthorKey::from_seed(&[7; 32]);
//! let yank = Yank::new(key.author_id(), "com.example.app".parse()?, "1.0.0".parse()?, "".into());
//! let signed = yank.sign(&key)?;
//! let bytes = rewrite(&signed, &key, Level::Body, Edit::Reorder, 0).expect("a yank has fields to swap");
//! let refused = SignedRecord::from_bytes(&bytes).and_then(|r| r.verify());
//! assert_eq!(refused.unwrap_err(), VerifyError::NonCanonical("Record"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ed25519_dalek::Signer;
use proptest::prelude::*;

use crate::envelope::signing_input;
use crate::record::envelope_bytes;
use crate::strategy::{release_by, yank_by};
use crate::{AuthorKey, SignedRecord, VerifyError};

/// The message whose encoding is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// `SignedRecord`: the signature stays as it is.
    Envelope,
    /// `Record`, the payload (re-signed).
    Record,
    /// The `Release` or `Yank` inside it (re-signed).
    Body,
    /// A release's `Metadata` (re-signed).
    Metadata,
}

/// What is done to the encoding of one message. None of these edits
/// changes what the message decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Edit {
    /// Two neighbouring fields of different numbers swap places.
    Reorder,
    /// A field of a number the schema does not know (20) is added.
    Unknown,
    /// A field that is neither repeated nor a message is written twice.
    Duplicate,
    /// A varint (a tag, a length or a value) gets a needless `0x80 0x00`
    /// ending: the same number in one more byte.
    LongVarint,
    /// An absent field (neither repeated nor a message) is written out with
    /// its default value, 0 or empty.
    ExplicitDefault,
    /// A release's empty metadata (`4a 00`) is left out (`Body` only).
    DropEmptyMetadata,
}

impl Level {
    /// Every level, outermost first.
    pub const ALL: [Self; 4] = [Self::Envelope, Self::Record, Self::Body, Self::Metadata];
}

impl Edit {
    /// Every edit.
    pub const ALL: [Self; 6] = [
        Self::Reorder,
        Self::Unknown,
        Self::Duplicate,
        Self::LongVarint,
        Self::ExplicitDefault,
        Self::DropEmptyMetadata,
    ];
}

/// The error every rewrite must be refused with: the envelope's or the
/// payload's.
pub fn expected_error(level: Level) -> VerifyError {
    match level {
        Level::Envelope => VerifyError::NonCanonical("SignedRecord"),
        _ => VerifyError::NonCanonical("Record"),
    }
}

/// `signed` (signed by `key`) with `edit` made at `level`, the payload
/// re-signed when it changed, so that only the encoding is wrong; `pick`
/// chooses among the places the edit can be made. `None` when the edit
/// does not apply there (a `Record` has one field: nothing to reorder).
pub fn rewrite<S>(
    signed: &SignedRecord<S>,
    key: &AuthorKey,
    level: Level,
    edit: Edit,
    pick: usize,
) -> Option<Vec<u8>> {
    let mut record = match level {
        Level::Envelope => {
            let mut fields = parse(&signed.to_bytes())?;
            apply(&mut fields, Schema::ENVELOPE, edit, pick)?;
            return Some(encode(&fields));
        }
        _ => parse(signed.payload())?,
    };
    let kind = record.first()?.number;
    if level == Level::Record {
        apply(&mut record, Schema::RECORD, edit, pick)?;
    } else {
        let mut body = parse(record.first()?.value.bytes()?)?;
        if level == Level::Body {
            let schema = match kind {
                1 => Schema::RELEASE,
                _ => Schema::YANK,
            };
            apply(&mut body, schema, edit, pick)?;
        } else {
            let metadata = body.iter_mut().find(|f| kind == 1 && f.number == 9)?;
            let mut fields = parse(metadata.value.bytes()?)?;
            apply(&mut fields, Schema::METADATA, edit, pick)?;
            metadata.value = Value::Len(encode(&fields));
        }
        record[0].value = Value::Len(encode(&body));
    }
    let payload = encode(&record);
    let signature = key.signing_key().sign(&signing_input(&payload)).to_bytes();
    Some(envelope_bytes(
        &payload.into(),
        signed.approvals()[0].key(),
        &signature,
    ))
}

/// `record` in its canonical encoding, validly signed by `key`, whether or
/// not its fields are valid ([`Record::sign`](crate::Record::sign) signs
/// only valid records): for tests that a node refuses a record for its
/// fields alone (`invalid`), wherever it comes from.
pub fn signed_anyway(record: &crate::Record, key: &AuthorKey) -> Vec<u8> {
    let payload = record.encode();
    let signature = key.signing_key().sign(&signing_input(&payload)).to_bytes();
    envelope_bytes(&payload.into(), key.author_id().as_bytes(), &signature)
}

/// Whether the signature of an envelope in any encoding verifies: its
/// fields read as protobuf reads them (the last of a repeated field
/// counts), the key and signature checked over the payload as carried.
/// For tests that a rewrite changed only the encoding.
pub fn signature_verifies(envelope: &[u8]) -> bool {
    let Some(fields) = parse(envelope) else {
        return false;
    };
    let last = |number| {
        fields
            .iter()
            .rev()
            .find(|f| f.number == number)
            .and_then(|f| f.value.bytes())
            .unwrap_or_default()
    };
    let (Ok(key), Ok(signature)) = (<[u8; 32]>::try_from(last(2)), <[u8; 64]>::try_from(last(3)))
    else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(&signature);
    key.verify_strict(&signing_input(last(1)), &signature)
        .is_ok()
}

/// A signed record (release or yank) by an arbitrary author, with the
/// seed of the author's key ([`AuthorKey::from_seed`]).
pub fn signed_with_seed() -> impl Strategy<Value = (SignedRecord, [u8; 32])> {
    any::<[u8; 32]>().prop_flat_map(|seed| {
        let key = std::sync::Arc::new(AuthorKey::from_seed(&seed));
        let (k1, k2) = (key.clone(), key.clone());
        prop_oneof![
            release_by(&key)
                .prop_map(move |r| (r.sign(&k1).expect("strategy makes valid releases"), seed)),
            yank_by(&key)
                .prop_map(move |y| (y.sign(&k2).expect("strategy makes valid yanks"), seed)),
        ]
    })
}

/// A signed record, and a non-canonical encoding of it made by
/// [`rewrite`] with the level and edit given.
pub fn non_canonical() -> impl Strategy<Value = (SignedRecord, Level, Edit, Vec<u8>)> {
    // The pairs that can apply to some record (a `Record` has one field,
    // a message; an envelope has no absent field), but for
    // `DropEmptyMetadata`, which needs a rare empty metadata.
    let pairs: Vec<(Level, Edit)> = Level::ALL
        .iter()
        .flat_map(|l| Edit::ALL.iter().map(move |e| (*l, *e)))
        .filter(|(l, e)| match (l, e) {
            (_, Edit::DropEmptyMetadata) => false,
            (Level::Envelope, Edit::ExplicitDefault) => false,
            (Level::Record, e) => matches!(e, Edit::Unknown | Edit::LongVarint),
            _ => true,
        })
        .collect();
    (
        signed_with_seed(),
        proptest::sample::select(pairs),
        any::<usize>(),
    )
        .prop_filter_map(
            "the edit does not apply to that record",
            |((signed, seed), (level, edit), pick)| {
                let key = AuthorKey::from_seed(&seed);
                let bytes = rewrite(&signed, &key, level, edit, pick)?;
                Some((signed, level, edit, bytes))
            },
        )
}

// ---- a minimal protobuf wire model: varint and length-delimited fields ----

/// One field as written.
#[derive(Debug, Clone)]
struct Field {
    number: u64,
    value: Value,
    /// Which of its varints to write one byte too long.
    long: Option<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Varint(u64),
    Len(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Tag,
    /// The length of a length-delimited field, or the value of a varint one.
    Value,
}

impl Value {
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Len(b) => Some(b),
            Self::Varint(_) => None,
        }
    }
}

/// What a message's schema says of its fields.
#[derive(Debug, Clone, Copy)]
struct Schema {
    /// Fields that are neither repeated nor messages, with whether they
    /// are varints.
    singles: &'static [(u64, bool)],
    /// A release's metadata: a message field that is always written.
    metadata: bool,
}

impl Schema {
    const ENVELOPE: Self = Self {
        singles: &[(1, false), (2, false), (3, false)],
        metadata: false,
    };
    const RECORD: Self = Self {
        singles: &[],
        metadata: false,
    };
    const RELEASE: Self = Self {
        singles: &[
            (1, false),
            (2, false),
            (3, false),
            (4, true),
            (5, false),
            (6, true),
            (7, false),
            (8, false),
            (10, true),
            (11, true),
        ],
        metadata: true,
    };
    const YANK: Self = Self {
        singles: &[
            (1, false),
            (2, false),
            (3, false),
            (4, false),
            (5, true),
            (6, true),
        ],
        metadata: false,
    };
    const METADATA: Self = Self {
        singles: &[
            (1, false),
            (2, false),
            (3, false),
            (4, false),
            (5, false),
            (6, false),
            (8, true),
            (9, true),
            (11, false),
            (12, false),
        ],
        metadata: false,
    };
}

/// Makes `edit` in `fields`, at the `pick`-th place it can be made.
fn apply(fields: &mut Vec<Field>, schema: Schema, edit: Edit, pick: usize) -> Option<()> {
    let choose = |n: usize| (n > 0).then(|| pick % n);
    match edit {
        Edit::Reorder => {
            let swappable: Vec<usize> = (1..fields.len())
                .filter(|&i| fields[i - 1].number != fields[i].number)
                .collect();
            let i = swappable[choose(swappable.len())?];
            fields.swap(i - 1, i);
        }
        Edit::Unknown => {
            let at = pick % (fields.len() + 1);
            fields.insert(
                at,
                Field {
                    number: 20,
                    value: Value::Varint(1),
                    long: None,
                },
            );
        }
        Edit::Duplicate => {
            let singles: Vec<usize> = (0..fields.len())
                .filter(|&i| schema.singles.iter().any(|(n, _)| *n == fields[i].number))
                .collect();
            let i = singles[choose(singles.len())?];
            fields.insert(i + 1, fields[i].clone());
        }
        Edit::LongVarint => {
            // Every tag, and every length or varint value short of 10 bytes.
            let mut places = Vec::new();
            for (i, f) in fields.iter().enumerate() {
                places.push((i, Part::Tag));
                let value = match &f.value {
                    Value::Varint(v) => *v,
                    Value::Len(b) => b.len() as u64,
                };
                if varint(value).len() < 10 {
                    places.push((i, Part::Value));
                }
            }
            let (i, part) = places[choose(places.len())?];
            fields[i].long = Some(part);
        }
        Edit::ExplicitDefault => {
            let absent: Vec<(u64, bool)> = schema
                .singles
                .iter()
                .copied()
                .filter(|(n, _)| fields.iter().all(|f| f.number != *n))
                .collect();
            let (number, is_varint) = absent[choose(absent.len())?];
            let at = fields
                .iter()
                .position(|f| f.number > number)
                .unwrap_or(fields.len());
            let value = match is_varint {
                true => Value::Varint(0),
                false => Value::Len(Vec::new()),
            };
            fields.insert(
                at,
                Field {
                    number,
                    value,
                    long: None,
                },
            );
        }
        Edit::DropEmptyMetadata => {
            let i = fields
                .iter()
                .position(|f| f.number == 9 && f.value == Value::Len(Vec::new()))
                .filter(|_| schema.metadata)?;
            fields.remove(i);
        }
    }
    Some(())
}

fn parse(mut bytes: &[u8]) -> Option<Vec<Field>> {
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = read_varint(&mut bytes)?;
        let value = match key & 7 {
            0 => Value::Varint(read_varint(&mut bytes)?),
            2 => {
                let len = usize::try_from(read_varint(&mut bytes)?).ok()?;
                let value = bytes.get(..len)?.to_vec();
                bytes = &bytes[len..];
                Value::Len(value)
            }
            _ => return None,
        };
        fields.push(Field {
            number: key >> 3,
            value,
            long: None,
        });
    }
    Some(fields)
}

fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        let long = |part| f.long == Some(part);
        let wire = match f.value {
            Value::Varint(_) => 0,
            Value::Len(_) => 2,
        };
        write_varint(&mut out, (f.number << 3) | wire, long(Part::Tag));
        match &f.value {
            Value::Varint(v) => write_varint(&mut out, *v, long(Part::Value)),
            Value::Len(b) => {
                write_varint(&mut out, b.len() as u64, long(Part::Value));
                out.extend_from_slice(b);
            }
        }
    }
    out
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

/// Writes `value` as a minimal varint, or, when `long`, as one byte more
/// (the last byte gets the continuation bit and a `0x00` follows).
fn write_varint(out: &mut Vec<u8>, value: u64, long: bool) {
    let mut bytes = varint(value);
    if long {
        if let Some(last) = bytes.last_mut() {
            *last |= 0x80;
        }
        bytes.push(0);
    }
    out.extend_from_slice(&bytes);
}
