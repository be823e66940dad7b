//! Tests of the web pages (`/`, `/p/{author}`, `/p/{author}/{package}`)
//! with `warp::test` against the gateway's routes, over a real in-process
//! node whose embedded store is the index. Records are signed here and
//! published into the node; the pages never see anything else.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ipsr_gateway::{Gateway, GatewayConfig};
use ipsr_indexer::StoreIndex;
use ipsr_node::{Client, Config};
use ipsr_proto::{AuthorKey, Platform};
use ipsr_testkit::{ReleaseBuilder, cid, release, yank};

/// The longest one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// 2025-11-24 16:00:00 UTC, in ms: the `created_at` of the first release.
const T0: u64 = 1_764_000_000_000;

/// A gateway on an in-process node in a temp dir.
struct Env {
    _dir: tempfile::TempDir,
    node: Client,
    gateway: Gateway,
}

impl Env {
    /// With the default configuration, whose pages have no QR code: this
    /// gateway is not served, so it has no address (and no `public_url`).
    async fn new() -> Self {
        Self::with(GatewayConfig::default()).await
    }

    async fn with(config: GatewayConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let node = tokio::time::timeout(
            TIMEOUT,
            ipsr_node::spawn(Config::local(dir.path().to_owned())),
        )
        .await
        .expect("the node starts in time")
        .unwrap();
        let index = Arc::new(StoreIndex::new(node.store().clone()));
        let gateway = Gateway::new(node.clone(), index, config);
        Self {
            _dir: dir,
            node,
            gateway,
        }
    }

    async fn publish(&self, record: ipsr_proto::SignedRecord) {
        tokio::time::timeout(TIMEOUT, self.node.publish(record))
            .await
            .expect("the publish is answered in time")
            .unwrap();
    }

    /// `GET path` with a `Host` header, as a browser sends it.
    async fn get(&self, path: &str) -> Page {
        self.get_from(path, "gw.example:8080").await
    }

    /// `GET path` with `Host: host`.
    async fn get_from(&self, path: &str, host: &str) -> Page {
        let routes = ipsr_gateway::routes(self.gateway.clone());
        let response = tokio::time::timeout(
            TIMEOUT,
            warp::test::request()
                .method("GET")
                .path(path)
                .header("host", host)
                .reply(&routes),
        )
        .await
        .expect("the page is answered in time");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        Page {
            status: response.status().as_u16(),
            content_type: header("content-type"),
            cache: header("cache-control"),
            csp: header("content-security-policy"),
            body: String::from_utf8(response.body().to_vec()).unwrap(),
        }
    }
}

/// An answer to a page request.
#[derive(Debug)]
struct Page {
    status: u16,
    content_type: String,
    cache: String,
    csp: String,
    body: String,
}

impl Page {
    /// Asserts a 200 HTML page, cacheable for a short time, and returns it.
    fn ok(self) -> Self {
        assert_eq!(self.status, 200, "{}", self.body);
        assert!(self.content_type.starts_with("text/html"), "{self:?}");
        assert_eq!(self.cache, "public, max-age=10");
        self.no_script();
        self
    }

    /// No page runs script but its own: one `<script>` element, the last
    /// of the body, and a CSP whose only script source is that script's
    /// SHA-256 (so an injected script would not run).
    fn no_script(&self) {
        use base64::Engine as _;
        use sha2::Digest as _;
        assert_eq!(self.body.matches("<script").count(), 1, "{}", self.body);
        let script = self
            .body
            .split_once("<script>")
            .and_then(|(_, rest)| rest.split_once("</script></body>"))
            .map(|(script, _)| script)
            .unwrap_or_else(|| panic!("the script ends the body: {}", self.body));
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
        assert!(self.csp.contains("default-src 'none'"), "{}", self.csp);
        let sources: Vec<&str> = self
            .csp
            .split(';')
            .map(str::trim)
            .filter(|d| d.starts_with("script-src"))
            .collect();
        assert_eq!(
            sources,
            [format!("script-src 'sha256-{hash}'")],
            "{}",
            self.csp
        );
    }

    fn has(&self, text: &str) -> &Self {
        assert!(
            self.body.contains(text),
            "{text:?} is not in the page:\n{}",
            self.body
        );
        self
    }

    fn lacks(&self, text: &str) -> &Self {
        assert!(
            !self.body.contains(text),
            "{text:?} is in the page:\n{}",
            self.body
        );
        self
    }
}

