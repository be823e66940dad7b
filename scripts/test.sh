#!/usr/bin/env bash
# Runs the whole IPSR test suite: the README's test command, and what .ci/run runs.
# Safe to run on a fresh Debian machine with Rust: it checks what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --locked "$@"
