//! `index-v2.json` diffs (`docs/fdroid.md`, section 2): JSON merge patches
//! (RFC 7386) from an earlier build's index to the current one, named in
//! `entry.json`'s `diffs`, so a phone that has the earlier index fetches
//! what changed instead of the whole index. Sans IO.
//!
//! Only a [`Listing`] of each earlier build is kept (a hash of each
//! package's metadata and of each version), not the index itself: a
//! package whose metadata changed gets its whole `metadata` object in the
//! patch, with `null` for each field the index writes that it no longer
//! has; a version that changed gets its whole object likewise; removed
//! packages and versions get `null`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Every `metadata` field [`super::index::index_v2`] may write.
const METADATA_FIELDS: &[&str] = &[
    "added",
    "lastUpdated",
    "name",
    "summary",
    "description",
    "license",
    "webSite",
    "sourceCode",
    "authorName",
    "authorWebSite",
    "categories",
    "preferredSigner",
    "icon",
    "screenshots",
];
/// Every `manifest` field of a version it may write.
const MANIFEST_FIELDS: &[&str] = &[
    "versionName",
    "versionCode",
    "usesSdk",
    "signer",
    "usesPermission",
    "nativecode",
];
/// Every field of a version it may write or leave out (`added`, `file`
/// and `manifest` are always written).
const VERSION_FIELDS: &[&str] = &["whatsNew"];

type Hash = [u8; 16];

fn hash(value: &Value) -> Hash {
    let digest = Sha256::digest(serde_json::to_vec(value).unwrap_or_default());
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// What one build listed: per package, the hash of its metadata and of
/// each version (by its key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Listing {
    packages: BTreeMap<String, (Hash, BTreeMap<String, Hash>)>,
}

impl Listing {
    /// The listing of an `index-v2.json`.
    pub(crate) fn of(index: &Value) -> Self {
        let mut packages = BTreeMap::new();
        for (name, package) in index["packages"].as_object().into_iter().flatten() {
            let versions = package["versions"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), hash(v)))
                .collect();
            packages.insert(name.clone(), (hash(&package["metadata"]), versions));
        }
        Self { packages }
    }
}

/// The merge patch that turns the index `old` listed into `new`.
pub(crate) fn diff(old: &Listing, new: &Value) -> Value {
    let mut packages = Map::new();
    for name in old.packages.keys() {
        if new["packages"].get(name).is_none() {
            packages.insert(name.clone(), Value::Null);
        }
    }
    for (name, package) in new["packages"].as_object().into_iter().flatten() {
        let Some((meta_hash, versions)) = old.packages.get(name) else {
            packages.insert(name.clone(), package.clone());
            continue;
        };
        let mut patch = Map::new();
        if hash(&package["metadata"]) != *meta_hash {
            patch.insert(
                "metadata".into(),
                whole(&package["metadata"], METADATA_FIELDS, None),
            );
        }
        let mut version_patch = Map::new();
        let new_versions = package["versions"].as_object();
        for key in versions.keys() {
            if new_versions.is_none_or(|v| !v.contains_key(key)) {
                version_patch.insert(key.clone(), Value::Null);
            }
        }
        for (key, version) in new_versions.into_iter().flatten() {
            if versions.get(key) != Some(&hash(version)) {
                version_patch.insert(
                    key.clone(),
                    whole(version, VERSION_FIELDS, Some(MANIFEST_FIELDS)),
                );
            }
        }
        if !version_patch.is_empty() {
            patch.insert("versions".into(), Value::Object(version_patch));
        }
        if !patch.is_empty() {
            packages.insert(name.clone(), Value::Object(patch));
        }
    }
    let mut out = Map::new();
    out.insert("repo".into(), new["repo"].clone());
    if !packages.is_empty() {
        out.insert("packages".into(), Value::Object(packages));
    }
    Value::Object(out)
}

/// `value` with `null` for each of `fields` it lacks, and its `manifest`
/// likewise for `manifest_fields`: merged over any earlier object, it
/// leaves exactly `value`.
fn whole(value: &Value, fields: &[&str], manifest_fields: Option<&[&str]>) -> Value {
    let mut out = value.as_object().cloned().unwrap_or_default();
    for field in fields {
        out.entry(*field).or_insert(Value::Null);
    }
    if let (Some(fields), Some(manifest)) = (manifest_fields, out.get_mut("manifest")) {
        *manifest = whole(manifest, fields, None);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// RFC 7386, section 2.
    fn apply(target: &mut Value, patch: &Value) {
        let Some(patch) = patch.as_object() else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        let map = target.as_object_mut().unwrap();
        for (k, v) in patch {
            if v.is_null() {
                map.remove(k);
            } else {
                apply(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }

    #[test]
    fn the_patch_turns_the_old_index_into_the_new() {
        let old = json!({
            "repo": {"timestamp": 1, "address": "a"},
            "packages": {
                "gone": {"metadata": {"added": 1}, "versions": {}},
                "same": {"metadata": {"added": 1, "name": {"en-US": "S"}},
                         "versions": {"aa": {"added": 1, "manifest": {"versionCode": 1}}}},
                "moved": {"metadata": {"added": 1, "summary": {"en-US": "old"}, "license": "MIT"},
                          "versions": {
                              "bb": {"added": 1, "whatsNew": {"en-US": "w"},
                                     "manifest": {"versionCode": 1, "signer": {"sha256": ["x"]},
                                                  "nativecode": ["x86"]}},
                              "cc": {"added": 2, "manifest": {"versionCode": 2}}}}
            }
        });
        let new = json!({
            "repo": {"timestamp": 2, "address": "a"},
            "packages": {
                "same": {"metadata": {"added": 1, "name": {"en-US": "S"}},
                         "versions": {"aa": {"added": 1, "manifest": {"versionCode": 1}}}},
                "moved": {"metadata": {"added": 1, "summary": {"en-US": "new"}},
                          "versions": {
                              "bb": {"added": 1, "manifest": {"versionCode": 1}},
                              "dd": {"added": 3, "manifest": {"versionCode": 3}}}},
                "fresh": {"metadata": {"added": 5}, "versions": {}}
            }
        });
        let patch = diff(&Listing::of(&old), &new);
        assert!(
            patch["packages"].get("same").is_none(),
            "unchanged: left out"
        );
        assert_eq!(patch["packages"]["gone"], Value::Null);
        assert_eq!(patch["packages"]["moved"]["versions"]["cc"], Value::Null);
        let mut applied = old.clone();
        apply(&mut applied, &patch);
        assert_eq!(applied, new);
        // Nothing changed but the repo: a patch of the repo alone.
        let again = diff(&Listing::of(&new), &new);
        assert_eq!(again, json!({"repo": new["repo"]}));
    }
}
