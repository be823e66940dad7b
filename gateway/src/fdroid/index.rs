//! What the F-Droid repository lists, and its index files (`docs/fdroid.md`,
//! sections 1 and 2), sans IO: [`select`] picks the apps and versions from
//! package states, [`index_v2`], [`index_v1`] and [`entry`] write the JSON.

use std::collections::BTreeMap;

use ipsr_proto::{AuthorId, PackageName, PackageState, Platform, Release, Version};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The locale every text is listed under (records carry one language).
pub(crate) const LOCALE: &str = "en-US";
/// `entry.json` / `index-v1.json` format version (fdroidserver's, at the
/// time of writing).
pub(crate) const FORMAT_VERSION: u64 = 20002;
/// The repository icon's path under the repository.
pub(crate) const REPO_ICON: &str = "icons/icon.png";

/// One version listed.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// Its release record's content.
    pub(crate) release: Release,
    /// SHA-256 of the APK's bytes.
    pub(crate) sha256: [u8; 32],
}

/// One app listed: a package name, its author and its versions, newest
/// first.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// The author whose package it is.
    pub(crate) author: AuthorId,
    /// The package name (the F-Droid key).
    pub(crate) package: PackageName,
    /// The author's display name, when their identity document has one.
    pub(crate) author_name: Option<String>,
    /// The versions, newest first; never empty.
    pub(crate) versions: Vec<Listed>,
}

impl App {
    /// The newest version (the first).
    pub(crate) fn newest(&self) -> &Listed {
        &self.versions[0]
    }

    /// Its name: the newest version's title, or the package name.
    pub(crate) fn title(&self) -> &str {
        let title = &self.newest().release.metadata.title;
        if title.is_empty() {
            self.package.as_str()
        } else {
            title
        }
    }

    /// When its first and its last listed versions were signed (ms).
    pub(crate) fn dates(&self) -> (u64, u64) {
        let at = self.versions.iter().map(|l| l.release.created_at);
        (at.clone().min().unwrap_or(0), at.max().unwrap_or(0))
    }

    /// The path of the APK of a version under the repository.
    pub(crate) fn apk_name(&self, release: &Release) -> String {
        apk_name(&self.package, release.version_code)
    }
}

/// `{package}_{versionCode}.apk`, the path of an APK under the repository.
pub(crate) fn apk_name(package: &PackageName, version_code: u64) -> String {
    format!("{package}_{version_code}.apk")
}

/// What [`select`] left out, by reason (for logs and metrics).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LeftOut {
    /// Package names published by more than one author.
    pub(crate) contested: Vec<PackageName>,
    /// Versions waiting for their file's SHA-256 (the gateway computes it).
    pub(crate) no_sha256: Vec<Release>,
}

/// The apps of the repository from package states (rules in
/// `docs/fdroid.md`, section 1): a version is listed when its release
/// record is in force (not yanked, not equivocated), its platform is
/// Android, its certificate check is not `changed`, two of its versions do
/// not share a `version_code`, and its SHA-256 is known (the record's, else
/// `sha256_of`'s); a package name published by more than one author is
/// left out; apps by name, versions newest first.
pub(crate) fn select(
    states: &[PackageState],
    author_name: impl Fn(&AuthorId) -> Option<String>,
    sha256_of: impl Fn(&Release) -> Option<[u8; 32]>,
) -> (Vec<App>, LeftOut) {
    let mut left_out = LeftOut::default();
    let mut by_name: BTreeMap<&PackageName, Vec<App>> = BTreeMap::new();
    for state in states {
        let checks = state.cert_checks();
        let mut versions: Vec<Listed> = Vec::new();
        for r in state.releases() {
            if r.is_yanked() || r.is_equivocated() {
                continue;
            }
            let Some(release) = r.release().and_then(|s| s.record().as_release()) else {
                continue;
            };
            if release.platform != Platform::android()
                || checks
                    .get(&release.version)
                    .is_some_and(|c| !c.is_continuous())
            {
                continue;
            }
            let Some(sha256) = release.sha256.or_else(|| sha256_of(release)) else {
                left_out.no_sha256.push(release.clone());
                continue;
            };
            versions.push(Listed {
                release: release.clone(),
                sha256,
            });
        }
        versions.sort_by(|a, b| order(&b.release).cmp(&order(&a.release)));
        // One APK path per version code: the higher version keeps it.
        versions.dedup_by_key(|l| l.release.version_code);
        if versions.is_empty() {
            continue;
        }
        let key = state.key();
        by_name.entry(&key.package).or_default().push(App {
            author: key.author,
            package: key.package.clone(),
            author_name: author_name(&key.author),
            versions,
        });
    }
    let mut apps = Vec::with_capacity(by_name.len());
    for (name, mut claimed) in by_name {
        if claimed.len() == 1 {
            apps.extend(claimed.pop());
        } else {
            left_out.contested.push(name.clone());
        }
    }
    (apps, left_out)
}

