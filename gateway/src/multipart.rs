//! A `multipart/form-data` parser (RFC 7578 over RFC 2046) for publish
//! bodies, sans IO: [`Parser::push`] the body's bytes as they come,
//! [`Parser::next`] the events they make, [`Parser::finish`] at the end.
//!
//! Bounded and linear, whatever the body: it holds at most the last chunk
//! pushed plus a part's headers ([`MAX_HEAD`]) or a delimiter's length, and
//! looks at each byte a bounded number of times (a search resumes where
//! the last one stopped). A body that never contains its boundary costs a
//! pass over it and no memory; the caller bounds how much it reads.
//!
//! ```text
//! preamble CRLF --boundary [padding] CRLF headers CRLF CRLF data
//!          CRLF --boundary ... CRLF --boundary-- epilogue
//! ```
//!
//! The preamble and the epilogue are ignored. The body is read as if it
//! began with CRLF, so a first delimiter at its very start is found like
//! every other one.

use bytes::{Bytes, BytesMut};
use memchr::memmem::Finder;

/// The longest header block of one part.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// The longest boundary (RFC 2046 says 70; some clients write a little
/// more).
const MAX_BOUNDARY: usize = 200;
/// The most transport padding after a delimiter.
const MAX_PADDING: usize = 64;

const CRLF: &[u8] = b"\r\n";

/// Why a body is not a valid form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MultipartError {
    /// A part's header block is over [`MAX_HEAD`].
    #[error("a part's headers are over {MAX_HEAD} bytes")]
    HeadTooLong,
    /// A part's headers are malformed.
    #[error("a part's headers are malformed: {0}")]
    BadHead(&'static str),
    /// A delimiter is not followed by a line end or `--`.
    #[error("a boundary is followed by something else than a line end")]
    BadDelimiter,
    /// The body ended before the closing boundary.
    #[error("the body ends before the closing boundary")]
    Incomplete,
}

/// What a part says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartHead {
    /// The `name` of its `Content-Disposition: form-data`.
    pub(crate) name: String,
    /// Its `Content-Type`, if given.
    pub(crate) content_type: Option<String>,
}

/// What the bytes pushed so far make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A part begins.
    Part(PartHead),
    /// Bytes of the current part.
    Data(Bytes),
    /// The current part ended.
    PartEnd,
    /// The closing boundary: nothing more will come.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Just after a delimiter: `--`, or padding and a line end.
    Delimited,
    /// In a part's header block (which starts with the delimiter line's
    /// CRLF, so an empty block is found like any other).
    Head,
    /// In a part's data.
    Data,
    /// After the closing delimiter.
    Done,
}

/// The parser of one body.
#[derive(Debug)]
pub(crate) struct Parser {
    /// CRLF `--` boundary.
    delimiter: Finder<'static>,
    end_of_head: Finder<'static>,
    buf: BytesMut,
    /// How far into `buf` a search found nothing that could not still
    /// become a match with more bytes.
    searched: usize,
    state: State,
    eof: bool,
}

impl Parser {
    /// A parser for a body with this `boundary`.
    pub(crate) fn new(boundary: &str) -> Self {
        let delimiter = [CRLF, b"--", boundary.as_bytes()].concat();
        let mut buf = BytesMut::with_capacity(delimiter.len());
        buf.extend_from_slice(CRLF);
        Self {
            delimiter: Finder::new(&delimiter).into_owned(),
            end_of_head: Finder::new(b"\r\n\r\n").into_owned(),
            buf,
            searched: 0,
            state: State::Preamble,
            eof: false,
        }
    }

    /// Adds the body's next bytes. Push only after [`next`](Self::next)
    /// said it needs more, so what is held stays bounded.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.state != State::Done {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Says the body has ended.
    pub(crate) fn finish(&mut self) {
        self.eof = true;
    }

