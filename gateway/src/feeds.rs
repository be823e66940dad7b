//! Atom feeds (RFC 4287) of releases, for feed readers and update trackers
//! (`docs/gateway.md`, "Feeds"): the gateway's recent releases
//! (`/feeds/recent.atom`), an author's (`/feeds/{author}.atom`) and a
//! package's (`/feeds/{author}/{package}.atom`). Each entry is one release
//! in force, newest first, with a link to its page and its download as an
//! enclosure. [`atom`] writes the XML, sans IO.

use ipsr_proto::{PackageKey, Release, SignedRecord};
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::error::Failure;
use crate::state::Gateway;

/// Entries per feed.
const ENTRIES: usize = 50;
/// Packages of an author read for the author's feed.
const AUTHOR_PACKAGES: usize = 200;
/// `Cache-Control` of a feed.
const FEED_CACHE: &str = "public, max-age=300";

/// What a feed is of.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Of<'a> {
    /// Every author's recent releases.
    Recent,
    /// One author's.
    Author(&'a ipsr_proto::AuthorId),
    /// One package's.
    Package(&'a PackageKey),
}

/// A feed: its title, its own path and its page's path, and its releases
/// (newest first).
#[derive(Debug)]
pub(crate) struct Feed {
    pub(crate) title: String,
    pub(crate) id: String,
    pub(crate) path: String,
    pub(crate) page: String,
    pub(crate) releases: Vec<Release>,
}

/// `GET /feeds/...`, from the view cache when it was rendered at the
/// same log head within its TTL (an author's feed reads up to
/// [`AUTHOR_PACKAGES`] packages).
pub(crate) async fn feed(g: &Gateway, of: Of<'_>) -> Result<Response, Failure> {
    let key = match of {
        Of::Recent => "feed:recent".to_owned(),
        Of::Author(a) => format!("feed:{a}"),
        Of::Package(k) => format!("feed:{}/{}", k.author, k.package),
    };
    let head = *g.node().log_head().borrow();
    let xml = g
        .views()
        .get_or_render(key, head, async {
            Ok::<_, Failure>(atom(&read(g, of).await?, g.base_url().as_deref()).into())
        })
        .await?;
    let mut response = Response::new(xml.into());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/atom+xml; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(FEED_CACHE));
    Ok(response)
}

/// The releases of a feed, from the index.
async fn read(g: &Gateway, of: Of<'_>) -> Result<Feed, Failure> {
    Ok(match of {
        Of::Recent => Feed {
            title: "Recent releases".into(),
            id: "urn:ipsr:feed:recent".into(),
            path: "/feeds/recent.atom".into(),
            page: "/".into(),
            releases: releases(g.index().recent(ENTRIES).await?),
        },
        Of::Author(author) => {
            let names = g.index().author(author).await?;
            let mut all = Vec::new();
            for name in names.into_iter().take(AUTHOR_PACKAGES) {
                let key = PackageKey {
                    author: *author,
                    package: name,
                };
                all.extend(in_force(g, &key).await?);
            }
            newest_first(&mut all);
            Feed {
                title: format!("Releases by {author}"),
                id: format!("urn:ipsr:feed:{author}"),
                path: format!("/feeds/{author}.atom"),
                page: format!("/p/{author}"),
                releases: all,
            }
        }
        Of::Package(key) => {
            let mut all = in_force(g, key).await?;
            if all.is_empty() && g.index().package(key).await?.is_none() {
                return Err(Failure::NotFound("no such package is known".into()));
            }
            newest_first(&mut all);
            Feed {
                title: format!("{} releases", key.package),
                id: format!("urn:ipsr:feed:{}:{}", key.author, key.package),
                path: format!("/feeds/{}/{}.atom", key.author, key.package),
                page: format!("/p/{}/{}", key.author, key.package),
                releases: all,
            }
        }
    })
}

fn releases(records: Vec<SignedRecord>) -> Vec<Release> {
    records
        .iter()
        .filter_map(|r| r.record().as_release().cloned())
        .collect()
}

/// A package's releases that are not yanked.
async fn in_force(g: &Gateway, key: &PackageKey) -> Result<Vec<Release>, Failure> {
    let Some(state) = g.index().package(key).await? else {
        return Ok(Vec::new());
    };
    Ok(state
        .releases()
        .filter(|r| !r.is_yanked())
        .filter_map(|r| r.release()?.record().as_release().cloned())
        .collect())
}

fn newest_first(releases: &mut Vec<Release>) {
    releases.sort_by(|a, b| {
        (b.created_at, &b.package, &b.version).cmp(&(a.created_at, &a.package, &a.version))
    });
    releases.truncate(ENTRIES);
}

