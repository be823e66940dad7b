//! The gateway's F-Droid repository at `/fdroid/repo` (`docs/fdroid.md`):
//! the signed index files built from the records the gateway holds, cached
//! until the node's log moves, and the APKs, icons and screenshots they
//! name.
//!
//! * `key`: the repository key and certificate ([`RepoKey`]);
//! * `jar`: signed JARs (`entry.jar`, `index-v1.jar`), sans IO;
//! * `index`: what is listed, and the JSON of the index files, sans IO;
//! * `diff`: merge patches from earlier builds' indexes, sans IO;
//! * `serve`: the answers of the repository's paths.

mod diff;
mod index;
mod jar;
mod key;
mod serve;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ipsr_proto::{AuthorId, ContentId, PackageKey, PackageState, Release};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub(crate) use jar::JarError;
pub use key::{KeyError, RepoKey};
pub(crate) use serve::{icon, latest, repo_file};

use crate::error::Failure;
use crate::state::Gateway;

/// Packages read per page while the index is built.
const PAGE: usize = 1_000;
/// Package states read at once while the index is built.
const READS_AT_ONCE: usize = 16;
/// A build that began this soon after the log moved is built again once
/// this much later (a shared Redis may index the last records a moment
/// after this node's log names them).
const SETTLE: Duration = Duration::from_secs(2);
/// A new build begins at least this many times its last build's time after
/// the last began, so builds take at most a fifth of the time however fast
/// the log moves (an author publishing in a loop while polling the index
/// cannot make the gateway build without pause).
const BUILD_SPACING: u32 = 5;
/// Earlier builds whose index a phone may hold and get a diff from.
const DIFFS: usize = 8;
/// Files whose SHA-256 the gateway computes per round (records that do not
/// state one), and how long one may take.
const HASHES_PER_ROUND: usize = 8;
const HASH_TIMEOUT: Duration = Duration::from_secs(120);

/// The repository icon (a PNG), served at `/fdroid/repo/icons/icon.png`.
const ICON: &[u8] = include_bytes!("icon.png");

/// The repository's settings: its key, where its state is kept, and its
/// name and description.
#[derive(Debug, Clone)]
pub struct FdroidConfig {
    /// The repository key.
    pub key: Arc<RepoKey>,
    /// A directory of the gateway's own for the repository's state (the
    /// last timestamp, the SHA-256 computed for records without one).
    pub state_dir: PathBuf,
    /// The repository's name, shown by F-Droid clients.
    pub name: String,
    /// A line about it.
    pub description: String,
}

/// One build of the index files.
#[derive(Debug)]
pub(crate) struct Built {
    /// The log head it was built at, and when the build began.
    head: u64,
    began: Instant,
    /// How long it took.
    took: Duration,
    /// Also built again when the gateway has hashed more files.
    hashed: u64,
    /// `entry.json`'s timestamp (ms).
    pub(crate) timestamp: u64,
    /// The index files, each with its `ETag`.
    pub(crate) files: HashMap<&'static str, (Bytes, String)>,
    /// Diffs by path under the repository (`diff/{timestamp}.json`), each
    /// with its `ETag`.
    pub(crate) diffs: HashMap<String, (Bytes, String)>,
    /// `{package}_{code}.apk` → the release and its SHA-256.
    pub(crate) apks: HashMap<String, (Release, [u8; 32])>,
    /// Icon and screenshot paths → CIDs.
    pub(crate) graphics: index::Files,
    /// Apps listed.
    pub(crate) apps: usize,
}

/// What is kept between starts: the last timestamp and what it was given
/// for, so a restart neither moves it back nor moves it for nothing.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Kept {
    timestamp: u64,
    content: String,
}

/// The repository's state in a gateway.
#[derive(Debug)]
pub(crate) struct Repository {
    config: FdroidConfig,
    built: Mutex<Option<Arc<Built>>>,
    building: tokio::sync::Mutex<()>,
    kept: Mutex<Kept>,
    /// SHA-256 computed by the gateway for records that state none.
    hashes: Mutex<HashMap<ContentId, [u8; 32]>>,
    hashing: tokio::sync::Mutex<()>,
    /// When the log head last changed (as this gateway saw it).
    head_seen: Mutex<(u64, Instant)>,
    /// The listings of the last builds of distinct timestamps, oldest
    /// first, at most [`DIFFS`] of them.
    history: Mutex<std::collections::VecDeque<(u64, diff::Listing)>>,
}