/// A release of `package` by `key` with version code and seq `code`,
/// created on day `code` counted from `T0` (fixed times), content
/// `cid(code)` of `size` bytes, file `notes-VERSION.apk`.
fn app<'k>(
    key: &'k AuthorKey,
    package: &str,
    version: &str,
    code: u64,
    size: u64,
) -> ReleaseBuilder<'k> {
    release(key, version)
        .package(package)
        .code(code)
        .seq(code)
        .created_at(T0 + (code - 1) * 86_400_000)
        .cid(cid(u32::try_from(code).unwrap()))
        .size(size)
        .file_name(format!("notes-{version}.apk"))
}

/// `com.example.notes` 1.0.0 (2025-11-24, 1.5 KiB) and 1.1.0 (2025-11-25,
/// 20 MiB), Android apps with full metadata: a Markdown description, a
/// changelog, native code and two screenshots.
async fn publish_notes(env: &Env, key: &AuthorKey) {
    for (version, code, size) in [("1.0.0", 1, 1536), ("1.1.0", 2, 20 * 1024 * 1024)] {
        let r = app(key, "com.example.notes", version, code, size)
            .title("Pocket Notes")
            .summary("Notes that stay on your phone")
            .platform(Platform::android())
            .metadata(|m| {
                m.description =
                    "Write *notes*.\nSync them with [nobody](https://notes.example/why).\n\n\
                                 ## Features\n\n- offline\n- <img src=x onerror=alert(9)>\n"
                        .into();
                m.changelog = format!("What {version} changed.\nSecond line.");
                m.native_code = vec!["arm64-v8a".into(), "x86_64".into()];
                m.screenshots = vec![cid(10), cid(11)];
                m.license = "MIT OR Apache-2.0".into();
                m.homepage_url = Some("https://notes.example/".into());
                m.source_url = Some("https://code.example/notes?tab=src&x=1".into());
                m.categories = vec!["productivity".into()];
                m.permissions = vec![
                    "android.permission.CAMERA".into(),
                    "android.permission.INTERNET".into(),
                ];
                m.min_sdk = 24;
                m.target_sdk = 34;
                m.signing_cert_sha256 = Some([0xab; 32]);
                m.icon = Some(cid(9));
            });
        env.publish(r.sign()).await;
    }
}

/// The public URL of the gateways of these tests, for their QR codes.
const PUBLIC_URL: &str = "https://apps.example.org";

fn public() -> GatewayConfig {
    let mut config = GatewayConfig::default();
    config.public_url = Some(PUBLIC_URL.into());
    config
}

