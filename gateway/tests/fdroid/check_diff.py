"""Follows a gateway's F-Droid repository from an earlier index by its diff,
as a client that has that index does.

    python check_diff.py OLD_INDEX_V2_FILE REPO_URL_WITH_FINGERPRINT

Verifies entry.jar with fdroidserver (jarsigner, the fingerprint), finds
the diff named for the old index's timestamp, checks its SHA-256 and size,
applies it to the old index as a JSON merge patch (RFC 7386, the
json-merge-patch package) and checks that the result is the current
index-v2.json (verified through entry.json by fdroidserver). Exits non-zero
with a message when one fails; prints the number of packages the diff names.
"""

import hashlib
import json
import os
import sys
import tempfile

import json_merge_patch
from fdroidserver import index

from repo import fail, get, open_repo


def main():
    with open(sys.argv[1], "rb") as f:
        old = json.load(f)
    url = sys.argv[2]
    repo, fingerprint = open_repo(url)

    with tempfile.TemporaryDirectory() as folder:
        jar = os.path.join(folder, "entry.jar")
        with open(jar, "wb") as f:
            f.write(get(repo + "/entry.jar"))
        entry, _, _ = index.get_index_from_jar(jar, fingerprint)
    since = str(old["repo"]["timestamp"])
    named = entry.get("diffs", {}).get(since)
    if not named:
        fail(f"entry.json has no diff from {since}: {sorted(entry.get('diffs', {}))}")
    patch = get(repo + named["name"])
    if hashlib.sha256(patch).hexdigest() != named["sha256"] or len(patch) != named["size"]:
        fail("the diff's SHA-256 or size is not entry.json's")
    current, _ = index.download_repo_index_v2(url)
    followed = json_merge_patch.merge(old, json.loads(patch))
    if followed != current:
        fail("the old index with the diff applied is not the current index")
    print(named["numPackages"])


if __name__ == "__main__":
    main()
