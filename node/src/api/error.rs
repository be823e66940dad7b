//! Why a request failed, and the one rejection handler that answers every
//! failure with a stable JSON `{ "code": "...", "message": "..." }`.

use std::convert::Infallible;
use std::net::SocketAddr;

use ipsr_proto::{InvalidPackageName, InvalidVersion, ParseAuthorIdError, VerifyError};
use warp::http::StatusCode;
use warp::reject::{InvalidHeader, InvalidQuery, MethodNotAllowed, MissingHeader};
use warp::reply::Response;
use warp::{Rejection, Reply};

use crate::error::NodeError;
use crate::store::StoreError;
use ipsr_content::ContentError;
use ipsr_content::blockstore::BlockstoreError;
use ipsr_content::fetch::FetchError;

use super::guard::Refusal;
use super::models::ErrorBody;

/// An error starting the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// An address off loopback without a token: anyone who can reach it
    /// would control the node.
    #[error(
        "the API at {addr} would be reachable from other machines without a token; \
         serve it with one (serve_api_with_token) or bind a loopback address"
    )]
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
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

/// Why one request failed. The rejection handler maps each variant to a
/// status and a code; the internal ones are logged and shown only as
/// `internal`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The author segment of the path is not a canonical author id.
    #[error("author: {0}")]
    Author(#[source] ParseAuthorIdError),
    /// The package segment of the path is not a package name.
    #[error("package: {0}")]
    Package(#[source] InvalidPackageName),
    /// The version segment of the path is not a canonical version.
    #[error("version: {0}")]
    Version(#[source] InvalidVersion),
    /// A query parameter is not what the route accepts.
    #[error("{param}: {reason}")]
    Query {
        /// The parameter.
        param: &'static str,
        /// What it must be.
        reason: &'static str,
    },
    /// The request body is over the route's limit.
    #[error("request body is over the {limit}-byte limit")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The request body could not be read.
    #[error("cannot read the request body: {0}")]
    BodyRead(String),
    /// The request body is not `application/octet-stream`.
    #[error("the body must be sent as Content-Type: application/octet-stream")]
    MediaType,
    /// Nothing is known under this path.
    #[error("{0}")]
    NotFound(String),
    /// The body is not a valid signed record.
    #[error("{0}")]
    Verify(#[source] VerifyError),
    /// The node has stopped.
    #[error("the node is shutting down")]
    Stopped,
    /// The record's author is over its rate: nothing was stored.
    #[error("{0}")]
    AuthorRateLimited(#[source] NodeError),
    /// The store is behind (its write queue is full): nothing was stored.
    #[error("{0}")]
    StoreBehind(#[source] NodeError),
    /// The store failed (internal).
    #[error("store: {0}")]
    Store(#[source] StoreError),
    /// The node failed (internal).
    #[error("node: {0}")]
    Node(#[source] NodeError),
    /// A blocking task failed (internal).
    #[error("blocking task: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The path holds no valid CID.
    #[error("cid: {0}")]
    Cid(String),
    /// A content operation failed.
    #[error("{0}")]
    Content(#[source] ContentError),
    /// No API token or a wrong one, a web page of another site, or a name
    /// that is not this node's.
    #[error("{0}")]
    Refused(#[source] Refusal),
}

impl warp::reject::Reject for Failure {}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Stopped => Self::Stopped,
            e @ NodeError::AuthorRateLimited { .. } => Self::AuthorRateLimited(e),
            e @ NodeError::StoreBehind { .. } => Self::StoreBehind(e),
            e => Self::Node(e),
        }
    }
}

impl From<ContentError> for Failure {
    fn from(e: ContentError) -> Self {
        Self::Content(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl Failure {
    /// Whether the same request may succeed shortly (answered with
    /// `Retry-After`): nothing is wrong with it, the node is only busy.
    fn retry_later(&self) -> bool {
        matches!(self, Self::AuthorRateLimited(_) | Self::StoreBehind(_))
    }

    /// The status and the stable code of the answer.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Author(_) => (StatusCode::BAD_REQUEST, "bad_author"),
            Self::Package(_) => (StatusCode::BAD_REQUEST, "bad_package"),
            Self::Version(_) => (StatusCode::BAD_REQUEST, "bad_version"),
            Self::Query { .. } => (StatusCode::BAD_REQUEST, "bad_query"),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::BodyRead(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::MediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Verify(e @ VerifyError::TooLarge { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, e.reason())
            }
            Self::Verify(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.reason()),
            Self::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::AuthorRateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "author_rate_limited"),
            Self::StoreBehind(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_behind"),
            Self::Cid(_) => (StatusCode::BAD_REQUEST, "bad_cid"),
            Self::Refused(Refusal::NoToken | Refusal::WrongToken) => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            Self::Refused(Refusal::Host(_)) => (StatusCode::FORBIDDEN, "forbidden_host"),
            Self::Refused(Refusal::CrossOrigin(_)) => (StatusCode::FORBIDDEN, "cross_origin"),
            Self::Content(ContentError::Store(BlockstoreError::Full { .. })) => {
                (StatusCode::INSUFFICIENT_STORAGE, "blockstore_full")
            }
            Self::Content(ContentError::Store(BlockstoreError::QuotaExceeded { .. })) => {
                (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded")
            }
            Self::Content(ContentError::Fetch(FetchError::Stalled(..))) => {
                (StatusCode::GATEWAY_TIMEOUT, "content_unavailable")
            }
            Self::Content(ContentError::Fetch(FetchError::Read(_))) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "not_unixfs")
            }
            Self::Content(ContentError::Stopped(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            Self::Store(_) | Self::Node(_) | Self::Task(_) | Self::Content(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

/// The `WWW-Authenticate` challenge of a `401` (RFC 6750).
const CHALLENGE: &str = "Bearer realm=\"ipsr-node\"";

/// The message shown for internal errors: their details go to the log only.
const INTERNAL: &str = "internal error; see the node's log";

/// The rejection handler: every failed request, whatever failed, is answered
/// with `{ "code", "message" }` and a status from this one place.
pub(crate) async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, code, message) = classify(&rejection);
    let body = warp::reply::json(&ErrorBody { code, message });
    let mut response = warp::reply::with_status(body, status).into_response();
    let later = rejection
        .find::<Failure>()
        .is_some_and(Failure::retry_later);
    if status == StatusCode::TOO_MANY_REQUESTS || later {
        let retry = warp::http::HeaderValue::from_static("1");
        response.headers_mut().insert("retry-after", retry);
    }
    if status == StatusCode::UNAUTHORIZED {
        let challenge = warp::http::HeaderValue::from_static(CHALLENGE);
        response.headers_mut().insert("www-authenticate", challenge);
    }
    Ok(response)
}

fn classify(rejection: &Rejection) -> (StatusCode, &'static str, String) {
    if let Some(failure) = rejection.find::<Failure>() {
        let (status, code) = failure.status_and_code();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %failure, "request failed");
            return (status, code, INTERNAL.into());
        }
        tracing::debug!(%code, error = %failure, "request refused");
        return (status, code, failure.to_string());
    }
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
    if let Some(e) = rejection.find::<InvalidHeader>() {
        return (StatusCode::BAD_REQUEST, "bad_request", e.to_string());
    }
    if let Some(e) = rejection.find::<MissingHeader>() {
        return (StatusCode::BAD_REQUEST, "bad_request", e.to_string());
    }
    if let Some(e) = rejection.find::<InvalidQuery>() {
        return (StatusCode::BAD_REQUEST, "bad_query", e.to_string());
    }
    tracing::error!(?rejection, "unhandled rejection");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        INTERNAL.into(),
    )
}
