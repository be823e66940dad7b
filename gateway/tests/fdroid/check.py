"""Reads a gateway's F-Droid repository with fdroidserver itself.

    python check.py REPO_URL_WITH_FINGERPRINT PACKAGE:CODE[,CODE...] ...

REPO_URL_WITH_FINGERPRINT is what the gateway prints ("fdroid repo: ...").
Checks, and exits non-zero with a message when one fails:
  * download_repo_index_v2 verifies entry.jar (jarsigner -strict, the
    fingerprint) and index-v2.json (its SHA-256 in entry.json);
  * index-v2 holds the fields the F-Droid client requires
    (index-v2.schema.json, from the client's index library) and exactly the
    expected packages and version codes, newest first;
  * every APK it lists downloads with the stated SHA-256 and size;
  * a wrong fingerprint, and an entry.jar whose entry.json was changed, are
    refused;
  * download_repo_index_v1 verifies index-v1.jar and lists the same.
Prints one JSON line: {"timestamp": ..., "versions": {...}}.
"""

import hashlib
import http.server
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import zipfile

import jsonschema
from fdroidserver import index
from fdroidserver.exception import VerificationException

from repo import fail, get, open_repo

HERE = os.path.dirname(os.path.abspath(__file__))


def expect_refused(what, call):
    try:
        call()
    except VerificationException:
        return
    fail(f"{what} was accepted")


def serve_tampered(repo):
    """A server on a free loopback port with the repository's files, its
    entry.jar's entry.json changed (the signature files kept)."""
    folder = tempfile.mkdtemp()
    original = zipfile.ZipFile(io.BytesIO(get(repo + "/entry.jar")))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename == "entry.json":
                entry = json.loads(data)
                entry["timestamp"] += 1
                data = json.dumps(entry).encode()
            z.writestr(info, data)
    with open(os.path.join(folder, "entry.jar"), "wb") as f:
        f.write(out.getvalue())
    with open(os.path.join(folder, "index-v2.json"), "wb") as f:
        f.write(get(repo + "/index-v2.json"))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=folder, **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, folder


def main():
    url = sys.argv[1]
    expected = {}
    for arg in sys.argv[2:]:
        name, codes = arg.split(":")
        expected[name] = [int(c) for c in codes.split(",")] if codes else []
    repo, fingerprint = open_repo(url)

    data, _ = index.download_repo_index_v2(url)
    with open(os.path.join(HERE, "index-v2.schema.json")) as f:
        jsonschema.validate(data, json.load(f))
    got = {}
    for name, package in data["packages"].items():
        versions = sorted(
            package["versions"].values(),
            key=lambda v: v["manifest"]["versionCode"],
            reverse=True,
        )
        got[name] = [v["manifest"]["versionCode"] for v in versions]
        for v in versions:
            body = get(repo + v["file"]["name"])
            if hashlib.sha256(body).hexdigest() != v["file"]["sha256"]:
                fail(f"{v['file']['name']}: SHA-256 is not the index's")
            if len(body) != v["file"]["size"]:
                fail(f"{v['file']['name']}: size is not the index's")
    if got != expected:
        fail(f"index-v2 lists {got}, expected {expected}")

    wrong = url.replace(f"fingerprint={fingerprint}", "fingerprint=" + "0" * 64)
    expect_refused("a wrong fingerprint", lambda: index.download_repo_index_v2(wrong))
    server, folder = serve_tampered(repo)
    try:
        port = server.server_address[1]
        tampered = f"http://127.0.0.1:{port}/?fingerprint={fingerprint}"
        expect_refused("a tampered entry.jar", lambda: index.download_repo_index_v2(tampered))
    finally:
        server.shutdown()
        shutil.rmtree(folder)

    v1, _ = index.download_repo_index_v1(url)
    if v1["repo"]["fingerprint"].lower() != fingerprint.lower():
        fail("index-v1.jar is signed by another key")
    got_v1 = {
        name: sorted((p["versionCode"] for p in packages), reverse=True)
        for name, packages in v1["packages"].items()
    }
    if got_v1 != expected:
        fail(f"index-v1 lists {got_v1}, expected {expected}")
    for app in v1["apps"]:
        if app["packageName"] not in expected or not app.get("license"):
            fail(f"index-v1 app {app.get('packageName')} is incomplete")

    print(json.dumps({"timestamp": data["repo"]["timestamp"], "versions": got}))


if __name__ == "__main__":
    main()
