"""What check.py and check_diff.py share: reporting a failure, fetching a
URL, and fdroidserver set up to verify a repository given by its URL with
the fingerprint (jarsigner from the JDK)."""

import os
import shutil
import sys
import urllib.parse
import urllib.request

from fdroidserver import common


def fail(message):
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(1)


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def open_repo(url):
    """Sets fdroidserver up and returns the repository's address (URL
    without its query) and the fingerprint the URL names."""
    jarsigner = shutil.which("jarsigner")
    if not jarsigner:
        fail("no jarsigner on PATH (a JDK is needed)")
    common.config = {"jarsigner": jarsigner}
    parts = urllib.parse.urlsplit(url)
    fingerprint = urllib.parse.parse_qs(parts.query)["fingerprint"][0]
    repo = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return repo, fingerprint
