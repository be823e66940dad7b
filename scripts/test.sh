#!/usr/bin/env bash
# Runs the whole IPSR test suite: the README's test command, and what .ci/run runs.
# Safe to run on a fresh Debian machine with Rust: it checks what the tests need first.
#
#   scripts/test.sh              every Rust test, then the Helia (JS IPFS) interop
#                                check and the gateway's real-browser test
#   IPSR_SKIP_INTEROP=1 scripts/test.sh    without the Helia interop
#   IPSR_SKIP_BROWSER=1 scripts/test.sh    without the browser test
set -euo pipefail
cd "$(dirname "$0")/.."

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
