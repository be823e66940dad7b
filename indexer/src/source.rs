//! Where the indexer reads the node's record log: over the node's HTTP API
//! ([`HttpSource`], `GET /v1/log` long-polls) or from a node running in the
//! same process ([`LocalSource`]). Either hands over raw signed record
//! bytes; the indexer verifies every one again.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipsr_node::ApiToken;
use serde::Deserialize;

use crate::SourceError;

/// The largest answer body read from `GET /v1/log` (1000 records of at most
/// 10 KiB, in base64, with JSON around them).
const MAX_BODY: u64 = 32 * 1024 * 1024;

/// One log entry: its position and the signed record bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The position in the node's log (from 1; positions of compacted
    /// entries are skipped).
    pub position: u64,
    /// The signed record, as the node holds it. Not verified yet.
    pub bytes: Vec<u8>,
}

/// A page of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The last position in the log when the page was read.
    pub head: u64,
    /// Where to read on from: every entry up to it has been read (the last
    /// entry's position when the page is full, else the head). Never less
    /// than the requested position.
    pub next: u64,
    /// Entries after the requested position, in order.
    pub entries: Vec<Entry>,
}

/// A node's record log, read from a position.
pub trait Source: Send + Sync {
    /// A stable name of the node whose log this is (its peer id): the
    /// indexer keeps one cursor per node.
    fn node_id(&mut self) -> impl Future<Output = Result<String, SourceError>> + Send;

    /// Up to `limit` entries after position `after`; when there are none
    /// yet, waits up to `wait` for some.
    fn page(
        &mut self,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Page, SourceError>> + Send;
}

/// The log of a node over its HTTP API (`docs/node-api.md`), with the
/// node's API token when it requires one ([`HttpSource::with_token`]).
#[derive(Debug, Clone)]
pub struct HttpSource {
    base: String,
    agent: ureq::Agent,
    token: Option<ApiToken>,
}

#[derive(Deserialize)]
struct LogAnswer {
    head: u64,
    /// Absent from nodes whose log was never compacted: the last entry's
    /// position then.
    next: Option<u64>,
    entries: Vec<LogEntry>,
}

#[derive(Deserialize)]
struct LogEntry {
    position: u64,
    record: String,
}

#[derive(Deserialize)]
struct StatusAnswer {
    peer_id: String,
}

impl HttpSource {
    /// The node whose API is at `base` (e.g. `http://127.0.0.1:5050`).
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(90)))
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            agent,
            token: None,
        }
    }

    /// Sends `token` with every request (`Authorization: Bearer TOKEN`): a
    /// node whose API is off loopback, or was given a token file, answers
    /// nothing without it (`docs/node-api.md`, "Authentication").
    pub fn with_token(mut self, token: ApiToken) -> Self {
        self.token = Some(token);
        self
    }

    async fn get(&self, path: String) -> Result<(String, String), SourceError> {
        let url = format!("{}{path}", self.base);
        let agent = self.agent.clone();
        let authorization = self.token.as_ref().map(ApiToken::bearer);
        tokio::task::spawn_blocking(move || {
            let fail = |reason: String| SourceError::Http {
                url: url.clone(),
                reason,
            };
            let mut request = agent.get(&url);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let mut response = request.call().map_err(|e| match e {
                ureq::Error::StatusCode(401) => fail(
                    "401: the node's API requires its token, and this one was missing or \
                     wrong (--node-token-file)"
                        .into(),
                ),
                e => fail(e.to_string()),
            })?;
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_string()
                .map_err(|e| fail(e.to_string()))?;
            Ok((url, body))
        })
        .await
        .map_err(SourceError::Task)?
    }
}

impl Source for HttpSource {
    async fn node_id(&mut self) -> Result<String, SourceError> {
        let (url, body) = self.get("/v1/status".into()).await?;
        let status: StatusAnswer =
            serde_json::from_str(&body).map_err(|e| SourceError::BadAnswer {
                url,
                reason: e.to_string(),
            })?;
        Ok(status.peer_id)
    }