fn order(r: &Release) -> (u64, &Version) {
    (r.version_code, &r.version)
}

/// The repository's own description.
#[derive(Debug, Clone)]
pub(crate) struct RepoInfo {
    /// Its name.
    pub(crate) name: String,
    /// A line about it.
    pub(crate) description: String,
    /// The repository's absolute URL (ending in `/fdroid/repo`).
    pub(crate) address: String,
    /// The gateway's web pages.
    pub(crate) web_base_url: String,
    /// SHA-256 and size of the icon at [`REPO_ICON`].
    pub(crate) icon: ([u8; 32], u64),
}

/// A file of the repository that is not an APK: where it is, and the CID
/// it is served from.
pub(crate) type Files = BTreeMap<String, ipsr_proto::ContentId>;

/// The icon and screenshot paths of an app (from its newest version's
/// metadata), with their CIDs.
pub(crate) fn graphics(app: &App) -> (Option<String>, Vec<String>, Files) {
    let meta = &app.newest().release.metadata;
    let mut files = Files::new();
    let icon = meta.icon.map(|cid| {
        let path = format!("{}/{LOCALE}/icon.png", app.package);
        files.insert(path.clone(), cid);
        path
    });
    let shots = meta
        .screenshots
        .iter()
        .enumerate()
        .map(|(i, cid)| {
            let path = format!("{}/{LOCALE}/phoneScreenshots/{}.png", app.package, i + 1);
            files.insert(path.clone(), *cid);
            path
        })
        .collect();
    (icon, shots, files)
}

fn text(s: &str) -> Option<Value> {
    (!s.is_empty()).then(|| json!({ LOCALE: s }))
}

fn put(map: &mut serde_json::Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.into(), v);
    }
}

/// The CIDv1 text of a record's CID (a CIDv0 is written in its v1 form).
fn cid_v1(release: &Release) -> String {
    let cid = release.cid.cid();
    cid::Cid::new_v1(cid.codec(), *cid.hash()).to_string()
}

