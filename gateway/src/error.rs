//! Why a request failed, and the one rejection handler that answers every
//! failure with `{ "code": "...", "message": "..." }` and its status.

use std::convert::Infallible;
use std::net::SocketAddr;

use ipsr_content::ContentError;
use ipsr_content::blockstore::BlockstoreError;
use ipsr_content::fetch::FetchError;
use ipsr_indexer::IndexError;
use ipsr_node::NodeError;
use ipsr_proto::VerifyError;
use serde::Serialize;
use warp::http::StatusCode;
use warp::reject::{
    InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed, MissingHeader, PayloadTooLarge,
    UnsupportedMediaType,
};
use warp::reply::Response;
use warp::{Rejection, Reply};

/// An error starting the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Why one request failed. [`Failure::status_and_code`] is the one place
/// that maps failures to answers; internal ones are logged, not shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// A path or query value is malformed (an author id, a name, a CID...).
    #[error("{what}: {reason}")]
    Bad {
        /// What was malformed (`author`, `package`, `version`, `cid`, a
        /// query parameter).
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The request is malformed in another way.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing is known under this path.
    #[error("{0}")]
    NotFound(String),
    /// The request body is over the route's limit.
    #[error("the request body is over the limit of {}", bytes_for_people(*limit))]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The body is not of a media type the route takes.
    #[error("{0}")]
    MediaType(&'static str),
    /// The signed record is not valid.
    #[error("{0}")]
    Verify(#[source] VerifyError),
    /// The uploaded content does not match the signed record.
    #[error("{0}")]
    ContentMismatch(String),
    /// This gateway does not take content from this author.
    #[error("{0}")]
    UploadForbidden(String),
    /// The `Range` asked for lies outside the file.
    #[error("the range is outside the file's {size} bytes")]
    RangeNotSatisfiable {
        /// The file's size.
        size: u64,
    },
    /// The body did not come in time (idle or total timeout).
    #[error("{0}")]
    BodyTimeout(String),
    /// The client made too many requests.
    #[error("too many requests from this address; retry in a second")]
    RateLimited,
    /// The client has too many requests in progress.
    #[error("too many requests from this address in progress; retry shortly")]
    ClientBusy,
    /// The record's author is over its rate in the swarm: nothing was
    /// published.
    #[error("{0}")]
    AuthorRateLimited(String),
    /// Too many requests are being served.
    #[error("the gateway is busy; retry shortly")]
    Busy,
    /// The node's store is behind (its write queue is full): nothing was
    /// published.
    #[error("{0}")]
    StoreBehind(String),
    /// The node has stopped.
    #[error("the swarm is unavailable")]
    Stopped,
    /// The index could not be read (Redis down, say).
    #[error("the index is unavailable: {0}")]
    Index(#[source] IndexError),
    /// The content could not be found or fetched in time.
    #[error("{0}")]
    ContentUnavailable(String),
    /// The blockstore is full: of pinned data, or a pin would take the
    /// pinned data past the limit.
    #[error("{0}")]
    StoreFull(String),
    /// A pin would take its author past the per-author quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// Anything else (internal; logged, never shown).
    #[error("{0}")]
    Internal(String),
}

impl warp::reject::Reject for Failure {}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Stopped => Self::Stopped,
            e @ NodeError::AuthorRateLimited { .. } => Self::AuthorRateLimited(e.to_string()),
            e @ NodeError::StoreBehind { .. } => Self::StoreBehind(e.to_string()),
            e => Self::Internal(format!("node: {e}")),
        }
    }
}

impl From<IndexError> for Failure {
    fn from(e: IndexError) -> Self {
        Self::Index(e)
    }
}

impl From<ContentError> for Failure {
    fn from(e: ContentError) -> Self {
        match e {
            ContentError::Store(e @ BlockstoreError::Full { .. }) => Self::StoreFull(e.to_string()),
            ContentError::Store(e @ BlockstoreError::QuotaExceeded { .. }) => {
                Self::QuotaExceeded(e.to_string())
            }
            ContentError::Fetch(
                e @ (FetchError::WrongSize { .. } | FetchError::Oversized { .. }),
            ) => Self::ContentMismatch(e.to_string()),
            ContentError::Fetch(FetchError::Stalled(..)) => {
                Self::ContentUnavailable("no provider sent the content in time".into())
            }
            ContentError::Fetch(FetchError::Read(e)) => {
                Self::ContentMismatch(format!("the content is not a UnixFS file: {e}"))
            }
            ContentError::Stopped(_) => Self::Stopped,
            e => Self::Internal(format!("content: {e}")),
        }
    }
}

impl Failure {
    pub(crate) fn bad(what: &'static str, reason: impl ToString) -> Self {
        Self::Bad {
            what,
            reason: reason.to_string(),
        }
    }