    async fn page(
        &mut self,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<Page, SourceError> {
        let path = format!(
            "/v1/log?after={after}&limit={limit}&wait={}",
            wait.as_secs()
        );
        let (url, body) = self.get(path).await?;
        let bad = |reason: String| SourceError::BadAnswer {
            url: url.clone(),
            reason,
        };
        let answer: LogAnswer = serde_json::from_str(&body).map_err(|e| bad(e.to_string()))?;
        let last = answer.entries.last().map_or(after, |e| e.position);
        let next = answer.next.unwrap_or(last);
        let mut entries = Vec::with_capacity(answer.entries.len());
        let mut previous = after;
        for e in answer.entries {
            // In order, after `after`, and within what `next` says was read.
            if e.position <= previous || e.position > next {
                return Err(bad(format!("entry {} out of order", e.position)));
            }
            previous = e.position;
            let bytes = STANDARD
                .decode(e.record.as_bytes())
                .map_err(|err| bad(format!("entry {}: {err}", e.position)))?;
            entries.push(Entry {
                position: e.position,
                bytes,
            });
        }
        if next < after {
            return Err(bad(format!("next {next} is before after {after}")));
        }
        Ok(Page {
            head: answer.head,
            next,
            entries,
        })
    }
}

/// The log of a node running in this process (e.g. inside the gateway).
#[derive(Debug, Clone)]
pub struct LocalSource {
    client: ipsr_node::Client,
}

impl LocalSource {
    /// Reads `client`'s store and waits on its log head.
    pub fn new(client: ipsr_node::Client) -> Self {
        Self { client }
    }

    async fn read(&self, after: u64, limit: usize) -> Result<Page, SourceError> {
        let store = self.client.store().clone();
        let page = tokio::task::spawn_blocking(move || store.log_bytes_after(after, limit))
            .await
            .map_err(SourceError::Task)??;
        Ok(Page {
            head: page.head,
            next: page.next,
            entries: page
                .entries
                .into_iter()
                .map(|(position, bytes)| Entry { position, bytes })
                .collect(),
        })
    }
}

impl Source for LocalSource {
    async fn node_id(&mut self) -> Result<String, SourceError> {
        Ok(self.client.peer_id().to_string())
    }

    async fn page(
        &mut self,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<Page, SourceError> {
        let mut head_rx = self.client.log_head();
        let mut page = self.read(after, limit).await?;
        if page.entries.is_empty() && !wait.is_zero() {
            // As the HTTP long-poll: wait for the head to pass what was
            // read (compacted positions included); timing out is an empty
            // page.
            let next = page.next;
            let _ = tokio::time::timeout(wait, head_rx.wait_for(|h| *h > next)).await;
            page = self.read(after, limit).await?;
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use ipsr_testkit::{key, release};

    use super::*;

    /// A node whose API requires its token answers the source only when it
    /// sends it; without it, the error names the flag to pass.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_that_requires_its_token_is_sent_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = ipsr_node::Config::local(dir.path().to_owned());
        let node = ipsr_node::spawn(config).await.unwrap();
        node.publish(release(&key(1), "1.0.0").sign())
            .await
            .unwrap();
        let token = ApiToken::new("indexer-test-token-7c2e9a40b1").unwrap();
        let loopback = "127.0.0.1:0".parse().unwrap();
        let (addr, server) = ipsr_node::serve_api_with_token(node.clone(), loopback, token.clone())
            .await
            .unwrap();
        tokio::spawn(server);
        let base = format!("http://{addr}");

        let e = HttpSource::new(&base).node_id().await.unwrap_err();
        assert!(e.to_string().contains("--node-token-file"), "{e}");
        let mut source = HttpSource::new(&base).with_token(token);
        assert_eq!(source.node_id().await.unwrap(), node.peer_id().to_string());
        let page = source.page(0, 10, Duration::ZERO).await.unwrap();
        assert_eq!((page.head, page.entries.len()), (1, 1));
    }
}