impl Repository {
    pub(crate) fn new(config: FdroidConfig) -> Self {
        let kept = std::fs::read(config.state_dir.join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let hashes = std::fs::read_to_string(config.state_dir.join("sha256.txt"))
            .map(|text| parse_hashes(&text))
            .unwrap_or_default();
        Self {
            config,
            built: Mutex::new(None),
            building: tokio::sync::Mutex::new(()),
            kept: Mutex::new(kept),
            hashes: Mutex::new(hashes),
            hashing: tokio::sync::Mutex::new(()),
            head_seen: Mutex::new((u64::MAX, Instant::now())),
            history: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    pub(crate) fn config(&self) -> &FdroidConfig {
        &self.config
    }

    fn hashed(&self) -> u64 {
        self.hashes.lock().map(|h| h.len() as u64).unwrap_or(0)
    }

    /// Whether `built` still answers for log head `head`.
    fn fresh(&self, built: &Built, head: u64) -> bool {
        let seen = {
            let mut seen = self
                .head_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.0 != head {
                *seen = (head, Instant::now());
            }
            seen.1
        };
        built.head == head
            && built.hashed == self.hashed()
            && (built.began >= seen + SETTLE || seen.elapsed() < SETTLE)
    }
}

/// The current build: the cached one while the log has not moved, else a
/// new one (one build at a time; while one is under way, requests get the
/// last one).
pub(crate) async fn current(g: &Gateway) -> Result<Arc<Built>, Failure> {
    let repo = g
        .fdroid()
        .ok_or_else(|| Failure::NotFound("this gateway serves no F-Droid repository".into()))?;
    let head = *g.node().log_head().borrow();
    let last = repo.built.lock().ok().and_then(|b| b.clone());
    if let Some(last) = &last
        && (repo.fresh(last, head) || last.began.elapsed() < last.took * BUILD_SPACING)
    {
        return Ok(last.clone());
    }
    let _building = match (repo.building.try_lock(), &last) {
        (Ok(guard), _) => guard,
        (Err(_), Some(last)) => return Ok(last.clone()),
        (Err(_), None) => repo.building.lock().await,
    };
    // Another request may have built it meanwhile.
    if let Some(now) = repo.built.lock().ok().and_then(|b| b.clone())
        && repo.fresh(&now, head)
    {
        return Ok(now);
    }
    let began = Instant::now();
    let built = Arc::new(build(g, repo, head, began).await?);
    g.metrics().fdroid_build(built.took.as_secs_f64());
    if let Ok(mut slot) = repo.built.lock() {
        *slot = Some(built.clone());
    }
    tracing::info!(
        apps = built.apps,
        timestamp = built.timestamp,
        ms = began.elapsed().as_millis() as u64,
        "built the F-Droid index"
    );
    Ok(built)
}

async fn build(
    g: &Gateway,
    repo: &Repository,
    head: u64,
    began: Instant,
) -> Result<Built, Failure> {
    let hashed = repo.hashed();
    let mut keys: Vec<PackageKey> = Vec::new();
    loop {
        let page = g.index().packages(keys.last(), PAGE).await?;
        let done = page.len() < PAGE;
        keys.extend(page);
        if done {
            break;
        }
    }
    let mut states: Vec<PackageState> = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(READS_AT_ONCE) {
        let read = futures::future::join_all(chunk.iter().map(|k| g.index().package(k))).await;
        for state in read {
            states.extend(state?);
        }
    }
    let authors: Vec<AuthorId> = states
        .iter()
        .map(|s| s.key().author)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut names: HashMap<AuthorId, String> = HashMap::new();
    for chunk in authors.chunks(READS_AT_ONCE) {
        let read = futures::future::join_all(chunk.iter().map(|a| g.index().identity(a))).await;
        for (a, state) in chunk.iter().zip(read) {
            if let Some(doc) = state.ok().as_ref().and_then(|s| s.head()) {
                let name = doc.identity().name.clone();
                if !name.is_empty() {
                    names.insert(*a, name);
                }
            }
        }
    }
    let hashes = repo.hashes.lock().map(|h| h.clone()).unwrap_or_default();
    let (apps, left_out) = index::select(
        &states,
        |a| names.get(a).cloned(),
        |r| hashes.get(&r.cid).copied(),
    );
    let limit = g.config().max_upload_bytes;
    let missing: Vec<Release> = left_out
        .no_sha256
        .into_iter()
        .filter(|r| r.size <= limit)
        .collect();
    if !missing.is_empty() {
        spawn_hashing(g.clone(), missing);
    }
    if !left_out.contested.is_empty() {
        tracing::debug!(
            names = left_out.contested.len(),
            "package names of several authors left out of the F-Droid index"
        );
    }
    let info = repo_info(g, &repo.config);
    // The timestamp moves only when what is listed changes: the listing is
    // the index written with timestamp 0.
    let mut v2_value = index::index_v2(&info, &apps, 0);
    let content = hex::encode(Sha256::digest(
        serde_json::to_vec(&v2_value).unwrap_or_default(),
    ));
    let timestamp = {
        let mut kept = repo
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.content != content {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            kept.timestamp = now.max(kept.timestamp + 1);
            kept.content = content;
            keep(
                &repo.config.state_dir.join("state.json"),
                &serde_json::to_vec(&*kept).unwrap_or_default(),
            );
        }
        kept.timestamp
    };
    v2_value["repo"]["timestamp"] = timestamp.into();
    let v2 = serde_json::to_vec(&v2_value).map_err(|e| Failure::Internal(e.to_string()))?;
    let patches = diffs(repo, timestamp, &v2_value);
    let listed: Vec<(u64, &[u8], usize)> = patches
        .iter()
        .map(|(at, bytes, n)| (*at, &bytes[..], *n))
        .collect();
    let entry = serde_json::to_vec(&index::entry(timestamp, &v2, apps.len(), &listed))
        .map_err(|e| Failure::Internal(e.to_string()))?;
    let v1 = serde_json::to_vec(&index::index_v1(&info, &apps, timestamp))
        .map_err(|e| Failure::Internal(e.to_string()))?;
    // A JAR whose JSON is the last build's is kept as it was (a signature
    // is new bytes each time: unchanged files keep their ETags).
    let last = repo.built.lock().ok().and_then(|b| b.clone());
    let kept = |jar: &'static str, json: &'static str, now: &[u8]| {
        let last = last.as_ref()?;
        (last.files.get(json)?.0 == now).then(|| last.files.get(jar).cloned())?
    };
    let (kept_entry, kept_v1) = (
        kept("entry.jar", "entry.json", &entry),
        kept("index-v1.jar", "index-v1.json", &v1),
    );
    let key = repo.config.key.clone();
    let (entry_jar, v1_jar) = {
        let (entry, v1) = (entry.clone(), v1.clone());
        tokio::task::spawn_blocking(move || {
            let sign = |kept: Option<(Bytes, String)>, name, json: &[u8]| match kept {
                Some(jar) => Ok(jar),
                None => jar::signed_jar(name, json, &key).map(file),
            };
            Ok::<_, JarError>((
                sign(kept_entry, "entry.json", &entry)?,
                sign(kept_v1, "index-v1.json", &v1)?,
            ))
        })
        .await
        .map_err(|e| Failure::Internal(e.to_string()))?
        .map_err(|e| Failure::Internal(e.to_string()))?
    };
    let mut apks = HashMap::new();
    let mut graphics = index::Files::new();
    for app in &apps {
        for l in &app.versions {
            apks.insert(app.apk_name(&l.release), (l.release.clone(), l.sha256));
        }
        graphics.extend(index::graphics(app).2);
    }
    let files = HashMap::from([
        ("entry.jar", entry_jar),
        ("entry.json", file(entry)),
        ("index-v2.json", file(v2)),
        ("index-v1.jar", v1_jar),
        ("index-v1.json", file(v1)),
    ]);
    let diffs = patches
        .into_iter()
        .map(|(at, bytes, _)| {
            let name = index::diff_name(at);
            (name.trim_start_matches('/').to_owned(), file(bytes))
        })
        .collect();
    Ok(Built {
        diffs,
        head,
        began,
        took: began.elapsed(),
        hashed,
        timestamp,
        files,
        apks,
        graphics,
        apps: apps.len(),
    })
}

/// The repository's links, when the gateway has a repository and an
/// absolute base URL: its address with the fingerprint
/// (`{base}/fdroid/repo?fingerprint=HEX`, what fdroidserver and the
/// clients take) and the link that opens an F-Droid client
/// (`fdroidrepos://…` for https, `fdroidrepo://…` for http).
pub(crate) fn links(g: &Gateway) -> Option<(String, String)> {
    let repo = g.fdroid()?;
    let base = g.base_url()?;
    let url = format!(
        "{base}/fdroid/repo?fingerprint={}",
        repo.config.key.fingerprint()
    );
    let add = if let Some(rest) = url.strip_prefix("https://") {
        format!("fdroidrepos://{rest}")
    } else {
        format!("fdroidrepo://{}", url.trim_start_matches("http://"))
    };
    Some((url, add))
}

/// The patches to the index at `timestamp` (`index`) from each earlier
/// build kept (its timestamp, the patch's bytes, how many packages it
/// names); then this build joins the history.
fn diffs(
    repo: &Repository,
    timestamp: u64,
    index: &serde_json::Value,
) -> Vec<(u64, Vec<u8>, usize)> {
    let mut history = repo
        .history
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let out = history
        .iter()
        .filter(|(at, _)| *at < timestamp)
        .map(|(at, listing)| {
            let patch = diff::diff(listing, index);
            let packages = patch["packages"].as_object().map_or(0, |p| p.len());
            (
                *at,
                serde_json::to_vec(&patch).unwrap_or_default(),
                packages,
            )
        })
        .collect();
    if history.back().is_none_or(|(at, _)| *at != timestamp) {
        history.push_back((timestamp, diff::Listing::of(index)));
        while history.len() > DIFFS {
            history.pop_front();
        }
    }
    out
}

/// A strong `ETag` of bytes: the first half of their SHA-256.
fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..16]))
}