/// `index-v2.json` for `apps` at `timestamp` (ms).
pub(crate) fn index_v2(repo: &RepoInfo, apps: &[App], timestamp: u64) -> Value {
    let mut packages = serde_json::Map::new();
    for app in apps {
        let newest = &app.newest().release;
        let meta = &newest.metadata;
        let (icon, shots, _) = graphics(app);
        let mut m = serde_json::Map::new();
        let (added, updated) = app.dates();
        m.insert("added".into(), json!(added));
        m.insert("lastUpdated".into(), json!(updated));
        let title = app.title();
        put(&mut m, "name", text(title));
        put(&mut m, "summary", text(&meta.summary));
        put(&mut m, "description", text(&meta.description));
        put(
            &mut m,
            "license",
            (!meta.license.is_empty()).then(|| json!(meta.license)),
        );
        put(
            &mut m,
            "webSite",
            meta.homepage_url.as_ref().map(|u| json!(u)),
        );
        put(
            &mut m,
            "sourceCode",
            meta.source_url.as_ref().map(|u| json!(u)),
        );
        put(
            &mut m,
            "authorName",
            app.author_name.as_ref().map(|n| json!(n)),
        );
        put(
            &mut m,
            "authorWebSite",
            Some(json!(format!("{}/p/{}", repo.web_base_url, app.author))),
        );
        if !meta.categories.is_empty() {
            m.insert("categories".into(), json!(meta.categories));
        }
        put(
            &mut m,
            "preferredSigner",
            meta.signing_cert_sha256.map(|s| json!(hex::encode(s))),
        );
        put(
            &mut m,
            "icon",
            icon.map(|p| json!({ LOCALE: { "name": format!("/{p}") } })),
        );
        if !shots.is_empty() {
            let list: Vec<Value> = shots
                .iter()
                .map(|p| json!({ "name": format!("/{p}") }))
                .collect();
            m.insert("screenshots".into(), json!({ "phone": { LOCALE: list } }));
        }
        let mut versions = serde_json::Map::new();
        for l in &app.versions {
            let r = &l.release;
            let mut manifest = serde_json::Map::new();
            manifest.insert("versionName".into(), json!(r.version.to_string()));
            manifest.insert("versionCode".into(), json!(r.version_code));
            if r.metadata.min_sdk > 0 {
                let target = r.metadata.target_sdk.max(r.metadata.min_sdk);
                manifest.insert(
                    "usesSdk".into(),
                    json!({ "minSdkVersion": r.metadata.min_sdk, "targetSdkVersion": target }),
                );
            }
            put(
                &mut manifest,
                "signer",
                r.metadata
                    .signing_cert_sha256
                    .map(|s| json!({ "sha256": [hex::encode(s)] })),
            );
            if !r.metadata.permissions.is_empty() {
                let perms: Vec<Value> = r
                    .metadata
                    .permissions
                    .iter()
                    .map(|p| json!({ "name": p }))
                    .collect();
                manifest.insert("usesPermission".into(), json!(perms));
            }
            if !r.metadata.native_code.is_empty() {
                manifest.insert("nativecode".into(), json!(r.metadata.native_code));
            }
            let mut version = json!({
                "added": r.created_at,
                "file": {
                    "name": format!("/{}", app.apk_name(r)),
                    "sha256": hex::encode(l.sha256),
                    "size": r.size,
                    "ipfsCIDv1": cid_v1(r),
                },
                "manifest": manifest,
            });
            if !r.metadata.changelog.is_empty() {
                version["whatsNew"] = json!({ LOCALE: r.metadata.changelog });
            }
            versions.insert(hex::encode(l.sha256), version);
        }
        packages.insert(
            app.package.to_string(),
            json!({ "metadata": m, "versions": versions }),
        );
    }
    json!({
        "repo": {
            "name": { LOCALE: repo.name },
            "description": { LOCALE: repo.description },
            "icon": { LOCALE: {
                "name": format!("/{REPO_ICON}"),
                "sha256": hex::encode(repo.icon.0),
                "size": repo.icon.1,
            } },
            "address": repo.address,
            "webBaseUrl": repo.web_base_url,
            "timestamp": timestamp,
        },
        "packages": packages,
    })
}

