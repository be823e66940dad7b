//! Reading a request body under bounds: at most so many bytes (413 as soon
//! as one more arrives, nothing buffered beyond a chunk), no pause longer
//! than the idle timeout, and no longer in all than the total timeout (408
//! either way). A publish form is read through [`Form`], the bounded
//! parser of [`crate::multipart`] over a [`BodyReader`].
//!
//! The time rules are [`Budget`], sans IO: given the time, it says until
//! when to wait for the next chunk and what to answer if none comes.

use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::time::Instant;

use crate::error::Failure;
use crate::multipart::{Event, MultipartError, Parser, PartHead};

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyError {
    /// More bytes than the bound.
    #[error(
        "the request body is over the limit of {}",
        crate::error::bytes_for_people(*limit)
    )]
    TooLarge {
        /// The bound, in bytes.
        limit: u64,
    },
    /// No byte came for the idle timeout, or the whole body did not come
    /// within the total timeout.
    #[error("{0}")]
    Timeout(Expiry),
    /// The connection failed.
    #[error("cannot read the body: {0}")]
    Read(String),
    /// The form is malformed.
    #[error("bad multipart body: {0}")]
    Multipart(#[from] MultipartError),
}

impl From<BodyError> for Failure {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { limit } => Self::TooLarge { limit },
            BodyError::Timeout(expiry) => Self::BodyTimeout(expiry.to_string()),
            e @ (BodyError::Read(_) | BodyError::Multipart(_)) => Self::BadRequest(e.to_string()),
        }
    }
}

/// Which timeout ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No byte for this long.
    Idle(Duration),
    /// The body took longer than this.
    Total(Duration),
}

impl std::fmt::Display for Expiry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Idle(d) => write!(f, "no byte of the body for {} s", d.as_secs_f32()),
            Self::Total(d) => write!(f, "the body took over {} s", d.as_secs_f32()),
        }
    }
}

/// The time rules of one body, sans IO.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    idle: Duration,
    total: Duration,
    deadline: Instant,
}

impl Budget {
    /// A body that began at `now` may pause `idle` at most and take
    /// `total` in all.
    pub(crate) fn new(now: Instant, idle: Duration, total: Duration) -> Self {
        Self {
            idle,
            total,
            deadline: now + total,
        }
    }

    /// Waiting for a chunk from `now` on: until when, and what ran out if
    /// none came by then.
    pub(crate) fn wait(&self, now: Instant) -> (Instant, Expiry) {
        let idle = now + self.idle;
        if idle < self.deadline {
            (idle, Expiry::Idle(self.idle))
        } else {
            (self.deadline, Expiry::Total(self.total))
        }
    }

    /// Allows `total` from `now` on, if that is later than allowed so far.
    pub(crate) fn extend(&mut self, now: Instant, total: Duration) {
        if now + total > self.deadline {
            self.deadline = now + total;
            self.total = total;
        }
    }
}

/// A request body read in chunks under a byte bound and a [`Budget`].
///
/// The bound counts what is handed on: of a chunk that crosses it, the
/// part within is handed on and the rest kept, so that raising the bound
/// ([`allow`](Self::allow)) lets it through; asked for more at the bound,
/// the reader refuses. At most one chunk is kept.
pub(crate) struct BodyReader {
    stream: BoxStream<'static, Result<Bytes, warp::Error>>,
    kept: Bytes,
    read: u64,
    limit: u64,
    budget: Budget,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("kept", &self.kept.len())
            .field("read", &self.read)
            .field("limit", &self.limit)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl BodyReader {
    /// Reads `stream` (a warp body), at most `limit` bytes, within `budget`.
    pub(crate) fn new<S, B>(stream: S, limit: u64, budget: Budget) -> Self
    where
        S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
        B: Buf,
    {
        let stream = stream
            .map_ok(|mut chunk| chunk.copy_to_bytes(chunk.remaining()))
            .boxed();
        Self {
            stream,
            kept: Bytes::new(),
            read: 0,
            limit,
            budget,
        }
    }

    /// The next bytes, `None` at the end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        let mut chunk = std::mem::take(&mut self.kept);
        while chunk.is_empty() {
            let (until, expiry) = self.budget.wait(Instant::now());
            let next = tokio::time::timeout_at(until, self.stream.next())
                .await
                .map_err(|_| BodyError::Timeout(expiry))?;
            match next {
                Some(next) => chunk = next.map_err(|e| BodyError::Read(e.to_string()))?,
                None => return Ok(None),
            }
        }
        let room = self.limit.saturating_sub(self.read);
        if room == 0 {
            self.kept = chunk;
            return Err(BodyError::TooLarge { limit: self.limit });
        }
        if chunk.len() as u64 > room {
            // `room` is less than the chunk's length, so it fits a usize.
            self.kept = chunk.split_off(room as usize);
        }
        self.read += chunk.len() as u64;
        Ok(Some(chunk))
    }

