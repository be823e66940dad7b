//! The JSON API's read handlers: plain async functions from parsed requests
//! to bodies, every answer read from the [`Index`](ipsr_indexer::Index).

use bytes::Bytes;
use ipsr_indexer::PackageView;
use ipsr_node::views::{IdentityView, Package, ReleaseView, cert_check, names_certificate};
use ipsr_proto::{
    AuthorId, AuthorKey, ContentId, IdentityState, PackageKey, PackageName, PackageState, Platform,
    ReleaseKey, Version,
};
use serde::Serialize;

use crate::error::Failure;
use crate::state::Gateway;

/// The most search hits or recent releases one listing looks through.
pub(crate) const MAX_SCAN: usize = 1000;
/// Results per page when the request does not say.
pub(crate) const DEFAULT_LIMIT: usize = 20;
/// The most results per page.
pub(crate) const MAX_LIMIT: usize = 100;

pub(crate) fn author(text: &str) -> Result<AuthorId, Failure> {
    text.parse().map_err(|e| Failure::bad("author", e))
}

pub(crate) fn package_name(text: &str) -> Result<PackageName, Failure> {
    text.parse().map_err(|e| Failure::bad("package", e))
}

pub(crate) fn version(text: &str) -> Result<Version, Failure> {
    text.parse().map_err(|e| Failure::bad("version", e))
}

pub(crate) fn package_key(author_text: &str, package_text: &str) -> Result<PackageKey, Failure> {
    Ok(PackageKey {
        author: author(author_text)?,
        package: package_name(package_text)?,
    })
}

/// A package in a listing: what a store front shows in a list.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PackageSummary {
    pub(crate) author: AuthorId,
    pub(crate) package: PackageName,
    pub(crate) title: String,
    pub(crate) summary: String,
    /// The newest non-yanked release, `null` when all are yanked.
    pub(crate) newest: Option<Version>,
    pub(crate) platform: Platform,
    pub(crate) categories: Vec<String>,
    pub(crate) icon: Option<ContentId>,
    /// `created_at` of the release shown (Unix ms).
    pub(crate) updated_at: u64,
}

impl PackageSummary {
    pub(crate) fn of(view: &Package) -> Option<Self> {
        let shown = view
            .newest
            .as_ref()
            .and_then(|n| view.versions.iter().find(|v| &v.version == n))
            .or(view.versions.first())?;
        Some(Self {
            author: view.author,
            package: view.package.clone(),
            title: view.metadata.title.clone(),
            summary: view.metadata.summary.clone(),
            newest: view.newest.clone(),
            platform: shown.platform.clone(),
            categories: view.metadata.categories.clone(),
            icon: view.metadata.icon,
            updated_at: shown.created_at,
        })
    }
}

/// Who an author is, as a package's pages and JSON show it
/// (`docs/records.md`, section 8).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AuthorSummary {
    /// The display name of the author's identity, empty when none.
    pub(crate) name: String,
    /// How many keys sign the author's releases.
    pub(crate) signers: usize,
    /// How many of them a release needs.
    pub(crate) threshold: u32,
    /// Whether two identity documents follow the same one (a fork).
    pub(crate) disputed: bool,
}

impl AuthorSummary {
    fn of(state: &IdentityState) -> Self {
        let identity = state.identity();
        Self {
            name: identity.name,
            signers: identity.signers.len(),
            threshold: identity.threshold,
            disputed: !state.forks().is_empty(),
        }
    }
}

/// The answer to `GET /api/v1/package/{author}/{package}`: the package and
/// who its author is.
#[derive(Debug, Serialize)]
pub(crate) struct PackageAnswer {
    #[serde(flatten)]
    pub(crate) package: Package,
    pub(crate) author_identity: AuthorSummary,
    /// Of the newest release's record, when there is one.
    pub(crate) newest_signatures: Option<Signatures>,
}

/// `GET /api/v1/package/{author}/{package}`.
pub(crate) async fn package(g: &Gateway, key: &PackageKey) -> Result<PackageAnswer, Failure> {
    let (state, identity) = g.index().package_with_identity(key).await?;
    package_answer(key, state, identity)
}

/// [`package`] as JSON: the bytes rendered before while the index names
/// the same state ([`crate::rendered`]), else rendered now (and kept).
pub(crate) async fn package_json(g: &Gateway, key: &PackageKey) -> Result<Bytes, Failure> {
    let kept = g.rendered().get(key);
    let read = g
        .index()
        .package_view(key, kept.as_ref().map(|k| &k.token))
        .await?;
    let (state, identity, token) = match (read, kept) {
        (PackageView::Unchanged, Some(kept)) => return Ok(kept.body),
        (PackageView::Unchanged, None) => {
            return Err(Failure::Internal(format!(
                "the index found the view of {key} unchanged, but none was read"
            )));
        }
        (
            PackageView::Read {
                state,
                identity,
                token,
            },
            _,
        ) => (state, identity, token),
    };
    let body = to_json(&package_answer(key, state, identity)?)?;
    if let Some(token) = token {
        g.rendered().keep(key.clone(), token, body.clone());
    }
    Ok(body)
}