/// `index-v1.json` for `apps` at `timestamp` (ms), for clients that read
/// only the first JSON format.
pub(crate) fn index_v1(repo: &RepoInfo, apps: &[App], timestamp: u64) -> Value {
    let mut list = Vec::with_capacity(apps.len());
    let mut packages = serde_json::Map::new();
    for app in apps {
        let newest = &app.newest().release;
        let meta = &newest.metadata;
        let (icon, shots, _) = graphics(app);
        let title = app.title();
        let mut localized = serde_json::Map::new();
        localized.insert("name".into(), json!(title));
        put(
            &mut localized,
            "summary",
            (!meta.summary.is_empty()).then(|| json!(meta.summary)),
        );
        put(
            &mut localized,
            "description",
            (!meta.description.is_empty()).then(|| json!(meta.description)),
        );
        put(
            &mut localized,
            "whatsNew",
            (!meta.changelog.is_empty()).then(|| json!(meta.changelog)),
        );
        put(&mut localized, "icon", icon.map(|_| json!("icon.png")));
        if !shots.is_empty() {
            let names: Vec<String> = (1..=shots.len()).map(|i| format!("{i}.png")).collect();
            localized.insert("phoneScreenshots".into(), json!(names));
        }
        let mut a = serde_json::Map::new();
        a.insert("packageName".into(), json!(app.package.as_str()));
        a.insert("name".into(), json!(title));
        put(
            &mut a,
            "summary",
            (!meta.summary.is_empty()).then(|| json!(meta.summary)),
        );
        put(
            &mut a,
            "description",
            (!meta.description.is_empty()).then(|| json!(meta.description)),
        );
        let license = if meta.license.is_empty() {
            "Unknown"
        } else {
            &meta.license
        };
        a.insert("license".into(), json!(license));
        a.insert("categories".into(), json!(meta.categories));
        put(
            &mut a,
            "webSite",
            meta.homepage_url.as_ref().map(|u| json!(u)),
        );
        put(
            &mut a,
            "sourceCode",
            meta.source_url.as_ref().map(|u| json!(u)),
        );
        put(
            &mut a,
            "authorName",
            app.author_name.as_ref().map(|n| json!(n)),
        );
        a.insert(
            "suggestedVersionCode".into(),
            json!(newest.version_code.to_string()),
        );
        a.insert(
            "suggestedVersionName".into(),
            json!(newest.version.to_string()),
        );
        let (added, updated) = app.dates();
        a.insert("added".into(), json!(added));
        a.insert("lastUpdated".into(), json!(updated));
        a.insert("localized".into(), json!({ LOCALE: localized }));
        list.push(Value::Object(a));
        let versions: Vec<Value> = app
            .versions
            .iter()
            .map(|l| {
                let r = &l.release;
                let mut p = serde_json::Map::new();
                p.insert("packageName".into(), json!(app.package.as_str()));
                p.insert("versionCode".into(), json!(r.version_code));
                p.insert("versionName".into(), json!(r.version.to_string()));
                p.insert("apkName".into(), json!(app.apk_name(r)));
                p.insert("hash".into(), json!(hex::encode(l.sha256)));
                p.insert("hashType".into(), json!("sha256"));
                p.insert("size".into(), json!(r.size));
                p.insert("added".into(), json!(r.created_at));
                p.insert("ipfsCIDv1".into(), json!(cid_v1(r)));
                put(
                    &mut p,
                    "signer",
                    r.metadata
                        .signing_cert_sha256
                        .map(|s| json!(hex::encode(s))),
                );
                if r.metadata.min_sdk > 0 {
                    p.insert("minSdkVersion".into(), json!(r.metadata.min_sdk));
                    let target = r.metadata.target_sdk.max(r.metadata.min_sdk);
                    p.insert("targetSdkVersion".into(), json!(target));
                }
                let perms: Vec<Value> = r
                    .metadata
                    .permissions
                    .iter()
                    .map(|n| json!([n, null]))
                    .collect();
                p.insert("uses-permission".into(), json!(perms));
                if !r.metadata.native_code.is_empty() {
                    p.insert("nativecode".into(), json!(r.metadata.native_code));
                }
                Value::Object(p)
            })
            .collect();
        packages.insert(app.package.to_string(), json!(versions));
    }
    json!({
        "repo": {
            "timestamp": timestamp,
            "version": FORMAT_VERSION,
            "name": repo.name,
            "icon": "icon.png",
            "address": repo.address,
            "description": repo.description,
        },
        "requests": { "install": [], "uninstall": [] },
        "apps": list,
        "packages": packages,
    })
}

