#!/usr/bin/env bash
# Real-browser test of the gateway's web pages, on loopback only.
#
#   scripts/browser-test.sh
#
# 1. builds (debug) ipsr-gateway and ipsr-cli, and starts one ipsr-gateway on
#    127.0.0.1 (HTTP, node API and libp2p on ports the OS picks), which takes
#    uploads from anyone;
# 2. publishes a package into it with ipsr-cli (a new key, a tiny real APK
#    whose manifest asks for two permissions, metadata with a title, a
#    Markdown description with HTML injected, a changelog, a category, an
#    icon and two screenshots);
# 3. headless Chromium (Debian's `chromium`, driven by playwright-core, with
#    JavaScript off, on a 390x844 phone screen) loads /, follows a category
#    link, searches, opens the package page, checks its text, images, links
#    and QR code (decoded: the latest APK's URL), fetches the download and
#    the QR code's URL and compares them with the published file, opens the
#    author's page and /fdroid, checks that every page fits the screen's
#    width, and loads the package page with JavaScript on at desktop size
#    (its one script runs under the CSP);
# 4. saves screenshots of each page in the artefact folder;
# 5. a page of another site (JavaScript on) attacks the node API: a
#    cross-site POST and DNS rebinding must both get 403;
# and exits non-zero on any failure.
#
# Environment (all optional):
#   IPSR_GATEWAY, IPSR_CLI   binaries to use (skip the cargo build)
#   CHROMIUM                 the browser (default /usr/bin/chromium)
#   BROWSER_ARTEFACTS        where the screenshots go
#                            (default $CARGO_TARGET_DIR/browser-artefacts)
#   STEP_TIMEOUT             seconds allowed for each browser step (default 30)
#   KEEP_TMP=1               keep the temp dir (logs) even on success
# See gateway/tests/browser/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BROWSER_DIR="$ROOT/gateway/tests/browser"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ARTEFACTS=${BROWSER_ARTEFACTS:-$TARGET/browser-artefacts}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
STEP_TIMEOUT=${STEP_TIMEOUT:-30}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ipsr-browser.XXXXXX")
PIDS=()
OK=0

log() { printf '[browser] %s\n' "$*" >&2; }

# cleanup (on exit) and wait_for
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# json FILE KEY: field KEY of the JSON object in FILE
json() {
    node -e '
        const [file, key] = process.argv.slice(1)
        const v = JSON.parse(require("fs").readFileSync(file, "utf8"))[key]
        process.stdout.write(v === undefined ? "" : String(v))' "$@"
}

[[ -x $CHROMIUM ]] || { log "no Chromium at $CHROMIUM (apt-get install chromium)"; exit 1; }

# --- binaries ------------------------------------------------------------------
if [[ -n ${IPSR_GATEWAY:-} && -n ${IPSR_CLI:-} ]]; then
    GATEWAY=$IPSR_GATEWAY CLI=$IPSR_CLI
else
    # The same build as the README's test command (`cargo test --workspace`),
    # so after it this is a no-op and no second feature set is compiled.
    log "building the workspace's binaries (debug, as cargo test does) into $TARGET"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET timeout 1800 cargo test -q --workspace --no-run --locked)
    GATEWAY=$TARGET/debug/ipsr-gateway CLI=$TARGET/debug/ipsr-cli
fi
for bin in "$GATEWAY" "$CLI"; do
    [[ -x $bin ]] || { log "no binary at $bin"; exit 1; }
done
# The gateway and the CLI read IPSR_* variables (Redis, bootstrap peers,
# config file, key passphrase...): this test sets everything on the command line.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^IPSR_' || true)

