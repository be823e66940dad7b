"""Reads an Atom feed of the gateway with feedparser (from PyPI) and checks
what RFC 4287 requires of it.

    python check_feed.py FEED_URL ENTRIES

Checks, and exits non-zero with a message when one fails: the document is
well-formed Atom 1.0 (feedparser's strict XML parse, no "bozo" error); the
feed has an id, a title, an updated date, a self link and an alternate
link; it has ENTRIES entries, newest first, each with an id (unique), a
title, an updated date, an author name, an alternate link and an enclosure
whose type and length are given.
"""

import sys
import urllib.request

import feedparser


def fail(message):
    print(f"check_feed.py: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    url, expected = sys.argv[1], int(sys.argv[2])
    with urllib.request.urlopen(url, timeout=60) as r:
        kind = r.headers.get("content-type", "")
        body = r.read()
    if not kind.startswith("application/atom+xml"):
        fail(f"content type {kind!r}")
    d = feedparser.parse(body)
    if d.bozo:
        fail(f"not well-formed: {d.bozo_exception}")
    if d.version != "atom10":
        fail(f"not Atom 1.0 but {d.version!r}")
    feed = d.feed
    for field in ("id", "title", "updated"):
        if not feed.get(field):
            fail(f"the feed has no {field}")
    rels = {link.get("rel") for link in feed.get("links", [])}
    if not {"self", "alternate"} <= rels:
        fail(f"the feed's links are {rels}")
    if len(d.entries) != expected:
        fail(f"{len(d.entries)} entries, expected {expected}")
    ids = set()
    last = None
    for e in d.entries:
        for field in ("id", "title", "updated"):
            if not e.get(field):
                fail(f"an entry has no {field}")
        if e.id in ids:
            fail(f"entry id {e.id} twice")
        ids.add(e.id)
        if not e.get("author"):
            fail(f"entry {e.id} has no author")
        if last is not None and e.updated_parsed > last:
            fail("entries are not newest first")
        last = e.updated_parsed
        links = {link.get("rel"): link for link in e.get("links", [])}
        if "alternate" not in links:
            fail(f"entry {e.id} has no alternate link")
        enclosure = links.get("enclosure")
        if not enclosure or not enclosure.get("type") or not enclosure.get("length"):
            fail(f"entry {e.id} has no enclosure with type and length")
    print(len(d.entries))


if __name__ == "__main__":
    main()