/// `entry.json`: the timestamp and where `index-v2.json` is, with its
/// SHA-256 and size; and `diffs`: for each earlier timestamp, the patch
/// from that build's index (its bytes and how many packages it names).
pub(crate) fn entry(
    timestamp: u64,
    index_v2: &[u8],
    packages: usize,
    diffs: &[(u64, &[u8], usize)],
) -> Value {
    let file = |name: String, bytes: &[u8], packages: usize| {
        json!({
            "name": name,
            "sha256": hex::encode(Sha256::digest(bytes)),
            "size": bytes.len(),
            "numPackages": packages,
        })
    };
    let diffs: serde_json::Map<String, Value> = diffs
        .iter()
        .map(|(at, bytes, n)| (at.to_string(), file(diff_name(*at), bytes, *n)))
        .collect();
    json!({
        "timestamp": timestamp,
        "version": FORMAT_VERSION,
        "index": file("/index-v2.json".into(), index_v2, packages),
        "diffs": diffs,
    })
}

/// `/diff/{timestamp}.json`: the path of the patch from the build of
/// `timestamp`.
pub(crate) fn diff_name(timestamp: u64) -> String {
    format!("/diff/{timestamp}.json")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use ipsr_proto::{AuthorKey, PackageKey};
    use ipsr_testkit::{cid, release as build};

    use super::*;

    fn release(key: &AuthorKey, package: &str, version: &str, code: u64) -> Release {
        build(key, version)
            .package(package)
            .code(code)
            .seq(code)
            .cid(cid(code as u32))
            .size(100 + code)
            .platform(Platform::android())
            .sha256([code as u8; 32])
            .metadata(|m| m.signing_cert_sha256 = Some([7; 32]))
            .build()
    }

    fn state(key: &AuthorKey, package: &str, releases: Vec<Release>) -> PackageState {
        let mut s = PackageState::with_apk_certs(
            PackageKey {
                author: key.author_id(),
                package: package.parse().unwrap(),
            },
            BTreeSet::new(),
        );
        for r in releases {
            s.apply(r.sign(key).unwrap()).unwrap();
        }
        s
    }

    #[test]
    fn listed_versions_are_in_force_android_continuous_and_hashed() {
        let a = AuthorKey::from_seed(&[1; 32]);
        let mut changed = release(&a, "com.example.app", "3.0.0", 3);
        changed.metadata.signing_cert_sha256 = Some([9; 32]);
        let mut ios = release(&a, "com.example.app", "4.0.0", 4);
        ios.platform = Platform::ios();
        let mut unhashed = release(&a, "com.example.app", "5.0.0", 5);
        unhashed.sha256 = None;
        let states = [state(
            &a,
            "com.example.app",
            vec![
                release(&a, "com.example.app", "1.0.0", 1),
                release(&a, "com.example.app", "2.0.0", 2),
                changed,
                ios,
                unhashed,
            ],
        )];
        let (apps, left) = select(&states, |_| None, |_| None);
        assert_eq!(apps.len(), 1);
        let codes: Vec<u64> = apps[0]
            .versions
            .iter()
            .map(|l| l.release.version_code)
            .collect();
        assert_eq!(
            codes,
            [2, 1],
            "newest first; changed, iOS and unhashed left out"
        );
        assert_eq!(left.no_sha256.len(), 1);
        // The SHA-256 computed by the gateway lists the unhashed one.
        let (apps, left) = select(
            &states,
            |_| None,
            |r| (r.version_code == 5).then_some([5; 32]),
        );
        assert_eq!(apps[0].versions[0].release.version_code, 5);
        assert_eq!(left.no_sha256.len(), 0);
    }

    #[test]
    fn a_name_of_two_authors_is_left_out() {
        let (a, b) = (
            AuthorKey::from_seed(&[1; 32]),
            AuthorKey::from_seed(&[2; 32]),
        );
        let states = [
            state(
                &a,
                "com.example.app",
                vec![release(&a, "com.example.app", "1.0.0", 1)],
            ),
            state(
                &b,
                "com.example.app",
                vec![release(&b, "com.example.app", "1.0.0", 1)],
            ),
            state(&b, "org.other", vec![release(&b, "org.other", "1.0.0", 1)]),
        ];
        let (apps, left) = select(&states, |_| None, |_| None);
        let names: Vec<&str> = apps.iter().map(|a| a.package.as_str()).collect();
        assert_eq!(names, ["org.other"]);
        assert_eq!(left.contested.len(), 1);
    }

    #[test]
    fn the_indexes_name_each_version_by_its_sha256_and_path() {
        let a = AuthorKey::from_seed(&[1; 32]);
        let mut r = release(&a, "com.example.app", "1.0.0", 1);
        r.metadata.title = "Example".into();
        r.metadata.permissions = vec!["android.permission.INTERNET".into()];
        r.metadata.min_sdk = 21;
        r.metadata.native_code = vec!["arm64-v8a".into()];
        r.metadata.changelog = "Faster.".into();
        let states = [state(&a, "com.example.app", vec![r])];
        let (apps, _) = select(&states, |_| Some("Ann".into()), |_| None);
        let repo = RepoInfo {
            name: "r".into(),
            description: "d".into(),
            address: "http://x/fdroid/repo".into(),
            web_base_url: "http://x".into(),
            icon: ([0; 32], 1),
        };
        let v2 = index_v2(&repo, &apps, 5);
        let sha = hex::encode([1u8; 32]);
        let version = &v2["packages"]["com.example.app"]["versions"][&sha];
        assert_eq!(version["file"]["name"], "/com.example.app_1.apk");
        assert_eq!(version["file"]["sha256"], sha);
        assert_eq!(version["manifest"]["versionCode"], 1);
        assert_eq!(version["manifest"]["usesSdk"]["targetSdkVersion"], 21);
        assert_eq!(
            version["manifest"]["signer"]["sha256"][0],
            hex::encode([7u8; 32])
        );
        assert_eq!(
            version["manifest"]["usesPermission"][0]["name"],
            "android.permission.INTERNET"
        );
        assert_eq!(version["manifest"]["nativecode"][0], "arm64-v8a");
        assert_eq!(version["whatsNew"][LOCALE], "Faster.");
        assert_eq!(
            v2["packages"]["com.example.app"]["metadata"]["name"][LOCALE],
            "Example"
        );
        assert_eq!(
            v2["packages"]["com.example.app"]["metadata"]["authorName"],
            "Ann"
        );
        assert_eq!(v2["repo"]["timestamp"], 5);
        let v1 = index_v1(&repo, &apps, 5);
        assert_eq!(v1["apps"][0]["license"], "Unknown");
        assert_eq!(v1["packages"]["com.example.app"][0]["hash"], sha);
        assert_eq!(
            v1["packages"]["com.example.app"][0]["uses-permission"][0][0],
            "android.permission.INTERNET"
        );
        assert_eq!(
            v1["packages"]["com.example.app"][0]["nativecode"][0],
            "arm64-v8a"
        );
        assert_eq!(v1["apps"][0]["localized"][LOCALE]["whatsNew"], "Faster.");
        let bytes = serde_json::to_vec(&v2).unwrap();
        let e = entry(5, &bytes, 1, &[(4, b"{}", 0)]);
        assert_eq!(e["diffs"]["4"]["name"], "/diff/4.json");
        assert_eq!(e["index"]["sha256"], hex::encode(Sha256::digest(&bytes)));
        assert_eq!(e["index"]["size"], bytes.len());
    }
}
