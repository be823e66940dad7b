//! The API's limits: the largest request body, the size of a log or search
//! page, the longest search query, and how long and how many log
//! long-polls wait.

use std::time::Duration;

/// The longest a `GET /v1/log` request may wait for new entries.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(30);
/// How many `GET /v1/log` requests may wait at once; past that a request
/// is answered at once, as if it had asked not to wait.
pub(crate) const MAX_WAITERS: usize = 256;
/// The most log entries one `GET /v1/log` returns.
pub(crate) const MAX_LOG_LIMIT: usize = 1000;
/// The log entries a `GET /v1/log` returns when it does not say.
pub(crate) const DEFAULT_LOG_LIMIT: usize = 100;
/// The results a `GET /v1/search` returns when it does not say.
pub(crate) const DEFAULT_SEARCH_LIMIT: usize = 20;
/// The most results one `GET /v1/search` returns.
pub(crate) const MAX_SEARCH_LIMIT: usize = 100;
/// The longest query `GET /v1/search` takes, in bytes.
pub(crate) const MAX_QUERY_BYTES: usize = 200;
/// The largest request body of `POST /v1/records`: a signed record
/// ([`MAX_RECORD_BYTES`](ipsr_proto::limits::MAX_RECORD_BYTES)) and 1 KiB
/// to spare, so a record just over its limit is refused as `too_large` by
/// the record rules rather than by the HTTP layer.
pub(crate) const MAX_POST_BODY: usize = ipsr_proto::limits::MAX_RECORD_BYTES + 1024;