# --- npm dependencies ----------------------------------------------------------
LOCK_SUM=$(sha256sum "$BROWSER_DIR/package-lock.json" | cut -d' ' -f1)
STAMP="$BROWSER_DIR/node_modules/.ipsr-lock-sha256"
if [[ ! -d $BROWSER_DIR/node_modules || "$(cat "$STAMP" 2>/dev/null)" != "$LOCK_SUM" ]]; then
    log "npm ci in gateway/tests/browser"
    (cd "$BROWSER_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
    echo "$LOCK_SUM" >"$STAMP"
fi
BROWSER=(node "$BROWSER_DIR/browser.mjs")

# --- the gateway ---------------------------------------------------------------
mkdir -p "$TMP/gw"
RUST_LOG=${RUST_LOG:-info} "$GATEWAY" --data-dir "$TMP/gw" --http 127.0.0.1:0 --api 127.0.0.1:0 \
    --listen /ip4/127.0.0.1/tcp/0 --uploads-from-anyone \
    >"$TMP/gateway.out" 2>"$TMP/gateway.log" </dev/null &
PIDS+=($!)
wait_for "$TMP/gateway.out" '^gateway: http://' 60
API=$(grep -m1 '^api: ' "$TMP/gateway.out" | awk '{print $2}')
URL=$(grep -m1 '^gateway: ' "$TMP/gateway.out" | awk '{print $2}')
log "gateway at $URL, node API at $API"

# --- a package -----------------------------------------------------------------
export XDG_CONFIG_HOME="$TMP/config" # the test's own author key
PACKAGE=org.example.pocketnotes VERSION=1.2.3 TITLE="Pocket Notes"
# A real (tiny) APK: publish checks its manifest against the flags and metadata.
cp "$ROOT/cli/tests/fixtures/apk/pocket-notes.apk" "$TMP/pocket-notes.apk"
"${BROWSER[@]}" icon --out "$TMP/icon.png"
"${BROWSER[@]}" shot --out "$TMP/shot-1.png"
"${BROWSER[@]}" shot --out "$TMP/shot-2.png"
CATEGORY=productivity CHANGELOG="Notes open twice as fast."
# The description is Markdown, with HTML and a javascript: link injected:
# the page must show both as text. SDKs and permissions come from the APK's
# manifest (INTERNET and CAMERA).
cat >"$TMP/app.toml" <<EOF
title = "Pocket Notes"
summary = "Notes that stay on your phone"
description = """Write notes on your phone. They **never** leave it.

## Features

- plain-text notes, see [the help](https://notes.example/help)
- <img src=x onerror=alert(1)> and [a trap](javascript:alert(1))
"""
changelog = "$CHANGELOG"
license = "MIT OR Apache-2.0"
homepage_url = "https://notes.example/"
source_url = "https://code.example/pocket-notes"
categories = ["$CATEGORY"]
icon = "icon.png"
screenshots = ["shot-1.png", "shot-2.png"]
EOF
timeout 60 "$CLI" --node "$API" --json key generate >"$TMP/key.json" </dev/null
timeout 120 "$CLI" --node "$API" --json publish "$TMP/pocket-notes.apk" --package "$PACKAGE" \
    --version "$VERSION" --metadata "$TMP/app.toml" >"$TMP/publish.json" </dev/null
AUTHOR=$(json "$TMP/publish.json" author)
CID=$(json "$TMP/publish.json" cid)
log "published $AUTHOR/$PACKAGE@$VERSION ($CID)"

# --- the browser ---------------------------------------------------------------
log "$("$CHROMIUM" --version 2>/dev/null), playwright-core" \
    "$(node -p "require('$BROWSER_DIR/node_modules/playwright-core/package.json').version")"
mkdir -p "$ARTEFACTS"
rm -f "$ARTEFACTS"/{home,results,category,package,author,fdroid,package-desktop}.png
# Runs the browser driver with the arguments after NAME, LIMIT and WHAT, in
# the background (so that a signal to this script stops it at once: trap),
# for at most LIMIT seconds, into $TMP/NAME.jsonl and .log; prints both and
# fails with WHAT when the driver fails.
browser_step() {
    local name=$1 limit=$2 what=$3
    shift 3
    timeout -k 10 "$limit" "${BROWSER[@]}" "$@" \
        >"$TMP/$name.jsonl" 2>"$TMP/$name.log" </dev/null &
    PIDS+=($!)
    local rc=0
    wait "${PIDS[-1]}" || rc=$?
    cat "$TMP/$name.jsonl" "$TMP/$name.log"
    if [[ $rc != 0 ]]; then
        log "FAIL: $what (exit $rc); gateway log: $TMP/gateway.log"
        return 1
    fi
}

browser_step browser $((6 * STEP_TIMEOUT + 60)) "the pages" run --url "$URL" \
    --author "$AUTHOR" --package "$PACKAGE" --version "$VERSION" --title "$TITLE" \
    --query "pocket notes" --file "$TMP/pocket-notes.apk" --file-name pocket-notes.apk \
    --cid "$CID" --category "$CATEGORY" --changelog "$CHANGELOG" --screenshots 2 \
    --artefacts "$ARTEFACTS" --chromium "$CHROMIUM" --timeout "$STEP_TIMEOUT" ||
    {
        log "screenshots so far in $ARTEFACTS"
        exit 1
    }
# A page of another site attacks the node API (cross-site POST, DNS rebinding).
browser_step attack $((4 * STEP_TIMEOUT + 60)) "the node API under a browser attack" \
    attack --url "$URL" --api "$API" --chromium "$CHROMIUM" --timeout "$STEP_TIMEOUT" ||
    exit 1
log "PASS; screenshots in $ARTEFACTS"
OK=1