/// A package's answer from its state (`None`: not known) and its author's
/// identity.
fn package_answer(
    key: &PackageKey,
    state: Option<PackageState>,
    identity: IdentityState,
) -> Result<PackageAnswer, Failure> {
    let package = state
        .as_ref()
        .and_then(Package::new)
        .ok_or_else(|| Failure::NotFound(format!("no release of {key} is known")))?;
    let authority = identity.authority();
    let newest_signatures = state
        .as_ref()
        .and_then(PackageState::newest)
        .map(|r| Signatures::of(&authority, r));
    Ok(PackageAnswer {
        package,
        author_identity: AuthorSummary::of(&identity),
        newest_signatures,
    })
}

/// `value` as a JSON body.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Bytes, Failure> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Failure::Internal(format!("cannot render JSON: {e}")))
}

/// How many signers of the author's identity signed a release record.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Signatures {
    /// Signatures by signers of the identity in force.
    pub(crate) signed: usize,
    /// How many the identity needs.
    pub(crate) needed: u32,
    /// How many signers it names.
    pub(crate) signers: usize,
}

impl Signatures {
    fn of(authority: &ipsr_proto::Authority, record: &ipsr_proto::SignedRecord) -> Self {
        Self {
            signed: authority.count(record.approvals()),
            needed: authority.threshold,
            signers: authority.signers.len(),
        }
    }
}

/// The answer to `GET /api/v1/package/{author}/{package}/{version}`.
#[derive(Debug, Serialize)]
pub(crate) struct ReleaseAnswer {
    #[serde(flatten)]
    pub(crate) release: ReleaseView,
    /// Of the release record in force.
    pub(crate) signatures: Signatures,
}

/// `GET /api/v1/package/{author}/{package}/{version}`.
pub(crate) async fn release(g: &Gateway, key: &ReleaseKey) -> Result<ReleaseAnswer, Failure> {
    let state = g.index().release(key).await?;
    let not_found = || Failure::NotFound(format!("{key} is not known"));
    let state = state.ok_or_else(not_found)?;
    // Rule 9 looks at the package's other releases.
    let check = match names_certificate(&state) {
        true => cert_check(
            g.index().package(&key.package_key()).await?.as_ref(),
            &key.version,
        ),
        false => None,
    };
    let view = ReleaseView::new(&state, check).ok_or_else(not_found)?;
    let authority = g.index().identity(&key.author).await?.authority();
    let signatures = match state.release() {
        Some(r) => Signatures::of(&authority, r),
        None => Signatures {
            signed: 0,
            needed: authority.threshold,
            signers: authority.signers.len(),
        },
    };
    Ok(ReleaseAnswer {
        release: view,
        signatures,
    })
}

/// The answer to `GET /api/v1/author/{author}`.
#[derive(Debug, Serialize)]
pub(crate) struct AuthorView {
    pub(crate) author: AuthorId,
    pub(crate) packages: Vec<PackageSummary>,
    /// The identity in force, with the chain that proves it
    /// (`docs/node-api.md`, `GET /v1/authors/{author}`).
    pub(crate) identity: IdentityView,
}

/// `GET /api/v1/author/{author}`: every package of the author, in name
/// order, and the author's identity; 404 when neither is known.
pub(crate) async fn author_view(g: &Gateway, author: AuthorId) -> Result<AuthorView, Failure> {
    let names = g.index().author(&author).await?;
    let identity = g.index().identity(&author).await?;
    let mut packages = Vec::with_capacity(names.len());
    for package in names {
        let key = PackageKey { author, package };
        if let Some(summary) = summary(g, &key).await? {
            packages.push(summary);
        }
    }
    if packages.is_empty() && identity.head().is_none() {
        return Err(Failure::NotFound(format!(
            "no package of author {author} is known"
        )));
    }
    Ok(AuthorView {
        author,
        packages,
        identity: IdentityView::new(&identity),
    })
}

async fn summary(g: &Gateway, key: &PackageKey) -> Result<Option<PackageSummary>, Failure> {
    let state: Option<PackageState> = g.index().package(key).await?;
    Ok(state
        .as_ref()
        .and_then(Package::new)
        .as_ref()
        .and_then(PackageSummary::of))
}

/// The query of `GET /api/v1/packages`, parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ListQuery {
    pub(crate) q: Option<String>,
    pub(crate) platform: Option<String>,
    pub(crate) category: Option<String>,
    pub(crate) offset: usize,
    pub(crate) limit: usize,
}

