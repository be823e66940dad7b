//! The web pages: server-rendered HTML (maud escapes every value, so a
//! title of `<script>` shows as text), one column that fits a phone screen,
//! and no JavaScript but one line that copies an author's id (allowed by
//! its hash in the CSP; the pages work without it). Text from records and
//! queries is isolated for the bidirectional algorithm (`<bdi>`,
//! `dir="auto"`), so right-to-left text never reorders what is around it.
//!
//! * `/`: a search box, and the search results, a category's packages or
//!   the recent releases;
//! * `/p/{author}`: the author's packages;
//! * `/p/{author}/{package}`: one package: screenshots, the description
//!   (a safe Markdown subset, [`markdown`]), permissions in words and
//!   Android versions ([`android`]), versions with their changes, the CID
//!   and SHA-256, a download button, a QR code of the latest release and
//!   how to verify it.

mod android;
mod markdown;

use std::net::SocketAddr;
use std::sync::LazyLock;

use ipsr_node::views::{CertificateView, Package, VersionEntry};
use ipsr_proto::{CertCheck, PackageKey};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use qrcode::QrCode;
use qrcode::render::svg;
use warp::Reply;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::api::{self, ListQuery, PackageSummary};
use crate::error::Failure;
use crate::state::Gateway;

/// The pages' style sheet, inline so a page is one request.
const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:46rem;padding:0 1rem;line-height:1.45;color:#1b1b1b}\
header{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;padding:.75rem 0;border-bottom:1px solid #ddd}\
header a.home{font-weight:700;text-decoration:none;color:inherit;margin-right:auto}\
form.search{display:flex;gap:.25rem;flex:1 1 16rem}form.search input{flex:1;min-width:0;padding:.4rem;font-size:1rem}\
form.search button{font-size:1rem;padding:.4rem .8rem}\
ul.list{list-style:none;padding:0}ul.list li{padding:.6rem 0;border-bottom:1px solid #eee}\
h1{font-size:1.75rem;line-height:1.2}h2{font-size:1.25rem;margin-top:1.75rem}\
.muted{color:#666;font-size:.9rem}code,.cid{font-family:ui-monospace,monospace;overflow-wrap:anywhere}\
.cid{word-break:break-all}\
a.button{display:inline-block;background:#0b57d0;color:#fff;padding:.6rem 1rem;border-radius:.4rem;text-decoration:none}\
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{text-align:left;padding:.3rem;border-bottom:1px solid #eee}\
.yanked{color:#a50e0e}img.icon{width:64px;height:64px;float:right;margin-left:.5rem}\
figure.qr{margin:1rem 0}.qr svg{display:block;width:10rem;height:10rem}\
.description{overflow-wrap:anywhere}.changes{white-space:pre-line;overflow-wrap:anywhere}\
.message{overflow-wrap:anywhere}\
ul.list li{display:flow-root}img.thumb{width:48px;height:48px;float:left;margin:0 .6rem .2rem 0;border-radius:.5rem}\
.shots{display:flex;gap:.5rem;overflow-x:auto;padding:.25rem 0}.shots img{height:16rem;max-width:80vw;object-fit:contain;border:1px solid #ddd;border-radius:.4rem}\
ul.permissions{padding-left:1.2rem}.warn{color:#a50e0e}a.tag{font-size:.85rem}\
.versions td{vertical-align:top}.versions .changes{font-size:.85rem;color:#333}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:.6rem;border-radius:.3rem}";

/// The pages' one script: it shows the buttons that copy an author's id
/// (hidden without it) and copies on a tap, or, where the clipboard API is
/// not offered (a page over plain HTTP), shows the id in a prompt to copy.
const COPY_SCRIPT: &str = "for(const b of document.querySelectorAll('button[data-copy]')){\
b.hidden=false;b.onclick=()=>{const t=b.dataset.copy;const c=navigator.clipboard;\
if(c){c.writeText(t).then(()=>{b.textContent='Copied'})}else{prompt('Author id',t)}}}";

/// Content-Security-Policy of the pages: nothing but this origin's images,
/// the inline style and [`COPY_SCRIPT`] (by its SHA-256).
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(COPY_SCRIPT));
    let csp = format!(
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; \
         script-src 'sha256-{hash}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'none'"))
});

/// `Cache-Control` of pages that show packages: short, they change with
/// every release and yank.
const PAGE_CACHE: &str = "public, max-age=10";

/// The page around `body`; `feed`: the path of the Atom feed of what the
/// page lists, announced for feed readers.
fn layout(title: &str, query: Option<&str>, feed: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No icon: saves browsers a request for /favicon.ico.
                link rel="icon" href="data:,";
                title { (title) " · IPSR" }
                @if let Some(feed) = feed {
                    link rel="alternate" type="application/atom+xml" title={ (title) " releases" } href=(feed);
                }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.home href="/" { "IPSR" }
                    form.search method="get" action="/" role="search" {
                        input type="search" name="q" value=[query] placeholder="Search apps"
                            aria-label="Search apps";
                        button type="submit" { "Search" }
                    }
                }
                main { (body) }
                footer.muted {
                    p { "Every release is signed by its author and checked against its CID. "
                        a href="/api/v1/openapi.json" { "API" } }
                }
                script { (PreEscaped(COPY_SCRIPT)) }
            }
        }
    }
}

fn page(status: StatusCode, markup: Markup, cache: &'static str) -> Response {
    let mut response =
        warp::reply::with_status(warp::reply::html(markup.into_string()), status).into_response();
    let headers = response.headers_mut();
    headers.insert("content-security-policy", CSP.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// A failure as a page with its status, never cached (a package that is not
/// known yet may arrive a second later).
pub(crate) fn error_page(failure: &Failure) -> Response {
    let (status, _) = failure.status_and_code();
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %failure, "page failed");
        "Something went wrong on this gateway.".to_owned()
    } else {
        failure.to_string()
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        h1 { (title) }
        p.message { (message) }
        p { a href="/" { "Search all apps" } }
    };
    page(status, layout(title, None, None, body), "no-store")
}

fn summary_item(s: &PackageSummary) -> Markup {
    html! {
        li {
            @if let Some(icon) = &s.icon { img.thumb src={ "/ipfs/" (icon) } alt="" loading="lazy"; }
            a href={ "/p/" (s.author) "/" (s.package) } {
                strong { @if s.title.is_empty() { (s.package) } @else { bdi { (s.title) } } }
            }
            @if let Some(v) = &s.newest { " " span.muted { (v) } }
            br;
            @if !s.summary.is_empty() { bdi { (s.summary) } br; }
            span.muted {
                code { (s.package) } " · " (date(s.updated_at))
                @if !s.categories.is_empty() { " · " (category_links(&s.categories)) }
            }
        }
    }
}

/// `GET /?q=`: search results, or the recent releases.
pub(crate) async fn home(g: &Gateway, pairs: &[(String, String)]) -> Result<Response, Failure> {
    let query = ListQuery::parse(pairs)?;
    let listing = api::list(g, &query).await?;
    let q = query.q.as_deref();
    let category = query.category.as_deref();
    let filtered = q.is_some() || category.is_some() || query.platform.is_some();
    let body = html! {
        h1 {
            // The query and category are the visitor's (or a link's) text: isolated.
            @match (q, category) {
                (Some(q), None) => { "Results for “" bdi { (q) } "”" }
                (Some(q), Some(c)) => { "Results for “" bdi { (q) } "” in " bdi { (c) } }
                (None, Some(c)) => { "Apps in " bdi { (c) } }
                (None, None) => { "Recent releases" }
            }
        }
        @if category.is_some() { p { a href="/" { "All apps" } } }
        @if listing.packages.is_empty() {
            p { @if filtered { "No package matches." } @else { "Nothing has been published yet." } }
        } @else {
            ul.list { @for s in &listing.packages { (summary_item(s)) } }
        }
        @if let Some(next) = &listing.next_cursor {
            a href={ "/?" (next_query(&query, next)) } { "More" }
        }
        @if !filtered { (fdroid_box(g)) }
    };
    let feed = (!filtered).then_some("/feeds/recent.atom");
    let title = match category {
        Some(c) if q.is_none() => format!("Apps in {c}"),
        _ => "Apps".to_owned(),
    };
    Ok(page(
        StatusCode::OK,
        layout(&title, q, feed, body),
        PAGE_CACHE,
    ))
}

/// The home page's box about the F-Droid repository.
fn fdroid_box(g: &Gateway) -> Markup {
    html! {
        @if let Some((url, add)) = crate::fdroid::links(g) {
            section.fdroid {
                h2 { "On your phone" }
                p { "This gateway is an F-Droid repository: add it to F-Droid, Droid-ify or Neo Store "
                    "and your apps update themselves. " a href="/fdroid" { "How to add it" } }
                p { a href=(add) { "Add to F-Droid" } }
                div.qr { (PreEscaped(qr_svg(&add))) }
                p.cid { (url) }
            }
        }
    }
}

/// `GET /fdroid`: how to add the repository to an F-Droid client.
pub(crate) async fn fdroid(g: &Gateway) -> Result<Response, Failure> {
    let Some(repo) = g.fdroid() else {
        return Err(Failure::NotFound(
            "this gateway serves no F-Droid repository".into(),
        ));
    };
    let fingerprint = repo.config().key.fingerprint();
    let body = html! {
        h1 { "Add this gateway to F-Droid" }
        p { "Every app here is also in an F-Droid repository, so F-Droid, Droid-ify and Neo Store "
            "show them, tell you of updates and install them in one tap." }
        @match crate::fdroid::links(g) {
            Some((url, add)) => {
                ol {
                    li { "On your phone, tap " a href=(add) { "Add to F-Droid" }
                         ", or scan this code with the phone's camera:"
                         div.qr { (PreEscaped(qr_svg(&add))) } }
                    li { "Or, in the app: Settings → Repositories → +, and enter "
                         span.cid { (url) } }
                    li { "Before you accept, check that the app shows the fingerprint below." }
                }
            }
            None => {
                p { "This gateway does not know its public address (it is run without --public-url), "
                    "so it cannot show the link; ask its operator." }
            }
        }
        p { "Fingerprint (SHA-256 of the repository certificate):" }
        p.cid { (fingerprint) }
        p.muted { "The repository key vouches that this gateway checked each author's signature, "
            "every block against its CID and the signing-certificate rules. Your phone still checks "
            "each APK's SHA-256 and, on updates, that the app's signing certificate stays the same." }
    };
    Ok(page(
        StatusCode::OK,
        layout("F-Droid", None, None, body),
        PAGE_CACHE,
    ))
}

/// The query of the next page: the same filters, the next cursor.
fn next_query(query: &ListQuery, cursor: &str) -> String {
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("q", &query.q),
        ("category", &query.category),
        ("platform", &query.platform),
    ] {
        if let Some(value) = value {
            url.append_pair(name, value);
        }
    }
    url.append_pair("cursor", cursor);
    url.finish()
}

/// `GET /p/{author}`.
pub(crate) async fn author(g: &Gateway, author_text: &str) -> Result<Response, Failure> {
    let view = api::author_view(g, api::author(author_text)?).await?;
    let d = &view.identity.document;
    let body = html! {
        h1 dir="auto" { @if d.name.is_empty() { "Author" } @else { (d.name) } }
        p.cid { (view.author) " " (copy_button(&view.author.to_string())) }
        @if !view.identity.forks.is_empty() {
            p.yanked { "Disputed identity: two documents follow the same one. \
                        Someone holding the author's admin keys signed both; \
                        see the author's announcements before you update." }
        }
        @for url in d.urls.iter().filter_map(|u| web_url(Some(u))) {
            p { a href=(url) rel="nofollow noopener noreferrer" { (url) } }
        }
        table {
            tr { th { "Releases signed by" }
                 td { (d.threshold) " of " (d.signers.len()) " keys" } }
            tr { th { "Identity changed by" }
                 td { (d.admin_threshold) " of " (d.admins.len()) " keys" } }
        }
        ul.list { @for s in &view.packages { (summary_item(s)) } }
    };
    Ok(page(
        StatusCode::OK,
        layout(
            "Author",
            None,
            Some(&format!("/feeds/{}.atom", view.author)),
            body,
        ),
        PAGE_CACHE,
    ))
}

/// `GET /p/{author}/{package}`.
pub(crate) async fn package(g: &Gateway, key: &PackageKey) -> Result<Response, Failure> {
    let answer = api::package(g, key).await?;
    let who = &answer.author_identity;
    let answer_signatures = answer.newest_signatures;
    let view: Package = answer.package;
    let m = &view.metadata;
    let title = if m.title.is_empty() {
        view.package.to_string()
    } else {
        m.title.clone()
    };
    let newest = view
        .newest
        .as_ref()
        .and_then(|n| view.versions.iter().find(|v| &v.version == n));
    let shown = newest.or(view.versions.first());
    let android = shown.is_some_and(|v| v.platform.as_str() == "android");
    let download = |v: &VersionEntry| {
        format!(
            "/api/v1/download/{}/{}/{}",
            view.author, view.package, v.version
        )
    };
    // The QR code names the package's latest release, so a printed code
    // never goes stale: the APK at its fixed URL, else this page.
    let qr_target = g.base_url().map(|base| match android {
        true => format!("{base}/latest/{}/{}.apk", view.author, view.package),
        false => format!("{base}/p/{}/{}", view.author, view.package),
    });
    let body = html! {
        @if let Some(icon) = &m.icon { img.icon src={ "/ipfs/" (icon) } alt=""; }
        h1 dir="auto" { (title) }
        p.muted {
            code { (view.package) } " by "
            a href={ "/p/" (view.author) } {
                @if who.name.is_empty() { (short_id(&view.author.to_string())) }
                @else { bdi { (who.name) } }
            }
            " " (copy_button(&view.author.to_string()))
        }
        @if who.disputed {
            p.yanked { "This author's identity is disputed: two identity documents follow the same one." }
        }
        @if who.signers > 1 || who.threshold > 1 {
            @if let Some(s) = &answer_signatures {
                p.muted { (s.signed) " of " (s.signers) " maintainers signed this release (" (s.needed) " needed)." }
            }
        }
        @if !m.summary.is_empty() { p dir="auto" { strong { (m.summary) } } }
        @if let Some(release) = newest {
            @let path = download(release);
            p {
                a.button href=(path) download=(release.file_name) {
                    "Download " (release.version)
                    @if release.size > 0 { " (" (size(release.size)) ")" }
                }
            }
            @if android && m.min_sdk > 0 {
                p.muted { "Needs " (android::sdk(m.min_sdk)) " or newer." }
            }
            @if let Some(target) = &qr_target {
                figure.qr {
                    (PreEscaped(qr_svg(target)))
                    figcaption.muted {
                        @if android { "Scan to download the latest version on a phone" }
                        @else { "Scan to open this page on a phone" }
                    }
                }
            }
        } @else {
            p.yanked { "Every version of this package is yanked." }
        }
        @if !m.screenshots.is_empty() {
            h2 { "Screenshots" }
            div.shots {
                @for (i, shot) in m.screenshots.iter().enumerate() {
                    a href={ "/ipfs/" (shot) } {
                        img src={ "/ipfs/" (shot) } alt={ "Screenshot " (i + 1) } loading="lazy";
                    }
                }
            }
        }
        @if !m.description.is_empty() {
            h2 { "Description" }
            div.description dir="auto" { (PreEscaped(markdown::render(&m.description))) }
        }
        @if let Some(release) = newest.filter(|r| !r.changelog.is_empty()) {
            h2 { "What's new in " (release.version) }
            p.changes dir="auto" { (release.changelog) }
        }
        h2 { "Details" }
        table {
            @if let Some(v) = shown { tr { th { "Platform" } td { (v.platform) } } }
            @if !m.license.is_empty() { tr { th { "License" } td { (m.license) } } }
            @if let Some(url) = web_url(m.homepage_url.as_deref()) {
                tr { th { "Home page" } td { a href=(url) rel="nofollow noopener noreferrer" { (url) } } }
            }
            @if let Some(url) = web_url(m.source_url.as_deref()) {
                tr { th { "Source" } td { a href=(url) rel="nofollow noopener noreferrer" { (url) } } }
            }
            @if !m.categories.is_empty() {
                tr { th { "Categories" } td { (category_links(&m.categories)) } }
            }
            @if m.min_sdk > 0 { tr { th { "Requires" } td { (android::sdk(m.min_sdk)) " or newer" } } }
            @if m.target_sdk > 0 { tr { th { "Built for" } td { (android::sdk(m.target_sdk)) } } }
            @if !m.native_code.is_empty() {
                tr { th { "Native code" } td { (m.native_code.join(", ")) } }
            }
        }
        @if android {
            h2 { "Permissions" }
            @if m.permissions.is_empty() {
                p.muted { "The signed release lists no permissions." }
            } @else {
                ul.permissions {
                    @for p in &m.permissions {
                        li {
                            @match android::permission(p) {
                                Some((words, dangerous)) => {
                                    span class=[dangerous.then_some("warn")] { (words) }
                                    @if dangerous { " (Android asks you first)" }
                                    br; span.muted { code { (p) } }
                                }
                                None => { code { (p) } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Versions" }
        table.versions {
            tr { th { "Version" } th { "Date" } th { "Size" } th { "" } }
            @for v in &view.versions {
                tr {
                    td { (v.version) }
                    td { (date(v.created_at)) }
                    td { (size(v.size)) }
                    td {
                        @if let Some(note) = v.certificate.as_ref().and_then(certificate_note) {
                            (note) " "
                        }
                        @if v.yanked {
                            span.yanked { "yanked" @if let Some(r) = &v.yank_reason { ": " bdi { (r) } } }
                        } @else {
                            a href=(download(v)) { "download" }
                        }
                        @if !v.changelog.is_empty() {
                            div.changes dir="auto" { (v.changelog) }
                        }
                    }
                }
            }
        }
        @if let Some(release) = newest {
            (verify_section(g, &view, release))
        }
    };
    let feed = format!("/feeds/{}/{}.atom", key.author, key.package);
    Ok(page(
        StatusCode::OK,
        layout(&title, None, Some(&feed), body),
        PAGE_CACHE,
    ))
}

/// "Verify": the release's CID, SHA-256 and signing certificate, and how to
/// check a downloaded file against them, on a phone and with `ipsr-cli`,
/// with or without a node.
fn verify_section(g: &Gateway, view: &Package, release: &VersionEntry) -> Markup {
    let spec = format!("{}/{}@{}", view.author, view.package, release.version);
    let file = shell_word(&release.file_name);
    let gateway = g
        .base_url()
        .map(|base| format!("--gateway {} ", shell_word(&base)))
        .unwrap_or_else(|| "--gateway URL ".to_owned());
    html! {
        h2 { "Verify" }
        p { "This gateway checks every release against its author's signature and its CID, \
             but you need not trust it. What the author signed for " (release.version) ":" }
        table {
            tr { th { "CID" } td.cid { (release.cid) } }
            @if let Some(sha) = &release.sha256 { tr { th { "SHA-256" } td.cid { (sha) } } }
            @if let Some(cert) = &release.certificate {
                tr { th { "Signing certificate SHA-256" } td.cid { (cert.sha256) } }
            }
        }
        @if release.sha256.is_some() || release.certificate.is_some() {
            h3 { "On a phone or a computer" }
            ul {
                @if release.sha256.is_some() {
                    li { "A file checksum app (or " code { "sha256sum " (file) } ") must show the SHA-256 above." }
                }
                @if release.certificate.is_some() {
                    li { "An app that shows APK signatures (such as App Manager), or "
                         code { "apksigner verify --print-certs " (file) } ", must show the signing "
                         "certificate above (\"Signer #1 certificate SHA-256 digest\"). Android itself "
                         "refuses an update signed by another certificate." }
                }
            }
        }
        h3 { "With ipsr-cli" }
        p { code { "ipsr-cli" } " checks the author's signature and every byte itself, through this \
             gateway or through your own node (" code { "ipsr-node run" } "):" }
        pre.verify {
            "# download and check the release\n"
            "ipsr-cli " (gateway) "download " (spec) "\n"
            "# or check the file you downloaded here\n"
            "ipsr-cli " (gateway) "verify " (file) " " (spec) "\n"
            "# the same with your own node: leave out --gateway\n"
            "# offline: the file's CID, to compare with the CID above\n"
            "ipsr-cli add --only-hash "
            @if release.cid.cid().version() == cid::Version::V0 { "--cid-version 0 " }
            (file)
        }
    }
}

/// An author id cut to its start and end (`k51qzi5u…x3lq9w`): the whole
/// id wraps over three lines on a phone.
fn short_id(id: &str) -> String {
    match (id.get(..12), id.get(id.len().saturating_sub(6)..)) {
        (Some(head), Some(tail)) if id.len() > 20 => format!("{head}…{tail}"),
        _ => id.to_owned(),
    }
}

/// A button that copies `id`; hidden until [`COPY_SCRIPT`] runs.
fn copy_button(id: &str) -> Markup {
    html! { button type="button" data-copy=(id) hidden title=(id) { "Copy author id" } }
}

/// Categories as links to their listing.
fn category_links(categories: &[String]) -> Markup {
    html! {
        @for (i, c) in categories.iter().enumerate() {
            @if i > 0 { ", " }
            a.tag href={ "/?category=" (c) } { (c) }
        }
    }
}

/// What a version's APK certificate says to a reader (`docs/records.md`,
/// rule 9), when it is more than "the same as before".
fn certificate_note(c: &CertificateView) -> Option<Markup> {
    let short = |h: &[u8; 32]| hex::encode(&h[..4]);
    match &c.check {
        CertCheck::First | CertCheck::Same => None,
        CertCheck::Rotated { from } => Some(html! {
            span.muted title=(c.sha256) { "new signing certificate, rotated from " (short(from)) "…" }
        }),
        CertCheck::Allowed { from } => Some(html! {
            span.muted title=(c.sha256) {
                "new signing certificate (replacing " (short(from)) "…), named in the author's identity"
            }
        }),
        CertCheck::Changed { expected } => Some(html! {
            span.yanked title=(c.sha256) {
                "signed by a different certificate than the earlier releases (" (short(expected))
                "…): Android will not install it over them, so it is not offered as an update"
            }
        }),
    }
}

/// `url` when it is an absolute http(s) URL: records are validated so
/// (`docs/records.md`), and a page never links anything else, whatever
/// the index holds.
fn web_url(url: Option<&str>) -> Option<&str> {
    url.filter(|u| {
        url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.has_host())
    })
}

/// `name` as one shell word that is not an option, so a command copied from
/// the page does what it says whatever the (validated but free-form) file
/// name holds: `app.apk` as is, anything else single-quoted.
fn shell_word(name: &str) -> String {
    let plain = !name.is_empty()
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@' | ',' | ':' | '/')
        });
    let name = if name.starts_with('-') {
        format!("./{name}")
    } else {
        name.to_owned()
    };
    if plain {
        name
    } else {
        format!("'{}'", name.replace('\'', "'\\''"))
    }
}

/// The absolute base URL of the QR code, the one link that must be
/// absolute (a phone scans it off the page): `public_url` when set, else
/// `http://` and the address the gateway is bound to, unless that is a
/// wildcard (`0.0.0.0`, `::`), which names no host: then `None`, and the
/// page has no QR code. Never the request's `Host` (or `X-Forwarded-*`):
/// a client, or a shared cache that keys pages without it, could make a
/// page whose QR code sends phones to another server. Every other link of
/// the pages is relative.
pub(crate) fn base_url(public_url: Option<&str>, bound: Option<SocketAddr>) -> Option<String> {
    if let Some(url) = public_url {
        return Some(url.trim_end_matches('/').to_owned());
    }
    bound
        .filter(|addr| !addr.ip().is_unspecified())
        .map(|addr| format!("http://{addr}"))
}

/// A QR code of `text` as an inline `<svg>` element (without the XML
/// declaration, which has no place inside HTML).
fn qr_svg(text: &str) -> String {
    match QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<svg::Color<'_>>()
                .min_dimensions(160, 160)
                .build();
            let svg = match svg.find("<svg") {
                Some(at) => &svg[at..],
                None => svg.as_str(),
            };
            svg.replacen(
                "<svg ",
                "<svg role=\"img\" aria-label=\"QR code of the download link\" ",
                1,
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot make a QR code");
            String::new()
        }
    }
}

/// The UTC date of a record's `created_at` (Unix time in milliseconds).
fn date(unix_ms: u64) -> String {
    i64::try_from(unix_ms / 1000)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map(|t| t.date().to_string())
        .unwrap_or_default()
}

/// A file size for people; 0 is a size the record does not state.
fn size(bytes: u64) -> String {
    match bytes {
        0 => "—".to_owned(),
        n => crate::error::binary_units(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_dates() {
        assert_eq!(size(0), "—");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(20 * 1024 * 1024), "20.0 MiB");
        // Not "1024.0 KiB": a value that rounds to 1024 moves up a unit.
        assert_eq!(size(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(date(0), "1970-01-01");
        // created_at is in milliseconds.
        assert_eq!(date(1_795_651_200_000), "2026-11-26");
        assert_eq!(date(u64::MAX), "");
    }

    #[test]
    fn qr_codes_are_inline_svg() {
        let svg = qr_svg("http://127.0.0.1:8080/api/v1/download/a/b/1.0.0");
        assert!(svg.starts_with("<svg role=\"img\""), "{svg:.60}");
        assert!(svg.contains("viewBox") && svg.ends_with("</svg>"));
    }

    #[test]
    fn the_qr_code_never_names_the_requests_host() {
        let bound = |a: &str| Some(a.parse::<SocketAddr>().unwrap());
        // The configured public URL wins.
        assert_eq!(
            base_url(Some("https://apps.example.org/"), bound("0.0.0.0:8080")).as_deref(),
            Some("https://apps.example.org")
        );
        // Else the bound address, when it names a host.
        assert_eq!(
            base_url(None, bound("192.0.2.7:8080")).as_deref(),
            Some("http://192.0.2.7:8080")
        );
        assert_eq!(
            base_url(None, bound("[2001:db8::7]:80")).as_deref(),
            Some("http://[2001:db8::7]:80")
        );
        // A wildcard names none, nor does a gateway not served yet.
        assert_eq!(base_url(None, bound("0.0.0.0:8080")), None);
        assert_eq!(base_url(None, bound("[::]:8080")), None);
        assert_eq!(base_url(None, None), None);
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("app-1.0.apk"), "app-1.0.apk");
        assert_eq!(shell_word("my app.apk"), "'my app.apk'");
        assert_eq!(shell_word("a'b;$(x)"), "'a'\\''b;$(x)'");
        assert_eq!(shell_word("-rf"), "./-rf");
        assert_eq!(shell_word("-r f"), "'./-r f'");
    }

    #[test]
    fn only_web_urls_are_links() {
        assert_eq!(web_url(Some("https://e.org/x")), Some("https://e.org/x"));
        assert_eq!(web_url(Some("http://e.org")), Some("http://e.org"));
        assert_eq!(web_url(Some("javascript:alert(1)")), None);
        assert_eq!(web_url(Some("data:text/html,x")), None);
        assert_eq!(web_url(Some("/relative")), None);
        assert_eq!(web_url(None), None);
    }
}