    /// The whole body, in one piece.
    pub(crate) async fn read_all(mut self) -> Result<Bytes, BodyError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out.into())
    }

    /// Allows `more` bytes past those read so far, and `total` more time
    /// from now (neither less than allowed already).
    pub(crate) fn allow(&mut self, more: u64, total: Duration) {
        self.limit = self.limit.max(self.read.saturating_add(more));
        self.budget.extend(Instant::now(), total);
    }
}

/// A `multipart/form-data` body, part by part.
#[derive(Debug)]
pub(crate) struct Form {
    body: BodyReader,
    parser: Parser,
    in_part: bool,
    error: Option<BodyError>,
}

impl Form {
    /// The form in `body`, with this `boundary`.
    pub(crate) fn new(body: BodyReader, boundary: &str) -> Self {
        Self {
            body,
            parser: Parser::new(boundary),
            in_part: false,
            error: None,
        }
    }

    /// The body under the form, to [`allow`](BodyReader::allow) more.
    pub(crate) fn body(&mut self) -> &mut BodyReader {
        &mut self.body
    }

    /// The next part's head (skipping what is left of the current part),
    /// `None` after the last.
    pub(crate) async fn next_part(&mut self) -> Result<Option<PartHead>, BodyError> {
        loop {
            match self.event().await? {
                Event::Part(head) => {
                    self.in_part = true;
                    return Ok(Some(head));
                }
                Event::Data(_) => {}
                Event::PartEnd => self.in_part = false,
                Event::End => return Ok(None),
            }
        }
    }

    /// The current part's next bytes, `None` at its end.
    pub(crate) async fn data(&mut self) -> Result<Option<Bytes>, BodyError> {
        if !self.in_part {
            return Ok(None);
        }
        match self.event().await? {
            Event::Data(bytes) => Ok(Some(bytes)),
            _ => {
                self.in_part = false;
                Ok(None)
            }
        }
    }