/// The feed as Atom XML. Links are absolute under `base` when the gateway
/// knows its public URL, else relative to the feed's own URL.
pub(crate) fn atom(feed: &Feed, base: Option<&str>) -> String {
    let base = base.unwrap_or_default();
    let updated = feed
        .releases
        .iter()
        .map(|r| r.created_at)
        .max()
        .unwrap_or(0);
    let mut out = String::with_capacity(1024 + feed.releases.len() * 800);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    element(&mut out, "  ", "id", &feed.id);
    element(&mut out, "  ", "title", &feed.title);
    element(&mut out, "  ", "updated", &rfc3339(updated));
    link(
        &mut out,
        "  ",
        "self",
        &format!("{base}{}", feed.path),
        None,
    );
    link(
        &mut out,
        "  ",
        "alternate",
        &format!("{base}{}", feed.page),
        None,
    );
    out.push_str("  <generator>ipsr-gateway</generator>\n");
    for r in &feed.releases {
        let page = format!("{base}/p/{}/{}", r.author, r.package);
        let title = if r.metadata.title.is_empty() {
            r.package.as_str()
        } else {
            &r.metadata.title
        };
        out.push_str("  <entry>\n");
        element(
            &mut out,
            "    ",
            "id",
            &format!("urn:ipsr:release:{}:{}:{}", r.author, r.package, r.version),
        );
        element(&mut out, "    ", "title", &format!("{title} {}", r.version));
        element(&mut out, "    ", "updated", &rfc3339(r.created_at));
        out.push_str("    <author>\n");
        element(&mut out, "      ", "name", &r.author.to_string());
        element(&mut out, "      ", "uri", &format!("{base}/p/{}", r.author));
        out.push_str("    </author>\n");
        link(&mut out, "    ", "alternate", &page, None);
        let download = format!(
            "{base}/api/v1/download/{}/{}/{}",
            r.author, r.package, r.version
        );
        let kind = if r.file_name.to_ascii_lowercase().ends_with(".apk") {
            "application/vnd.android.package-archive"
        } else {
            "application/octet-stream"
        };
        link(
            &mut out,
            "    ",
            "enclosure",
            &download,
            Some((kind, r.size)),
        );
        let summary = format!(
            "{}{}{} {} (version code {}), {} bytes, CID {}",
            r.metadata.summary,
            if r.metadata.summary.is_empty() {
                ""
            } else {
                " "
            },
            r.package,
            r.version,
            r.version_code,
            r.size,
            r.cid
        );
        element(&mut out, "    ", "summary", &summary);
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

fn element(out: &mut String, indent: &str, name: &str, text: &str) {
    out.push_str(indent);
    out.push_str(&format!("<{name}>{}</{name}>\n", escape(text)));
}

fn link(out: &mut String, indent: &str, rel: &str, href: &str, enclosure: Option<(&str, u64)>) {
    out.push_str(indent);
    out.push_str(&format!("<link rel=\"{rel}\" href=\"{}\"", escape(href)));
    if let Some((kind, length)) = enclosure {
        out.push_str(&format!(" type=\"{kind}\" length=\"{length}\""));
    }
    out.push_str("/>\n");
}

/// Text for XML content or a quoted attribute: the five special
/// characters escaped, and characters XML 1.0 does not allow (controls
/// but tab and line breaks) left out.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => {}
            c => out.push(c),
        }
    }
    out
}

/// Unix ms as an RFC 3339 date-time in UTC, to the second.
fn rfc3339(unix_ms: u64) -> String {
    let t = i64::try_from(unix_ms / 1000)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use ipsr_proto::Platform;
    use ipsr_testkit::{key, release};

    use super::*;

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_999), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn text_is_escaped_and_controls_left_out() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}\u{202e}"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{202e}"
        );
    }

    #[test]
    fn entries_link_their_page_and_download() {
        let k = key(1);
        let r = release(&k, "1.2.0")
            .package("com.example.feed")
            .platform(Platform::android())
            .file_name("x.apk")
            .title("Feed <App>")
            .size(42)
            .seq(1)
            .build();
        let feed = Feed {
            title: "t".into(),
            id: "urn:ipsr:feed:recent".into(),
            path: "/feeds/recent.atom".into(),
            page: "/".into(),
            releases: vec![r],
        };
        let xml = atom(&feed, Some("https://apps.example.org"));
        let author = k.author_id();
        assert!(
            xml.contains("<title>Feed &lt;App&gt; 1.2.0</title>"),
            "{xml}"
        );
        assert!(xml.contains(&format!(
            "<link rel=\"alternate\" href=\"https://apps.example.org/p/{author}/com.example.feed\"/>"
        )));
        assert!(xml.contains(&format!(
            "<link rel=\"enclosure\" href=\"https://apps.example.org/api/v1/download/{author}/com.example.feed/1.2.0\" type=\"application/vnd.android.package-archive\" length=\"42\"/>"
        )));
        assert!(
            xml.contains(
                "<link rel=\"self\" href=\"https://apps.example.org/feeds/recent.atom\"/>"
            )
        );
    }
}