/// A file of a build: its bytes and their `ETag`.
fn file(bytes: Vec<u8>) -> (Bytes, String) {
    let tag = etag(&bytes);
    (Bytes::from(bytes), tag)
}

/// The repository's description, with its address under the gateway's
/// public URL (or the address it is bound to).
fn repo_info(g: &Gateway, config: &FdroidConfig) -> index::RepoInfo {
    let base = g.base_url().unwrap_or_default();
    index::RepoInfo {
        name: config.name.clone(),
        description: config.description.clone(),
        address: format!("{base}/fdroid/repo"),
        web_base_url: base,
        icon: (Sha256::digest(ICON).into(), ICON.len() as u64),
    }
}

/// Computes, one round at a time, the SHA-256 of files whose records state
/// none, and keeps them (`sha256.txt`: `CID HEX` per line).
fn spawn_hashing(g: Gateway, missing: Vec<Release>) {
    tokio::spawn(async move {
        let Some(repo) = g.fdroid() else { return };
        let Ok(_one) = repo.hashing.try_lock() else {
            return;
        };
        for release in missing.into_iter().take(HASHES_PER_ROUND) {
            match crate::download::sha256_of(&g, *release.cid.cid(), HASH_TIMEOUT).await {
                Ok(sha) => {
                    let line = format!("{} {}\n", release.cid, hex::encode(sha));
                    append(&repo.config.state_dir.join("sha256.txt"), line.as_bytes());
                    if let Ok(mut h) = repo.hashes.lock() {
                        h.insert(release.cid, sha);
                    }
                }
                Err(e) => {
                    tracing::debug!(cid = %release.cid, error = %e, "cannot hash a file for the F-Droid index")
                }
            }
        }
    });
}