#[tokio::test]
async fn home_search_author_and_package_pages() {
    let env = Env::with(public()).await;
    let key = AuthorKey::from_seed(&[1; 32]);
    let author = key.author_id();
    publish_notes(&env, &key).await;
    // Another author's package, which the searches below must tell apart.
    let other = AuthorKey::from_seed(&[2; 32]);
    let r = app(&other, "org.example.weather", "2.0.0", 3, 4096).title("Weather Now");
    env.publish(r.sign()).await;

    let link = format!("href=\"/p/{author}/com.example.notes\"");

    // The home page: the search box and the recent releases, newest first.
    let home = env.get("/").await.ok();
    home.has("<form class=\"search\" method=\"get\" action=\"/\"")
        .has("name=\"q\"")
        .has("Recent releases")
        .has(&link)
        .has("Pocket Notes")
        .has("Notes that stay on your phone")
        .has("Weather Now");
    let weather = home.body.find("Weather Now").unwrap();
    assert!(weather < home.body.find("Pocket Notes").unwrap());

    // Search: the query stays in the box; only matches are listed.
    env.get("/?q=pocket")
        .await
        .ok()
        .has("value=\"pocket\"")
        .has("Results for “<bdi>pocket</bdi>”")
        .has(&link)
        .lacks("Weather Now");
    env.get("/?q=notes+pocket").await.ok().has(&link);
    env.get("/?q=zebra")
        .await
        .ok()
        .has("No package matches.")
        .lacks("Pocket Notes");
    // Lists show each package's icon and link its categories; a category
    // lists its packages under its name.
    env.get("/")
        .await
        .ok()
        .has(&format!("<img class=\"thumb\" src=\"/ipfs/{}\"", cid(9)))
        .has("<a class=\"tag\" href=\"/?category=productivity\">productivity</a>");
    env.get("/?category=productivity")
        .await
        .ok()
        .has("<h1>Apps in <bdi>productivity</bdi></h1>")
        .has("<title>Apps in productivity · IPSR</title>")
        .has(&link)
        .lacks("Weather Now")
        .lacks("Add to F-Droid");
    env.get("/?category=games")
        .await
        .ok()
        .has("No package matches.")
        .lacks("Pocket Notes");

    // The author page lists the author's packages, no one else's.
    env.get(&format!("/p/{author}"))
        .await
        .ok()
        .has(&author.to_string())
        .has(&link)
        .has("Pocket Notes")
        .lacks("Weather Now");

    // The package page.
    let page = env
        .get(&format!("/p/{author}/com.example.notes"))
        .await
        .ok();
    let download = format!("/api/v1/download/{author}/com.example.notes");
    page.has("<title>Pocket Notes · IPSR</title>")
        .has("<h1 dir=\"auto\">Pocket Notes</h1>")
        .has("Notes that stay on your phone")
        .has(&format!("img class=\"icon\" src=\"/ipfs/{}\"", cid(9)))
        // The download button: the newest version, its size and file name.
        .has(&format!(
            "<a class=\"button\" href=\"{download}/1.1.0\" download=\"notes-1.1.0.apk\">Download 1.1.0 (20.0 MiB)</a>"
        ))
        // The CID of the newest release, and a QR code of the latest APK.
        .has(&cid(2).to_string())
        .has("<svg role=\"img\"")
        .has("Scan to download the latest version on a phone")
        .lacks("<?xml")
        // The author, by the short form of its id.
        .has(&format!(
            ">{}…{}</a>",
            &author.to_string()[..12],
            &author.to_string()[56..]
        ))
        .has(&format!("data-copy=\"{author}\""))
        // The screenshots.
        .has(&format!("<img src=\"/ipfs/{}\" alt=\"Screenshot 1\"", cid(10)))
        .has(&format!("<img src=\"/ipfs/{}\" alt=\"Screenshot 2\"", cid(11)))
        // The description, as Markdown: emphasis, a link with rel=ugc, a
        // heading two levels down, a list, and HTML shown as text.
        .has("<p>Write <em>notes</em>.\nSync them with <a href=\"https://notes.example/why\" rel=\"nofollow ugc noopener noreferrer\">nobody</a>.</p>")
        .has("<h4>Features</h4>")
        .has("<li>offline</li>")
        .has("<li>&lt;img src=x onerror=alert(9)&gt;")
        .lacks("<img src=x")
        // What's new, for the newest version and for each.
        .has("<h2>What's new in 1.1.0</h2><p class=\"changes\" dir=\"auto\">What 1.1.0 changed.\nSecond line.</p>")
        .has("<div class=\"changes\" dir=\"auto\">What 1.0.0 changed.\nSecond line.</div>")
        // Details.
        .has("MIT OR Apache-2.0")
        .has("<a href=\"https://notes.example/\" rel=\"nofollow noopener noreferrer\">")
        .has("<a href=\"https://code.example/notes?tab=src&amp;x=1\"")
        .has("<a class=\"tag\" href=\"/?category=productivity\">productivity</a>")
        .has("Needs Android 7.0 (API 24) or newer.")
        .has("<td>Android 14 (API 34)</td>")
        .has("<td>arm64-v8a, x86_64</td>")
        .has(&format!("<th>Signing certificate SHA-256</th><td class=\"cid\">{}</td>", "ab".repeat(32)))
        // Permissions, in words, with their names.
        .has("<span class=\"warn\">Take pictures and videos</span> (Android asks you first)")
        .has("<span>Have full network access</span>")
        .has("<code>android.permission.CAMERA</code>")
        .has("<code>android.permission.INTERNET</code>")
        // Versions with dates, sizes and their download links.
        .has("<td>1.1.0</td><td>2025-11-25</td><td>20.0 MiB</td>")
        .has("<td>1.0.0</td><td>2025-11-24</td><td>1.5 KiB</td>")
        .has(&format!("href=\"{download}/1.0.0\""))
        // How to verify: apksigner, and ipsr-cli through this gateway.
        .has("apksigner verify --print-certs notes-1.1.0.apk")
        .has(&format!(
            "ipsr-cli --gateway {PUBLIC_URL} download {author}/com.example.notes@1.1.0\n\
             # or check the file you downloaded here\n\
             ipsr-cli --gateway {PUBLIC_URL} verify notes-1.1.0.apk {author}/com.example.notes@1.1.0"
        ))
        .has("ipsr-cli add --only-hash notes-1.1.0.apk");
    assert!(
        page.body.find("<td>1.1.0</td>").unwrap() < page.body.find("<td>1.0.0</td>").unwrap(),
        "newest version first"
    );
}

