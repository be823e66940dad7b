//! A release's description as HTML: a safe subset of CommonMark
//! (`docs/gateway.md`, "Descriptions").
//!
//! The parsing is `pulldown-cmark`'s; this module writes the HTML itself,
//! so nothing the author wrote reaches the page but escaped text and the
//! few elements below:
//!
//! * paragraphs, emphasis, strong, strike-through, inline code, code
//!   blocks, block quotes, lists, rules and line breaks;
//! * headings, two levels down (`#` is `<h3>`: the page has its `<h1>` and
//!   the description sits under an `<h2>`);
//! * links to absolute `http`/`https` URLs, with `rel="nofollow ugc
//!   noopener noreferrer"`; any other link (`javascript:`, relative,
//!   `data:`) is its text alone;
//! * raw HTML is shown as text, and an image as its alternative text (the
//!   pages' CSP would refuse a foreign image anyway).

use std::fmt::Write;

use maud::Escaper;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// `text` (CommonMark) as HTML that is safe to put in a page as is.
pub(crate) fn render(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    // Whether each open link was written as `<a>` (its end writes `</a>`).
    let mut links: Vec<bool> = Vec::new();
    let parser = Parser::new_ext(text, Options::ENABLE_STRIKETHROUGH);
    for event in parser {
        match event {
            Event::Start(tag) => start(&mut out, tag, &mut links),
            Event::End(tag) => end(&mut out, tag, &mut links),
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => escape(&mut out, &t),
            Event::Code(t) => {
                out.push_str("<code>");
                escape(&mut out, &t);
                out.push_str("</code>");
            }
            Event::SoftBreak => out.push('\n'),
            Event::HardBreak => out.push_str("<br>\n"),
            Event::Rule => out.push_str("<hr>\n"),
            // Not enabled in the options: math, footnotes, task lists.
            _ => {}
        }
    }
    out
}

fn start(out: &mut String, tag: Tag<'_>, links: &mut Vec<bool>) {
    match tag {
        Tag::Paragraph => out.push_str("<p>"),
        Tag::Heading { level, .. } => {
            let _ = write!(out, "<h{}>", shifted(level));
        }
        Tag::BlockQuote(_) => out.push_str("<blockquote>\n"),
        Tag::CodeBlock(_) => out.push_str("<pre><code>"),
        Tag::List(Some(1)) => out.push_str("<ol>\n"),
        Tag::List(Some(first)) => {
            let _ = writeln!(out, "<ol start=\"{first}\">");
        }
        Tag::List(None) => out.push_str("<ul>\n"),
        Tag::Item => out.push_str("<li>"),
        Tag::Emphasis => out.push_str("<em>"),
        Tag::Strong => out.push_str("<strong>"),
        Tag::Strikethrough => out.push_str("<del>"),
        Tag::Link { dest_url, .. } => {
            let url = web_link(&dest_url);
            if let Some(url) = &url {
                out.push_str("<a href=\"");
                escape(out, url);
                out.push_str("\" rel=\"nofollow ugc noopener noreferrer\">");
            }
            links.push(url.is_some());
        }
        // An image is its alternative text: the events inside it.
        _ => {}
    }
}

fn end(out: &mut String, tag: TagEnd, links: &mut Vec<bool>) {
    match tag {
        TagEnd::Paragraph => out.push_str("</p>\n"),
        TagEnd::Heading(level) => {
            let _ = writeln!(out, "</h{}>", shifted(level));
        }
        TagEnd::BlockQuote(_) => out.push_str("</blockquote>\n"),
        TagEnd::CodeBlock => out.push_str("</code></pre>\n"),
        TagEnd::List(true) => out.push_str("</ol>\n"),
        TagEnd::List(false) => out.push_str("</ul>\n"),
        TagEnd::Item => out.push_str("</li>\n"),
        TagEnd::Emphasis => out.push_str("</em>"),
        TagEnd::Strong => out.push_str("</strong>"),
        TagEnd::Strikethrough => out.push_str("</del>"),
        // A link written as `<a>` ends with `</a>`; one that was not, with
        // nothing.
        TagEnd::Link => out.push_str(match links.pop() {
            Some(true) => "</a>",
            _ => "",
        }),
        _ => {}
    }
}

/// `#` is `<h3>`, `##` `<h4>`, and deeper ones `<h6>`.
fn shifted(level: HeadingLevel) -> u8 {
    (level as u8 + 2).min(6)
}

/// The URL a link may point at: an absolute http(s) URL with a host, in
/// its serialized form.
fn web_link(dest: &str) -> Option<String> {
    let url = url::Url::parse(dest).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.has_host()).then(|| url.to_string())
}

fn escape(out: &mut String, text: &str) {
    let _ = Escaper::new(out).write_str(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subset_renders() {
        assert_eq!(
            render("# Notes\n\nA *small* **app**, ~~old~~ `x<y`.\n\n- one\n- two\n"),
            "<h3>Notes</h3>\n<p>A <em>small</em> <strong>app</strong>, <del>old</del> \
             <code>x&lt;y</code>.</p>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"
        );
        assert_eq!(
            render("3. c\n4. d\n"),
            "<ol start=\"3\">\n<li>c</li>\n<li>d</li>\n</ol>\n"
        );
        assert_eq!(
            render("```\n<b>\n```\n"),
            "<pre><code>&lt;b&gt;\n</code></pre>\n"
        );
        assert_eq!(render("a\nb"), "<p>a\nb</p>\n");
    }

    #[test]
    fn raw_html_is_text() {
        let html = render("<script>alert(1)</script>\n\nhi <img src=x onerror=alert(1)>");
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
    }

    #[test]
    fn only_web_links_are_links() {
        assert_eq!(
            render("[site](https://example.org/a?b=1&c=\"2\")"),
            "<p><a href=\"https://example.org/a?b=1&amp;c=%222%22\" \
             rel=\"nofollow ugc noopener noreferrer\">site</a></p>\n"
        );
        for bad in [
            "[x](javascript:alert(1))",
            "[x](data:text/html,hi)",
            "[x](/relative)",
            "[x](//example.org)",
            "<javascript:alert(1)>",
        ] {
            let html = render(bad);
            assert!(!html.contains("<a"), "{bad} → {html}");
        }
        // An autolink to a web URL is a link.
        assert!(render("<https://example.org>").contains("<a href=\"https://example.org/\""));
    }

    #[test]
    fn images_are_their_text() {
        assert_eq!(
            render("![a cat](https://example.org/cat.png)"),
            "<p>a cat</p>\n"
        );
    }

    #[test]
    fn a_long_hostile_description_stays_cheap_and_balanced() {
        // The longest description a record may hold, in the shapes that
        // nest or backtrack.
        for unit in ["> ", "[", "*", "- ", "<a ", "`"] {
            let text = unit.repeat(4000 / unit.len());
            let started = std::time::Instant::now();
            let html = render(&text);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{unit:?}"
            );
            for tag in ["blockquote", "ul", "li", "em", "strong", "a", "code"] {
                assert_eq!(
                    html.matches(&format!("<{tag}>")).count()
                        + html.matches(&format!("<{tag} ")).count(),
                    html.matches(&format!("</{tag}>")).count(),
                    "{unit:?}: <{tag}> unbalanced"
                );
            }
        }
    }
}
