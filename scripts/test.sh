#!/usr/bin/env bash
# Runs the whole IPSR test suite: the README's test command, and what .ci/run runs.
# Safe to run on a fresh Debian machine with Rust: it checks what the tests need first.
#
#   scripts/test.sh              every Rust test (fdroidserver reading the gateway's
#                                F-Droid repository among them), then the Helia
#                                (JS IPFS) interop check and the real-browser test
#   IPSR_SKIP_INTEROP=1 scripts/test.sh    without the Helia interop
#   IPSR_SKIP_BROWSER=1 scripts/test.sh    without the browser test
set -euo pipefail
cd "$(dirname "$0")/.."

# F-Droid's own tools (fdroidserver, from PyPI, pinned in
# gateway/tests/fdroid/requirements.txt) read the gateway's F-Droid
# repository in gateway/tests/fdroid.rs: they go in a virtual environment
# made here once (python3 -m venv; jarsigner comes from the JDK).
if [[ -z "${IPSR_FDROID_PYTHON:-}" ]]; then
    venv=${IPSR_VENV:-${CARGO_TARGET_DIR:-target}/fdroid-venv}
    wanted=gateway/tests/fdroid/requirements.txt
    if command -v python3 >/dev/null && command -v jarsigner >/dev/null &&
        python3 -m venv --help >/dev/null 2>&1; then
        if ! cmp -s "$wanted" "$venv/requirements.txt"; then
            echo "fdroid: preparing fdroidserver in $venv"
            rm -rf "$venv"
            python3 -m venv "$venv"
            "$venv/bin/pip" install -q --disable-pip-version-check -r "$wanted"
            cp "$wanted" "$venv/requirements.txt"
        fi
        export IPSR_FDROID_PYTHON=$venv/bin/python
    elif [[ "${CI:-}" == true ]]; then
        echo "fdroid: python3 with venv and a JDK's jarsigner are needed" >&2
        exit 1
    else
        echo "fdroid: the fdroidserver test is skipped (needs python3 with venv and jarsigner)"
    fi
fi

cargo test --workspace --locked "$@"

# Interop with a real IPFS implementation (Helia) over Bitswap + UnixFS, on
# loopback; needs Node.js >= 20 and npm (its packages are pinned in
# testnet/interop/helia/package-lock.json and installed on first run).
if [[ "${IPSR_SKIP_INTEROP:-}" == 1 ]]; then
    echo "interop: skipped (IPSR_SKIP_INTEROP=1)"
elif command -v node >/dev/null && command -v npm >/dev/null; then
    scripts/interop-helia.sh
elif [[ "${CI:-}" == true ]]; then
    echo "interop: Node.js and npm are needed (apt-get install nodejs npm)" >&2
    exit 1
else
    echo "interop: skipped (no Node.js/npm; apt-get install nodejs npm to run it)"
fi

# The gateway's web pages in a real browser: headless Chromium (Debian's
# `chromium`; .ci/run installs it) driven by playwright-core (pinned in
# gateway/tests/browser/package-lock.json, installed on first run).
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [[ "${IPSR_SKIP_BROWSER:-}" == 1 ]]; then
    echo "browser: skipped (IPSR_SKIP_BROWSER=1)"
elif [[ -x $CHROMIUM ]] && command -v node >/dev/null && command -v npm >/dev/null; then
    CHROMIUM=$CHROMIUM scripts/browser-test.sh
elif [[ "${CI:-}" == true ]]; then
    echo "browser: Chromium ($CHROMIUM), Node.js and npm are needed (apt-get install chromium nodejs npm)" >&2
    exit 1
else
    echo "browser: skipped (no $CHROMIUM or no Node.js/npm; apt-get install chromium nodejs npm to run it)"
fi