fn parse_hashes(text: &str) -> HashMap<ContentId, [u8; 32]> {
    text.lines()
        .filter_map(|l| {
            let (cid, sha) = l.split_once(' ')?;
            let sha: [u8; 32] = hex::decode(sha).ok()?.try_into().ok()?;
            Some((cid.parse().ok()?, sha))
        })
        .collect()
}

/// Writes `bytes` to `path` through a temporary file (errors are logged:
/// the repository still serves from memory).
fn keep(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    let done = std::fs::create_dir_all(path.parent().unwrap_or(path))
        .and_then(|()| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = done {
        tracing::warn!(path = %path.display(), error = %e, "cannot keep the F-Droid repository state");
    }
}

fn append(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    let done = std::fs::create_dir_all(path.parent().unwrap_or(path)).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(bytes)
    });
    if let Err(e) = done {
        tracing::warn!(path = %path.display(), error = %e, "cannot keep a computed SHA-256");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computed_hashes_read_back_and_bad_lines_are_skipped() {
        let cid = ipsr_testkit::cid(1);
        let text = format!("{cid} {}\nnonsense\n{cid} zz\n", hex::encode([3u8; 32]));
        let h = parse_hashes(&text);
        assert_eq!(h.len(), 1);
        assert_eq!(h[&cid], [3; 32]);
    }
}