impl ListQuery {
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Self, Failure> {
        let mut query = Self {
            limit: DEFAULT_LIMIT,
            ..Self::default()
        };
        for (name, value) in pairs {
            match name.as_str() {
                "q" => query.q = Some(value.trim().to_owned()).filter(|q| !q.is_empty()),
                "platform" => query.platform = Some(value.clone()).filter(|v| !v.is_empty()),
                "category" => query.category = Some(value.clone()).filter(|v| !v.is_empty()),
                "cursor" if value.is_empty() => {}
                "cursor" => {
                    query.offset = value
                        .parse()
                        .ok()
                        .filter(|n| *n < MAX_SCAN)
                        .ok_or_else(|| Failure::bad("cursor", "not a cursor this API gave"))?;
                }
                "limit" => {
                    let n: usize = value
                        .parse()
                        .map_err(|_| Failure::bad("limit", "must be an integer from 1"))?;
                    if n == 0 {
                        return Err(Failure::bad("limit", "must be an integer from 1"));
                    }
                    query.limit = n.min(MAX_LIMIT);
                }
                _ => {}
            }
        }
        if query.q.as_ref().is_some_and(|q| q.len() > 200) {
            return Err(Failure::bad("q", "at most 200 bytes"));
        }
        Ok(query)
    }

    fn matches(&self, summary: &PackageSummary) -> bool {
        self.platform
            .as_ref()
            .is_none_or(|p| summary.platform.as_str() == p)
            && self
                .category
                .as_ref()
                .is_none_or(|c| summary.categories.iter().any(|have| have == c))
    }
}

/// The answer to `GET /api/v1/packages`.
#[derive(Debug, Serialize)]
pub(crate) struct Listing {
    pub(crate) packages: Vec<PackageSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// `GET /api/v1/packages`: search results (with `q`), else the packages
/// with the most recent releases, filtered and paginated.
///
/// The cursor is a position in the candidates (hits or recent packages,
/// at most [`MAX_SCAN`]), so a page reads the index and the packages it
/// shows, not the pages before it. The index is asked for a little more
/// than the page needs, and for [`MAX_SCAN`] only when filters leave the
/// page short.
pub(crate) async fn list(g: &Gateway, query: &ListQuery) -> Result<Listing, Failure> {
    let mut ask = (query.offset + 2 * query.limit + 1).min(MAX_SCAN);
    let mut packages = Vec::with_capacity(query.limit);
    let mut position = query.offset;
    loop {
        let (candidates, exhausted) = candidates(g, query.q.as_deref(), ask).await?;
        for key in candidates.iter().skip(position) {
            let Some(summary) = summary(g, key).await? else {
                position += 1;
                continue;
            };
            if !query.matches(&summary) {
                position += 1;
                continue;
            }
            if packages.len() == query.limit {
                // One more to show: the next page starts with it.
                return Ok(Listing {
                    packages,
                    next_cursor: Some(position.to_string()),
                });
            }
            packages.push(summary);
            position += 1;
        }
        if exhausted || ask == MAX_SCAN {
            return Ok(Listing {
                packages,
                next_cursor: None,
            });
        }
        ask = MAX_SCAN;
    }
}

/// The first packages of a listing, from `ask` hits or recent releases, and
/// whether the index has no more than these.
async fn candidates(
    g: &Gateway,
    q: Option<&str>,
    ask: usize,
) -> Result<(Vec<PackageKey>, bool), Failure> {
    Ok(match q {
        Some(q) => {
            let hits = g.index().search(q, ask).await?;
            let exhausted = hits.len() < ask;
            (hits.into_iter().map(|hit| hit.package).collect(), exhausted)
        }
        None => {
            let releases = g.index().recent_keys(ask).await?;
            let exhausted = releases.len() < ask;
            let mut seen = std::collections::HashSet::new();
            let keys = releases
                .iter()
                .map(ReleaseKey::package_key)
                .filter(|key| seen.insert(key.clone()))
                .collect();
            (keys, exhausted)
        }
    })
}

/// The answer to `GET /healthz`.
#[derive(Debug, Serialize)]
pub(crate) struct Health {
    pub(crate) status: &'static str,
    pub(crate) peer_id: String,
    pub(crate) peers: usize,
}

/// `GET /healthz`: 200 when the node runs and the index answers.
pub(crate) async fn health(g: &Gateway) -> Result<Health, Failure> {
    let peers = g.node().peers().await?.len();
    // A point query proves the index answers (Redis is reachable).
    let probe = PackageKey {
        author: AuthorKey::from_seed(&[0; 32]).author_id(),
        package: package_name("health.check")?,
    };
    g.index().package(&probe).await?;
    Ok(Health {
        status: "ok",
        peer_id: g.node().peer_id().to_string(),
        peers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn list_query_defaults_and_limits() {
        let q = ListQuery::parse(&[]).unwrap();
        assert_eq!((q.offset, q.limit, q.q), (0, DEFAULT_LIMIT, None));
        let q =
            ListQuery::parse(&pairs(&[("limit", "5000"), ("cursor", "40"), ("q", " ")])).unwrap();
        assert_eq!((q.offset, q.limit, q.q), (40, MAX_LIMIT, None));
        for bad in [
            ("limit", "0"),
            ("limit", "x"),
            ("cursor", "-1"),
            ("cursor", "1000"),
        ] {
            let e = ListQuery::parse(&pairs(&[bad])).unwrap_err();
            assert_eq!(e.status_and_code().0.as_u16(), 400, "{bad:?}");
        }
    }
}