    /// The next event, or `None` when it needs more bytes.
    pub(crate) fn next(&mut self) -> Result<Option<Event>, MultipartError> {
        loop {
            match self.state {
                State::Done => return Ok(Some(Event::End)),
                State::Preamble => match self.find_delimiter() {
                    Some(at) => {
                        let _ = self.buf.split_to(at + self.delimiter.needle().len());
                        self.state = State::Delimited;
                    }
                    None => {
                        let keep = self.keep_for_delimiter();
                        let _ = self.buf.split_to(self.buf.len() - keep);
                        self.searched = self.searched.min(self.buf.len());
                        return self.more();
                    }
                },
                State::Delimited => {
                    if self.buf.len() < 2 {
                        return self.more();
                    }
                    if self.buf.starts_with(b"--") {
                        self.state = State::Done;
                        self.buf = BytesMut::new();
                        return Ok(Some(Event::End));
                    }
                    let padding = self
                        .buf
                        .iter()
                        .position(|&b| b != b' ' && b != b'\t')
                        .unwrap_or(self.buf.len());
                    if padding > MAX_PADDING {
                        return Err(MultipartError::BadDelimiter);
                    }
                    if self.buf.len() < padding + 2 {
                        return self.more();
                    }
                    if &self.buf[padding..padding + 2] != CRLF {
                        return Err(MultipartError::BadDelimiter);
                    }
                    let _ = self.buf.split_to(padding);
                    self.searched = 0;
                    self.state = State::Head;
                }
                State::Head => {
                    let from = self.searched.saturating_sub(3);
                    match self.end_of_head.find(&self.buf[from..]) {
                        Some(at) => {
                            let end = from + at;
                            let block = self.buf.split_to(end + 4);
                            self.searched = 0;
                            self.state = State::Data;
                            let head = parse_head(&block[2.min(end)..end])?;
                            return Ok(Some(Event::Part(head)));
                        }
                        None if self.buf.len() > MAX_HEAD + 4 => {
                            return Err(MultipartError::HeadTooLong);
                        }
                        None => {
                            self.searched = self.buf.len();
                            return self.more();
                        }
                    }
                }
                State::Data => match self.find_delimiter() {
                    Some(0) => {
                        let _ = self.buf.split_to(self.delimiter.needle().len());
                        self.searched = 0;
                        self.state = State::Delimited;
                        return Ok(Some(Event::PartEnd));
                    }
                    Some(at) => {
                        self.searched = 0;
                        return Ok(Some(Event::Data(self.buf.split_to(at).freeze())));
                    }
                    None => {
                        let keep = self.keep_for_delimiter();
                        let ready = self.buf.len() - keep;
                        if ready == 0 {
                            return self.more();
                        }
                        self.searched -= ready;
                        return Ok(Some(Event::Data(self.buf.split_to(ready).freeze())));
                    }
                },
            }
        }
    }

    /// Where the next delimiter starts in `buf`, searching only what was
    /// not searched before; otherwise remembers how far it looked.
    fn find_delimiter(&mut self) -> Option<usize> {
        let len = self.delimiter.needle().len();
        let from = self.searched.saturating_sub(len - 1);
        match self.delimiter.find(&self.buf[from..]) {
            Some(at) => Some(from + at),
            None => {
                self.searched = self.buf.len();
                None
            }
        }
    }

    /// How many bytes at the end of `buf` to keep: a delimiter that more
    /// bytes complete may begin there. (Finding exactly where would cost
    /// the square of the boundary's length per chunk.)
    fn keep_for_delimiter(&self) -> usize {
        (self.delimiter.needle().len() - 1).min(self.buf.len())
    }

    fn more(&self) -> Result<Option<Event>, MultipartError> {
        if self.eof {
            return Err(MultipartError::Incomplete);
        }
        Ok(None)
    }
}

/// The boundary of a `multipart/form-data` `Content-Type`, if it names a
/// usable one.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let (_, params) = content_type.split_once(';')?;
    let boundary = params_of(params)
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)?;
    let usable = !boundary.is_empty()
        && boundary.len() <= MAX_BOUNDARY
        && !boundary.bytes().any(|b| b == b'\r' || b == b'\n');
    usable.then_some(boundary)
}