/// A request's `Host` is the client's to choose (and a shared cache may
/// not key pages by it): no page depends on it. The QR code's URL comes from
/// `--public-url`, else the bound address; a gateway with neither (not
/// served here) shows no QR code at all rather than one built from `Host`.
#[tokio::test]
async fn no_page_depends_on_the_host_header() {
    for (config, qr) in [(GatewayConfig::default(), false), (public(), true)] {
        let env = Env::with(config).await;
        let key = AuthorKey::from_seed(&[7; 32]);
        publish_notes(&env, &key).await;
        let path = format!("/p/{}/com.example.notes", key.author_id());
        let honest = env.get_from(&path, "gw.example:8080").await.ok();
        let hostile = env.get_from(&path, "evil.example").await.ok();
        assert_eq!(honest.body, hostile.body);
        hostile.lacks("evil.example").lacks("gw.example");
        assert_eq!(
            honest.body.contains("<svg role=\"img\""),
            qr,
            "{}",
            honest.body
        );
    }
}

#[tokio::test]
async fn metadata_is_escaped_on_every_page() {
    let env = Env::new().await;
    let key = AuthorKey::from_seed(&[3; 32]);
    let author = key.author_id();
    let r = app(&key, "com.example.evil", "1.0.0", 1, 10)
        .file_name("x'; rm -rf ~; echo '.apk")
        .title("<script>alert(1)</script>")
        .summary("\"><img src=x onerror=alert(2)>")
        .metadata(|m| {
            m.description = "<b>bold</b> & <i>more</i>".into();
            m.license = "<MIT>".into();
            m.homepage_url = Some("https://e.example/\"><script>alert(3)</script>".into());
        });
    env.publish(r.sign()).await;

    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
    let pages = [
        "/".to_owned(),
        "/?q=evil".to_owned(),
        format!("/p/{author}"),
        format!("/p/{author}/com.example.evil"),
    ];
    for path in &pages {
        let page = env.get(path).await.ok();
        page.has(escaped)
            .has("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;")
            .lacks("<img src=x")
            .lacks("alert(1)</script>");
    }
    env.get(&format!("/p/{author}/com.example.evil"))
        .await
        .ok()
        .has(&format!("<title>{escaped} · IPSR</title>"))
        .has(&format!("<h1 dir=\"auto\">{escaped}</h1>"))
        .has("&lt;b&gt;bold&lt;/b&gt; &amp; &lt;i&gt;more&lt;/i&gt;")
        .has("&lt;MIT&gt;")
        .has("href=\"https://e.example/&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;\"")
        // A file name in a command to copy is one quoted shell word.
        .has("verify 'x'\\''; rm -rf ~; echo '\\''.apk' ")
        .has("download=\"x'; rm -rf ~; echo '.apk\"");
}

/// Right-to-left text from a record or a query is isolated, so it cannot
/// reorder the page around it; a query may hold any code point (records may
/// not: `docs/records.md`, 5.1), and its bidi override stays inside its
/// `<bdi>`.
#[tokio::test]
async fn record_and_query_text_is_isolated_for_bidi() {
    let env = Env::new().await;
    let key = AuthorKey::from_seed(&[6; 32]);
    let author = key.author_id();
    let hebrew = "\u{5E9}\u{5DC}\u{5D5}\u{5DD} 2.0";
    let arabic = "\u{645}\u{631}\u{62D}\u{628}\u{627}";
    let r = app(&key, "com.example.rtl", "1.0.0", 1, 10)
        .title(hebrew)
        .summary(arabic)
        .metadata(|m| m.description = format!("{arabic}\n{hebrew}"));
    env.publish(r.sign()).await;
    env.get("/")
        .await
        .ok()
        .has(&format!("<strong><bdi>{hebrew}</bdi></strong>"))
        .has(&format!("<bdi>{arabic}</bdi><br>"));
    env.get(&format!("/p/{author}/com.example.rtl"))
        .await
        .ok()
        .has(&format!("<h1 dir=\"auto\">{hebrew}</h1>"))
        .has(&format!("<p dir=\"auto\"><strong>{arabic}</strong></p>"))
        .has(&format!(
            "<div class=\"description\" dir=\"auto\"><p>{arabic}\n{hebrew}</p>"
        ));
    env.get("/?q=%E2%80%AEkpa.exe")
        .await
        .ok()
        .has("Results for “<bdi>\u{202E}kpa.exe</bdi>”");
}

