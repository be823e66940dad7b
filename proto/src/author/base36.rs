//! Lower-case base36 of the 40 bytes of an author id's CID, without
//! allocating.
//!
//! Author ids are read and written as text wherever they are stored or
//! shown (every release row of the store names its signer, every view
//! names the author), and the general multibase code works digit by digit
//! over a byte array with allocations on the way: profiles of a package
//! view put a tenth of its time there. This does the same arithmetic on
//! ten 32-bit limbs. Only the canonical form is read here: anything else
//! (upper case, another base, a leading zero digit) goes to the general
//! code, which says what is wrong with it.

/// Bytes of an author id's CID: version, codec, multihash code and
/// length (`01 72 00 24`), then the 36-byte protobuf key.
pub(super) const CID_LEN: usize = 40;

/// 32-bit limbs of a 40-byte value.
const LIMBS: usize = CID_LEN / 4;

/// 36⁶, the largest power of 36 below 2³²: six digits per division.
const BASE6: u64 = 36u64.pow(6);

/// Digits written per division, times the divisions a 40-byte value needs
/// (36⁶¹ < 2³²⁰ < 36⁶², so at most 62 digits).
const BUF_DIGITS: usize = 66;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The value of `digits` (lower-case base36, no leading zero digit) as 40
/// big-endian bytes; `None` for any other text, or a value that does not
/// fit in 40 bytes.
pub(super) fn decode(digits: &[u8]) -> Option<[u8; CID_LEN]> {
    if digits.first().is_none_or(|&d| d == b'0') {
        return None;
    }
    // Little-endian limbs.
    let mut limbs = [0u32; LIMBS];
    for &c in digits {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            _ => return None,
        };
        let mut carry = u64::from(digit);
        for limb in &mut limbs {
            let v = u64::from(*limb) * 36 + carry;
            *limb = low(v);
            carry = v >> 32;
        }
        if carry != 0 {
            return None;
        }
    }
    let mut out = [0u8; CID_LEN];
    for (chunk, limb) in out.chunks_exact_mut(4).zip(limbs.iter().rev()) {
        chunk.copy_from_slice(&limb.to_be_bytes());
    }
    Some(out)
}

/// `bytes` (big-endian) in lower-case base36 without leading zero digits,
/// written into `buf`; the digits are the returned slice of it.
pub(super) fn encode<'a>(bytes: &[u8; CID_LEN], buf: &'a mut [u8; BUF_DIGITS]) -> &'a str {
    let mut limbs = [0u32; LIMBS];
    for (limb, chunk) in limbs.iter_mut().rev().zip(bytes.chunks_exact(4)) {
        *limb = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    let mut start = BUF_DIGITS;
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u64;
        for limb in limbs.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*limb);
            *limb = low(v / BASE6);
            rem = v % BASE6;
        }
        for _ in 0..6 {
            start -= 1;
            buf[start] = ALPHABET[usize::from(low_byte(rem % 36))];
            rem /= 36;
        }
    }
    while start < BUF_DIGITS - 1 && buf[start] == b'0' {
        start += 1;
    }
    // Only ASCII digits and letters were written.
    std::str::from_utf8(&buf[start..]).unwrap_or_default()
}

/// A fresh buffer for [`encode`].
pub(super) fn buffer() -> [u8; BUF_DIGITS] {
    [b'0'; BUF_DIGITS]
}

/// The low 32 bits of `v`.
fn low(v: u64) -> u32 {
    (v & 0xffff_ffff) as u32
}

/// `v`, known to be below 256, as a byte.
fn low_byte(v: u64) -> u8 {
    (v & 0xff) as u8
}