    /// The current part's bytes as a stream of IO results (for readers);
    /// a failure is kept for [`error`](Self::error).
    pub(crate) fn data_stream(&mut self) -> impl Stream<Item = std::io::Result<Bytes>> + '_ {
        futures::stream::unfold(self, |form| async move {
            match form.data().await {
                Ok(Some(bytes)) => Some((Ok(bytes), form)),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e)), form)),
            }
        })
    }

    /// The last failure reading the body, if any.
    pub(crate) fn error(&self) -> Option<&BodyError> {
        self.error.as_ref()
    }

    async fn event(&mut self) -> Result<Event, BodyError> {
        let result = self.pull().await;
        if let Err(e) = &result {
            self.error = Some(e.clone());
        }
        result
    }

    async fn pull(&mut self) -> Result<Event, BodyError> {
        loop {
            if let Some(event) = self.parser.next()? {
                return Ok(event);
            }
            match self.body.chunk().await? {
                Some(chunk) => self.parser.push(&chunk),
                None => self.parser.finish(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn waits_for_the_idle_timeout_until_the_deadline_is_nearer() {
        let t0 = Instant::now();
        let budget = Budget::new(t0, 10 * S, 30 * S);
        assert_eq!(budget.wait(t0), (t0 + 10 * S, Expiry::Idle(10 * S)));
        assert_eq!(
            budget.wait(t0 + 25 * S),
            (t0 + 30 * S, Expiry::Total(30 * S))
        );
        assert_eq!(
            budget.wait(t0 + 40 * S),
            (t0 + 30 * S, Expiry::Total(30 * S)),
            "past the deadline: at once"
        );
    }

    #[test]
    fn extends_only_to_later() {
        let t0 = Instant::now();
        let mut budget = Budget::new(t0, 10 * S, 30 * S);
        budget.extend(t0 + 5 * S, 10 * S);
        assert_eq!(budget.wait(t0 + 25 * S).0, t0 + 30 * S, "not shortened");
        budget.extend(t0 + 5 * S, 600 * S);
        assert_eq!(
            budget.wait(t0 + 600 * S),
            (t0 + 605 * S, Expiry::Total(600 * S))
        );
    }

    fn body(chunks: Vec<&'static [u8]>) -> impl Stream<Item = Result<Bytes, warp::Error>> {
        futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))))
    }

    fn budget() -> Budget {
        Budget::new(Instant::now(), 10 * S, 30 * S)
    }

    #[tokio::test]
    async fn hands_on_up_to_the_bound_and_keeps_the_rest_until_allowed() {
        let mut reader = BodyReader::new(body(vec![b"abcdefgh", b"ij"]), 4, budget());
        assert_eq!(reader.chunk().await.unwrap().unwrap(), "abcd");
        assert_eq!(
            reader.chunk().await.unwrap_err(),
            BodyError::TooLarge { limit: 4 }
        );
        reader.allow(5, S);
        assert_eq!(reader.chunk().await.unwrap().unwrap(), "efgh");
        assert_eq!(reader.chunk().await.unwrap().unwrap(), "i");
        assert_eq!(
            reader.chunk().await.unwrap_err(),
            BodyError::TooLarge { limit: 9 }
        );
        // A body that ends at the bound is whole.
        let reader = BodyReader::new(body(vec![b"ab", b"", b"cd"]), 4, budget());
        assert_eq!(reader.read_all().await.unwrap(), "abcd");
    }

    #[tokio::test]
    async fn refuses_the_chunk_that_crosses_the_bound() {
        let mut reader = BodyReader::new(body(vec![b"abcd", b"efgh", b"i"]), 8, budget());
        assert_eq!(reader.chunk().await.unwrap().unwrap(), "abcd");
        assert_eq!(reader.chunk().await.unwrap().unwrap(), "efgh");
        assert_eq!(
            reader.chunk().await.unwrap_err(),
            BodyError::TooLarge { limit: 8 }
        );
        let mut reader = BodyReader::new(body(vec![b"abcd", b"efgh", b"i"]), 4, budget());
        let _ = reader.chunk().await.unwrap();
        reader.allow(5, S);
        let all = reader.read_all().await.unwrap();
        assert_eq!(all, "efghi");
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let stalled = body(vec![b"ab"]).chain(futures::stream::pending());
        let t0 = Instant::now();
        let budget = Budget::new(t0, Duration::from_millis(50), 30 * S);
        let mut reader = BodyReader::new(stalled, 100, budget);
        assert_eq!(reader.chunk().await.unwrap().unwrap(), "ab");
        assert_eq!(
            reader.chunk().await.unwrap_err(),
            BodyError::Timeout(Expiry::Idle(Duration::from_millis(50)))
        );
        let failure = Failure::from(BodyError::Timeout(Expiry::Total(S)));
        assert_eq!(failure.status_and_code().0.as_u16(), 408);
    }

    #[tokio::test]
    async fn a_form_part_by_part() {
        let text: &'static [u8] = b"--b\r\nContent-Disposition: form-data; name=\"record\"\r\n\r\n\
            REC\r\n--b\r\nContent-Disposition: form-data; name=content\r\n\r\nCONTENT\r\n--b--\r\n";
        let halves = vec![&text[..40], &text[40..]];
        let mut form = Form::new(BodyReader::new(body(halves), 1000, budget()), "b");
        assert_eq!(form.next_part().await.unwrap().unwrap().name, "record");
        assert_eq!(form.data().await.unwrap().unwrap(), "REC");
        assert_eq!(form.data().await.unwrap(), None);
        assert_eq!(form.data().await.unwrap(), None, "still the end");
        assert_eq!(form.next_part().await.unwrap().unwrap().name, "content");
        let rest: Vec<Bytes> = form.data_stream().try_collect().await.unwrap();
        assert_eq!(rest.concat(), b"CONTENT");
        assert_eq!(form.next_part().await.unwrap(), None);
        assert!(form.error().is_none());
        // Over the bound inside a part: the failure is kept.
        let mut form = Form::new(BodyReader::new(body(vec![text]), 10, budget()), "b");
        assert_eq!(
            form.next_part().await.unwrap_err(),
            BodyError::TooLarge { limit: 10 }
        );
        assert_eq!(form.error(), Some(&BodyError::TooLarge { limit: 10 }));
    }
}
