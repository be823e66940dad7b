#!/usr/bin/env bash
# The whole user story against the running testnet, step by step: a new
# author key; publish com.example.hello 1.0.0 from node 1; see it on every
# node and on the gateway (JSON and HTML); download it from node N and
# through the gateway and compare the bytes; publish 1.1.0; yank it; see
# downloads fall back to 1.0.0. Exits non-zero at the first failed step.
#
#   testnet/demo.sh
source "$(dirname "$0")/lib.sh"
load_env

work="$RUN_DIR/demo"
mkdir -p "$work"
export XDG_CONFIG_HOME="$work/config"
unset IPSR_PASSPHRASE IPSR_NODE IPSR_GATEWAY
node1="$(cat "$RUN_DIR/node1/api")"
last="$(cat "$RUN_DIR/node$N/api")"
http="$(cat "$RUN_DIR/gateway/http")"
cli() { "$BIN/ipsr-cli" "$@"; }

# Runs "$@" until it succeeds, for up to $WAIT seconds.
retry() {
    local what="$1" deadline=$((SECONDS + WAIT))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out: $what"
        sleep 0.2
    done
}

name="demo-$(date +%s)-$$"
say "1. generate an author key ($name)"
author="$(cli key generate --name "$name")"
echo "   author: $author"
pkg="$author/com.example.hello"

head -c 300000 /dev/urandom >"$work/hello-1.0.0.bin"
printf 'title = "Hello"\nsummary = "The testnet demo app"\ncategories = ["demo"]\n' >"$work/meta.toml"
say "2. publish com.example.hello 1.0.0 from node 1"
cli --node "$node1" publish "$work/hello-1.0.0.bin" --package com.example.hello \
    --version 1.0.0 --version-code 1 --metadata "$work/meta.toml" --key "$name"

say "3. see it on every node and on the gateway"
for ((i = 1; i <= N; i++)); do
    retry "node $i knows $pkg@1.0.0" cli --node "$(cat "$RUN_DIR/node$i/api")" info "$pkg@1.0.0"
    echo "   node $i: has $pkg@1.0.0"
done
gateway_has() { curl -fsS --max-time 5 "$http/api/v1/package/$pkg" | grep -q "\"newest\":\"$1\""; }
retry "the gateway's JSON shows 1.0.0" gateway_has 1.0.0
echo "   gateway JSON: $http/api/v1/package/$pkg"
page_has() { curl -fsS --max-time 5 "$http/p/$pkg" | grep -q "$1"; }
retry "the gateway's page shows the package" page_has "The testnet demo app"
echo "   gateway page: $http/p/$pkg"

say "4. download from node $N and through the gateway; compare bytes"
cli --node "$last" download "$pkg@1.0.0" -o "$work/from-node.bin"
cmp "$work/hello-1.0.0.bin" "$work/from-node.bin"
curl -fsS --max-time 60 -o "$work/from-gateway.bin" "$http/api/v1/download/$pkg/1.0.0"
cmp "$work/hello-1.0.0.bin" "$work/from-gateway.bin"
echo "   both copies are identical to the published file"

say "5. publish 1.1.0"
head -c 200000 /dev/urandom >"$work/hello-1.1.0.bin"
cli --node "$node1" publish "$work/hello-1.1.0.bin" --package com.example.hello \
    --version 1.1.0 --version-code 2 --metadata "$work/meta.toml" --key "$name"
retry "the gateway shows 1.1.0" gateway_has 1.1.0
echo "   newest on the gateway: 1.1.0"

say "6. yank 1.1.0"
cli --node "$node1" yank "$pkg@1.1.0" --reason "demo: broken build" --key "$name"
retry "the gateway falls back to 1.0.0" gateway_has 1.0.0
fallback() {
    cli --node "$last" download "$pkg" -o "$work/after-yank.bin" && cmp "$work/hello-1.0.0.bin" "$work/after-yank.bin"
}
retry "node $N's download falls back to 1.0.0" fallback
curl -fsS --max-time 60 -o "$work/after-yank-gw.bin" "$http/api/v1/download/$pkg"
cmp "$work/hello-1.0.0.bin" "$work/after-yank-gw.bin"
echo "   downloads of $pkg now give 1.0.0 again"
say "demo complete"
