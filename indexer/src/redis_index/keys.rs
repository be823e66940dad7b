//! The key names of the keyspace (`docs/redis.md`, sections 1 and 2): a
//! package's keys and its member text, the keys across packages, a search
//! word's keys, and the members (`A/N`, `A/N@V`) parsed back.

use std::collections::HashMap;

use ipsr_proto::{AuthorId, PackageKey, PackageName, ReleaseKey};

use crate::search;

/// The key names (`docs/redis.md`).
#[derive(Debug, Clone)]
pub(super) struct Keys {
    pub(super) prefix: String,
}

/// The names of one package's keys, and its member text, formatted once per
/// batch (the text form of an author id is costly to compute).
#[derive(Debug, Clone)]
pub(super) struct Names {
    /// The author's text form `A`.
    pub(super) author: String,
    /// `A/N`.
    pub(super) member: String,
    pub(super) pkg: String,
    pub(super) rel: String,
    pub(super) rec: String,
    pub(super) ver: String,
    pub(super) yanked: String,
}

/// Author ids' text forms, each computed once.
#[derive(Debug, Default)]
pub(super) struct AuthorTexts(HashMap<AuthorId, String>);

impl AuthorTexts {
    pub(super) fn get(&mut self, author: &AuthorId) -> &str {
        self.0.entry(*author).or_insert_with(|| author.to_string())
    }
}

impl Keys {
    /// The names of `pk`'s keys; `author` is the text form of its author.
    pub(super) fn names(&self, pk: &PackageKey, author: &str) -> Names {
        let member = format!("{author}/{}", pk.package);
        // `P kind:{A/N}`, as `Keys::tag`.
        let key = |kind: &str| format!("{}{kind}:{{{member}}}", self.prefix);
        Names {
            author: author.to_owned(),
            pkg: key("pkg"),
            rel: key("rel"),
            rec: key("rec"),
            ver: key("ver"),
            yanked: key("yanked"),
            member,
        }
    }

    fn tag(pk: &PackageKey) -> String {
        format!("{{{}/{}}}", pk.author, pk.package)
    }
    pub(super) fn pkg(&self, pk: &PackageKey) -> String {
        format!("{}pkg:{}", self.prefix, Self::tag(pk))
    }
    pub(super) fn rel(&self, pk: &PackageKey) -> String {
        format!("{}rel:{}", self.prefix, Self::tag(pk))
    }
    pub(super) fn rec(&self, pk: &PackageKey) -> String {
        format!("{}rec:{}", self.prefix, Self::tag(pk))
    }
    /// `P idn:{A}`: the author's identity documents.
    pub(super) fn idn(&self, author: &AuthorId) -> String {
        format!("{}idn:{{{author}}}", self.prefix)
    }
    pub(super) fn global(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }
    pub(super) fn stats(&self) -> String {
        format!("{}{{global}}:stats", self.prefix)
    }
    pub(super) fn counted(&self) -> String {
        format!("{}{{global}}:counted", self.prefix)
    }
    pub(super) fn cursor(&self, node: &str) -> String {
        format!("{}cursor:{node}", self.prefix)
    }
}

/// The search keys of a word (suffixes under the prefix): its packages,
/// `s:{xy}W`, and the word list of its bucket, `words:{xy}`, where `xy` is
/// the word's first two characters (fewer for a shorter word). Both share
/// the hash tag, so the `word` script touches one slot; a query word (two
/// characters or more) finds the words it prefixes in its bucket.
pub(super) fn search_keys(word: &str) -> (String, String) {
    let tag: String = word.chars().take(search::MIN_PREFIX).collect();
    (format!("s:{{{tag}}}{word}"), format!("words:{{{tag}}}"))
}

/// The word of a search key suffix (`s:{xy}W` → `W`).
pub(super) fn search_word(suffix: &str) -> Option<&str> {
    suffix.strip_prefix("s:{")?.split_once('}').map(|(_, w)| w)
}

/// Parses `author/package`.
pub(super) fn parse_package_member(m: &str) -> Option<PackageKey> {
    let (author, package) = m.split_once('/')?;
    Some(PackageKey {
        author: author.parse::<AuthorId>().ok()?,
        package: package.parse::<PackageName>().ok()?,
    })
}

/// Parses `author/package@version`.
pub(super) fn parse_release_member(m: &str) -> Option<ReleaseKey> {
    let (package, version) = m.split_once('@')?;
    let pk = parse_package_member(package)?;
    Some(ReleaseKey {
        author: pk.author,
        package: pk.package,
        version: version.parse().ok()?,
    })
}

/// `s` with the characters special in a `SCAN MATCH` pattern escaped.
pub(super) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_documented_keys() {
        let keys = Keys {
            prefix: "ipsr:".into(),
        };
        let pk = PackageKey {
            author: ipsr_proto::AuthorKey::from_seed(&[5; 32]).author_id(),
            package: "com.example.app".parse().expect("name"),
        };
        let author = pk.author.to_string();
        let n = keys.names(&pk, &author);
        assert_eq!(n.member, pk.to_string());
        assert_eq!(n.pkg, format!("ipsr:pkg:{{{author}/com.example.app}}"));
        assert_eq!(n.pkg, keys.pkg(&pk));
        assert_eq!(n.rel, keys.rel(&pk));
        assert_eq!(n.rec, keys.rec(&pk));
        assert_eq!(n.ver, format!("ipsr:ver:{}", Keys::tag(&pk)));
        assert_eq!(n.yanked, format!("ipsr:yanked:{}", Keys::tag(&pk)));
        let mut texts = AuthorTexts::default();
        assert_eq!(texts.get(&pk.author), author);
    }
}