/// A part's name and type from its header block (lines without the last
/// CRLF).
fn parse_head(block: &[u8]) -> Result<PartHead, MultipartError> {
    let text = std::str::from_utf8(block).map_err(|_| MultipartError::BadHead("not UTF-8"))?;
    let mut name = None;
    let mut content_type = None;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once(':')
            .ok_or(MultipartError::BadHead("a line is not `name: value`"))?;
        let (key, value) = (key.trim(), value.trim());
        if key.eq_ignore_ascii_case("content-disposition") {
            let (kind, params) = value.split_once(';').unwrap_or((value, ""));
            if !kind.trim().eq_ignore_ascii_case("form-data") {
                return Err(MultipartError::BadHead("the disposition is not form-data"));
            }
            name = params_of(params)
                .find(|(k, _)| k.eq_ignore_ascii_case("name"))
                .map(|(_, v)| v);
        } else if key.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        }
    }
    let name = name.ok_or(MultipartError::BadHead("a part has no name"))?;
    Ok(PartHead { name, content_type })
}

/// The `key=value` parameters of a header value (after its first `;`),
/// values unquoted; malformed ones are skipped.
fn params_of(mut rest: &str) -> impl Iterator<Item = (&str, String)> {
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start_matches([' ', '\t', ';']);
            if rest.is_empty() {
                return None;
            }
            let key_end = rest.find(['=', ';']).unwrap_or(rest.len());
            let key = rest[..key_end].trim();
            if !rest[key_end..].starts_with('=') {
                rest = &rest[key_end..];
                continue;
            }
            rest = rest[key_end + 1..].trim_start();
            let value = if let Some(quoted) = rest.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                rest = &quoted[end..];
                value
            } else {
                let end = rest.find(';').unwrap_or(rest.len());
                let value = rest[..end].trim().to_owned();
                rest = &rest[end..];
                value
            };
            return Some((key, value));
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    const B: &str = "ipsr-test-boundary-7d1a";

    fn form(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, bytes) in parts {
            body.extend_from_slice(
                format!(
                    "--{B}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{B}--\r\n").as_bytes());
        body
    }

    /// The parts of `body` pushed in `chunks`, data joined, or the error.
    fn parse(body: &[u8], chunks: &[usize]) -> Result<Vec<(String, Vec<u8>)>, MultipartError> {
        let mut parser = Parser::new(B);
        let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
        let mut rest = body;
        let mut sizes = chunks.iter().copied().cycle();
        loop {
            match parser.next()? {
                Some(Event::Part(head)) => parts.push((head.name, Vec::new())),
                Some(Event::Data(bytes)) => parts.last_mut().unwrap().1.extend_from_slice(&bytes),
                Some(Event::PartEnd) => {}
                Some(Event::End) => return Ok(parts),
                None if rest.is_empty() => parser.finish(),
                None => {
                    let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
                    parser.push(&rest[..n]);
                    rest = &rest[n..];
                }
            }
        }
    }

    #[test]
    fn reads_parts_at_every_split() {
        let body = form(&[("record", b"rec\r\n--not-it\r\n"), ("content", b"")]);
        let whole = parse(&body, &[body.len()]).unwrap();
        assert_eq!(
            whole,
            vec![
                ("record".to_owned(), b"rec\r\n--not-it\r\n".to_vec()),
                ("content".to_owned(), Vec::new())
            ]
        );
        for size in 1..body.len() {
            assert_eq!(parse(&body, &[size]).unwrap(), whole, "chunks of {size}");
        }
    }

    #[test]
    fn preamble_padding_epilogue_and_quoting() {
        let body = format!(
            "this is a preamble\r\n--{B}  \t\r\ncontent-disposition: form-data; \
             filename=\"a;b.bin\"; name=\"rec\\\"ord\"\r\n\r\nxyz\r\n--{B}--epilogue"
        );
        assert_eq!(
            parse(body.as_bytes(), &[3]).unwrap(),
            vec![("rec\"ord".to_owned(), b"xyz".to_vec())]
        );
        let mut parser = Parser::new(B);
        parser.push(format!("--{B}\r\nContent-Disposition: form-data; name=a\r\nContent-Type: application/vnd.ipld.car\r\n\r\n").as_bytes());
        assert_eq!(
            parser.next().unwrap(),
            Some(Event::Part(PartHead {
                name: "a".into(),
                content_type: Some("application/vnd.ipld.car".into())
            }))
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let bad = |body: String| parse(body.as_bytes(), &[7]).unwrap_err();
        assert_eq!(
            bad(format!("--{B}\r\nContent-Type: x\r\n\r\nx\r\n--{B}--")),
            MultipartError::BadHead("a part has no name")
        );
        assert_eq!(
            bad(format!(
                "--{B}\r\nContent-Disposition: attachment; name=a\r\n\r\n"
            )),
            MultipartError::BadHead("the disposition is not form-data")
        );
        assert_eq!(
            bad(format!("--{B}x\r\n")),
            MultipartError::BadDelimiter,
            "a longer boundary is not this one"
        );
        assert_eq!(
            bad(format!(
                "--{B}\r\nContent-Disposition: form-data; name=a\r\n\r\nno end"
            )),
            MultipartError::Incomplete
        );
        assert_eq!(bad(String::new()), MultipartError::Incomplete);
    }

    #[test]
    fn a_head_without_end_is_refused_at_its_limit() {
        let mut parser = Parser::new(B);
        parser.push(format!("--{B}\r\nX-Long: ").as_bytes());
        let mut pushed = 0;
        let err = loop {
            match parser.next() {
                Ok(None) => {
                    parser.push(b"a");
                    pushed += 1;
                }
                Ok(Some(e)) => panic!("unexpected {e:?}"),
                Err(e) => break e,
            }
        };
        assert_eq!(err, MultipartError::HeadTooLong);
        assert!(pushed <= MAX_HEAD, "{pushed}");
    }

    #[test]
    fn a_body_without_its_boundary_is_held_in_bounded_memory() {
        let mut parser = Parser::new(B);
        let chunk = vec![b'-'; 64 * 1024];
        for _ in 0..64 {
            parser.push(&chunk);
            assert_eq!(parser.next(), Ok(None));
            assert!(parser.buf.len() < 2 * B.len(), "{}", parser.buf.len());
        }
        // In a part, the data flows out; only a possible delimiter's start
        // is held.
        let mut parser = Parser::new(B);
        parser.push(format!("--{B}\r\nContent-Disposition: form-data; name=a\r\n\r\n").as_bytes());
        assert!(matches!(parser.next(), Ok(Some(Event::Part(_)))));
        for _ in 0..64 {
            parser.push(&chunk);
            let Ok(Some(Event::Data(out))) = parser.next() else {
                panic!("data flows out");
            };
            assert!(out.len() > chunk.len() - 2 * B.len());
            assert!(parser.buf.len() < 2 * B.len());
        }
    }

    #[test]
    fn parses_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary("multipart/form-data; charset=x; BOUNDARY=\"a b;c\"").as_deref(),
            Some("a b;c")
        );
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("multipart/form-data; boundary="), None);
        assert_eq!(
            boundary(&format!("m/f; boundary={}", "x".repeat(201))),
            None
        );
    }

    proptest! {
        /// Any content, in any chunking, comes out as it went in.
        #[test]
        fn any_chunking_gives_the_same_parts(
            record in proptest::collection::vec(any::<u8>(), 0..300),
            content in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'-'), any::<u8>()], 0..600),
            chunks in proptest::collection::vec(1usize..80, 1..10),
        ) {
            let body = form(&[("record", &record), ("content", &content)]);
            let parts = parse(&body, &chunks).unwrap();
            prop_assert_eq!(parts, vec![("record".to_owned(), record), ("content".to_owned(), content)]);
        }

        /// Arbitrary bytes never panic, whatever the chunking.
        #[test]
        fn arbitrary_bytes_never_panic(
            body in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'-'), Just(b':'), any::<u8>()], 0..400),
            chunks in proptest::collection::vec(1usize..40, 1..6),
        ) {
            let mut body = body;
            body.splice(0..0, format!("--{B}\r\n").bytes());
            let _ = parse(&body, &chunks);
        }
    }
}