#[tokio::test]
async fn yanked_versions_are_marked() {
    let env = Env::new().await;
    let key = AuthorKey::from_seed(&[4; 32]);
    let author = key.author_id();
    env.publish(app(&key, "com.example.gone", "1.0.0", 1, 100).sign())
        .await;
    let y = yank(&key, "1.0.0")
        .package("com.example.gone")
        .reason("crashes <on> start")
        .seq(5)
        .created_at(T0 + 1000);
    env.publish(y.sign()).await;

    env.get(&format!("/p/{author}/com.example.gone"))
        .await
        .ok()
        .has("Every version of this package is yanked.")
        .has("yanked: <bdi>crashes &lt;on&gt; start</bdi>")
        .lacks("class=\"button\"")
        .lacks("/api/v1/download/");
}

/// Rule 9 of `docs/records.md`: a release signed by another APK
/// certificate is listed with a warning and never offered as the download;
/// one with a proof of rotation is. The JSON says the same.
#[tokio::test]
async fn apk_certificate_changes_are_marked() {
    let env = Env::new().await;
    let key = AuthorKey::from_seed(&[5; 32]);
    let author = key.author_id();
    let (a, t, b) = ([0xab; 32], [0x77; 32], [0xcd; 32]);
    let signed = |version: &str, code: u64, cert: [u8; 32], lineage: Vec<[u8; 32]>| {
        app(&key, "com.example.cert", version, code, 100)
            .metadata(|m| {
                m.signing_cert_sha256 = Some(cert);
                m.signing_cert_lineage = lineage;
            })
            .sign()
    };
    env.publish(signed("1.0.0", 1, a, vec![])).await;
    env.publish(signed("1.1.0", 2, t, vec![])).await;
    let path = format!("/p/{author}/com.example.cert");
    env.get(&path)
        .await
        .ok()
        .has("Download 1.0.0")
        .lacks("Download 1.1.0")
        .has("signed by a different certificate than the earlier releases (abababab…): Android will not install it over them, so it is not offered as an update");
    let json = env
        .get(&format!("/api/v1/package/{author}/com.example.cert"))
        .await;
    let json: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(json["newest"], "1.0.0");
    assert_eq!(
        json["versions"][0]["certificate"],
        serde_json::json!({"sha256": "77".repeat(32), "check": "changed", "expected": "ab".repeat(32)})
    );
    assert_eq!(json["versions"][1]["certificate"]["check"], "first");

    let rotated = app(&key, "com.example.cert", "1.2.0", 3, 100)
        .sha256([0x5a; 32])
        .metadata(|m| {
            m.signing_cert_sha256 = Some(b);
            m.signing_cert_lineage = vec![a, b];
        })
        .sign();
    env.publish(rotated).await;
    env.get(&path)
        .await
        .ok()
        .has("Download 1.2.0")
        .has(&format!(
            "<th>SHA-256</th><td class=\"cid\">{}</td>",
            "5a".repeat(32)
        ))
        .has("new signing certificate, rotated from abababab…");
    let one = env
        .get(&format!("/api/v1/package/{author}/com.example.cert/1.2.0"))
        .await;
    let one: serde_json::Value = serde_json::from_str(&one.body).unwrap();
    assert_eq!(
        one["certificate"],
        serde_json::json!({"sha256": "cd".repeat(32), "check": "rotated", "from": "ab".repeat(32)})
    );
    assert_eq!(one["sha256"], "5a".repeat(32));
}

#[tokio::test]
async fn failures_are_html_pages_never_cached() {
    let env = Env::new().await;
    let key = AuthorKey::from_seed(&[5; 32]);
    let author = key.author_id();
    for (path, status) in [
        (format!("/p/{author}/com.example.unknown"), 404),
        (format!("/p/{author}"), 404),
        ("/p/not-an-author/com.example.app".to_owned(), 400),
        (format!("/p/{author}/Not%20A%20Name"), 400),
        ("/?cursor=nope".to_owned(), 400),
    ] {
        let page = env.get(&path).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        assert!(page.content_type.starts_with("text/html"), "{path}");
        assert_eq!(page.cache, "no-store", "{path}");
        page.no_script();
        page.has("<h1>").has("href=\"/\"");
    }
    env.get(&format!("/p/{author}/com.example.unknown"))
        .await
        .has("<h1>Not Found</h1>")
        .has("no release of");
}