    /// The status and the stable code of the answer.
    pub(crate) fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Bad { what, .. } => (StatusCode::BAD_REQUEST, bad_code(what)),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::MediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::Verify(e @ VerifyError::TooLarge { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, e.reason())
            }
            Self::Verify(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.reason()),
            Self::ContentMismatch(_) => (StatusCode::UNPROCESSABLE_ENTITY, "content_mismatch"),
            Self::UploadForbidden(_) => (StatusCode::FORBIDDEN, "uploads_forbidden"),
            Self::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            Self::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            Self::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::ClientBusy => (StatusCode::TOO_MANY_REQUESTS, "client_busy"),
            Self::AuthorRateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "author_rate_limited"),
            Self::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Self::StoreBehind(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_behind"),
            Self::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Index(_) => (StatusCode::SERVICE_UNAVAILABLE, "index_unavailable"),
            Self::ContentUnavailable(_) => (StatusCode::GATEWAY_TIMEOUT, "content_unavailable"),
            Self::StoreFull(_) => (StatusCode::INSUFFICIENT_STORAGE, "blockstore_full"),
            Self::QuotaExceeded(_) => (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl Failure {
    /// The reason label of a request refused to protect the gateway (for
    /// the `refused` metric), or `None` for any other failure.
    pub(crate) fn refusal(&self) -> Option<&'static str> {
        match self {
            Self::TooLarge { .. } => Some("too_large"),
            Self::BodyTimeout(_) => Some("body_timeout"),
            Self::RateLimited => Some("rate_limited"),
            Self::ClientBusy => Some("client_busy"),
            Self::Busy => Some("busy"),
            _ => None,
        }
    }
}

fn bad_code(what: &str) -> &'static str {
    match what {
        "author" => "bad_author",
        "package" => "bad_package",
        "version" => "bad_version",
        "cid" => "bad_cid",
        _ => "bad_query",
    }
}

/// An error answer.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// The message shown for internal errors: their details go to the log only.
const INTERNAL: &str = "internal error; see the gateway's log";

/// Turns a failure into its JSON answer.
pub(crate) fn reply(failure: &Failure) -> Response {
    let (status, code, message) = describe(failure);
    json_error(status, code, message)
}

fn json_error(status: StatusCode, code: &'static str, message: String) -> Response {
    let mut response =
        warp::reply::with_status(warp::reply::json(&ErrorBody { code, message }), status)
            .into_response();
    response.headers_mut().insert(
        warp::http::header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static("no-store"),
    );
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .headers_mut()
            .insert("retry-after", warp::http::HeaderValue::from_static("1"));
    }
    // The rest of the body is not read: the connection cannot carry another
    // request.
    if matches!(
        status,
        StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE
    ) {
        response.headers_mut().insert(
            warp::http::header::CONNECTION,
            warp::http::HeaderValue::from_static("close"),
        );
    }
    response
}

fn describe(failure: &Failure) -> (StatusCode, &'static str, String) {
    let (status, code) = failure.status_and_code();
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %failure, "request failed");
        return (status, code, INTERNAL.into());
    }
    tracing::debug!(%code, error = %failure, "request refused");
    (status, code, failure.to_string())
}

/// The rejection handler: every failed request, whatever failed, is
/// answered with `{ "code", "message" }` and a status from this one place.
pub(crate) async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(failure) = rejection.find::<Failure>() {
        return Ok(reply(failure));
    }
    let (status, code, message) = classify(&rejection);
    Ok(json_error(status, code, message))
}

fn classify(rejection: &Rejection) -> (StatusCode, &'static str, String) {
    if rejection.is_not_found() {
        return (StatusCode::NOT_FOUND, "not_found", "no such route".into());
    }
    if rejection.find::<MethodNotAllowed>().is_some() {
        let message = "this route does not take this method".into();
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        );
    }
    if let Some(e) = rejection.find::<PayloadTooLarge>() {
        return (StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string());
    }
    if let Some(e) = rejection.find::<LengthRequired>() {
        return (
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            e.to_string(),
        );
    }
    if let Some(e) = rejection.find::<UnsupportedMediaType>() {
        let status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return (status, "unsupported_media_type", e.to_string());
    }
    if let Some(e) = rejection.find::<InvalidHeader>() {
        return (StatusCode::BAD_REQUEST, "bad_request", e.to_string());
    }
    if let Some(e) = rejection.find::<MissingHeader>() {
        return (StatusCode::BAD_REQUEST, "bad_request", e.to_string());
    }
    if let Some(e) = rejection.find::<InvalidQuery>() {
        return (StatusCode::BAD_REQUEST, "bad_query", e.to_string());
    }
    if let Some(e) = rejection.find::<warp::cors::CorsForbidden>() {
        return (StatusCode::FORBIDDEN, "cors_forbidden", e.to_string());
    }
    tracing::error!(?rejection, "unhandled rejection");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        INTERNAL.into(),
    )
}

/// A byte count as people read it, in `413` messages: `150.0 MiB
/// (157286400 bytes)`, or `512 bytes` under 1 KiB.
pub(crate) fn bytes_for_people(n: u64) -> String {
    if n < 1024 {
        return format!("{n} bytes");
    }
    format!("{} ({n} bytes)", binary_units(n))
}

/// `n` bytes in binary units with one decimal (`1.5 KiB`, `150.0 MiB`), or
/// `512 B` under 1 KiB; a value that would round to 1024.0 moves up a unit.
/// (Pages and errors print sizes alike.)
pub(crate) fn binary_units(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    // Display only: an f64 is exact enough for one decimal.
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
