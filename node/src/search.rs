//! The search rules every search of IPSR shares (the node's
//! `GET /v1/search` and both backends of `ipsr-indexer`, which re-exports
//! this module): how a package's name and title become weighted terms, and
//! how a query is scored against them.
//!
//! * Text is lower-cased (Unicode) and split into words at every character
//!   that is not alphanumeric (so `com.example.my_app` gives `com`,
//!   `example`, `my`, `app`). Words longer than [`MAX_WORD`] characters are
//!   cut to that length.
//! * Each word is indexed whole and by every prefix of [`MIN_PREFIX`] to
//!   [`MAX_PREFIX`] characters. A term's weight is the highest of:
//!   last name segment word exact [`W_NAME_LAST`], other name word exact
//!   [`W_NAME`], title word exact [`W_TITLE`], name word prefix
//!   [`W_NAME_PREFIX`], title word prefix [`W_TITLE_PREFIX`].
//! * A query is split the same way; words shorter than [`MIN_PREFIX`] are
//!   dropped. A package matches when every query word is one of its terms;
//!   its score is the sum of those terms' weights. Results are ordered by
//!   score (highest first), then by `author/package` (byte order).

use std::collections::BTreeMap;

use ipsr_proto::{PackageKey, PackageState, ReleaseKey, Version};

use crate::store::{Store, StoreError};

/// Longest word indexed, in characters.
pub const MAX_WORD: usize = 32;
/// Shortest prefix indexed (and shortest query word used).
pub const MIN_PREFIX: usize = 2;
/// Longest prefix indexed.
pub const MAX_PREFIX: usize = 16;
/// Weight of the last segment of the package name, exact (`app` in `com.example.app`).
pub const W_NAME_LAST: u32 = 10;
/// Weight of another word of the package name, exact.
pub const W_NAME: u32 = 8;
/// Weight of a word of the title, exact.
pub const W_TITLE: u32 = 6;
/// Weight of a prefix of a word of the package name.
pub const W_NAME_PREFIX: u32 = 4;
/// Weight of a prefix of a word of the title.
pub const W_TITLE_PREFIX: u32 = 3;

/// Lower-cased words of `text`, each cut to [`MAX_WORD`] characters.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD).collect())
        .collect()
}

/// The query words that count (at least [`MIN_PREFIX`] characters), deduplicated.
pub fn query_words(query: &str) -> Vec<String> {
    let mut out: Vec<String> = words(query)
        .into_iter()
        .filter(|w| w.chars().count() >= MIN_PREFIX)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Every term of a package with its weight.
pub fn terms(package: &str, title: &str) -> BTreeMap<String, u32> {
    weighted(package, title, true)
}

/// The whole words of a package (its terms that are not only prefixes),
/// each with the weight of the word: what the Redis index keeps per word
/// (`docs/redis.md`, section 4), finding prefixes through its word list.
pub fn whole_words(package: &str, title: &str) -> BTreeMap<String, u32> {
    weighted(package, title, false)
}

fn weighted(package: &str, title: &str, prefixes: bool) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    let mut add = |term: String, weight: u32| {
        let slot = out.entry(term).or_insert(0);
        *slot = (*slot).max(weight);
    };
    let name_words = words(package);
    let last_segment = package.rsplit('.').next().map(words).unwrap_or_default();
    let sources = [
        (name_words, W_NAME, W_NAME_PREFIX),
        (words(title), W_TITLE, W_TITLE_PREFIX),
    ];
    for (list, exact, prefix) in sources {
        for word in list {
            if prefixes {
                let chars: Vec<char> = word.chars().collect();
                for len in MIN_PREFIX..=chars.len().min(MAX_PREFIX) {
                    if len < chars.len() {
                        add(chars[..len].iter().collect(), prefix);
                    }
                }
            }
            let weight = if exact == W_NAME && last_segment.contains(&word) {
                W_NAME_LAST
            } else {
                exact
            };
            add(word, weight);
        }
    }
    out
}

/// The score of a package for the query words, or `None` if one does not match.
pub fn score(terms: &BTreeMap<String, u32>, query: &[String]) -> Option<u32> {
    if query.is_empty() {
        return None;
    }
    query
        .iter()
        .try_fold(0u32, |sum, q| terms.get(q).map(|w| sum.saturating_add(*w)))
}

/// A search result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The package.
    pub package: PackageKey,
    /// Its title (of its newest release; empty when every release is yanked).
    pub title: String,
    /// Its newest release, if any.
    pub newest: Option<Version>,
    /// The score (see the module's rules); higher ranks first.
    pub score: u32,
}

/// The title a package is searched and listed by: its newest release's.
pub fn title(state: &PackageState) -> String {
    state
        .newest()
        .and_then(|r| r.record().as_release())
        .map(|r| r.metadata.title.clone())
        .unwrap_or_default()
}

/// The result order: score, highest first, then `author/package`.
pub fn sort(hits: &mut [Hit]) {
    hits.sort_by_cached_key(|h| (std::cmp::Reverse(h.score), h.package.to_string()));
}

/// Release keys read from the store per page while scanning.
const SCAN_PAGE: usize = 1000;

/// Searches every package of `store` by reading each one: the reference
/// that [`Store::search`](crate::Store::search) (the catalog's word index)
/// and the Redis index answer like, used by tests and benchmarks. At most
/// `limit` hits, in [`sort`] order.
pub fn scan(store: &Store, query: &str, limit: usize) -> Result<Vec<Hit>, StoreError> {
    let words = query_words(query);
    let mut hits = Vec::new();
    if words.is_empty() || limit == 0 {
        return Ok(hits);
    }
    let mut after: Option<ReleaseKey> = None;
    let mut last: Option<PackageKey> = None;
    loop {
        let page = store.release_keys(after.as_ref(), SCAN_PAGE)?;
        let Some(tail) = page.last().cloned() else {
            break;
        };
        for key in page {
            let package = key.package_key();
            if last.as_ref() == Some(&package) {
                continue;
            }
            if let Some(state) = store.package(&package)? {
                let title = title(&state);
                let terms = terms(state.key().package.as_str(), &title);
                if let Some(score) = score(&terms, &words) {
                    hits.push(Hit {
                        package: state.key().clone(),
                        newest: state.newest().map(|r| r.record().version().clone()),
                        title,
                        score,
                    });
                }
            }
            last = Some(package);
        }
        after = Some(tail);
    }
    sort(&mut hits);
    hits.truncate(limit);
    Ok(hits)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn terms_weigh_name_over_title_and_exact_over_prefix() {
        let t = terms("org.fdroid.client", "F-Droid Client");
        assert_eq!(t["client"], W_NAME_LAST);
        assert_eq!(t["fdroid"], W_NAME);
        assert_eq!(t["cl"], W_NAME_PREFIX);
        assert_eq!(t["droid"], W_TITLE);
        assert!(!t.contains_key("c"));
        let q = query_words("Fdroid cli");
        assert_eq!(score(&t, &q), Some(W_NAME + W_NAME_PREFIX));
        assert_eq!(score(&t, &query_words("fdroid nothing")), None);
        assert_eq!(score(&t, &query_words("a")), None);
    }
}
