#!/usr/bin/env bash
# IPSR <-> Helia (JS IPFS) interop over Bitswap 1.2.0 + UnixFS, on loopback only.
#
#   scripts/interop-helia.sh
#
# 1. builds (debug) and starts one ipsr-node on 127.0.0.1;
# 2. IPSR -> Helia: adds a ~5 MiB pseudo-random file to IPSR with both profiles
#    (unixfs-v1-2025, unixfs-v0-2015); Helia dials IPSR, `cat`s each CID over
#    Bitswap, checks the sha256, and checks its own import of the same bytes
#    with the same settings gives the same root CID;
# 3. Helia -> IPSR: Helia imports another file and stays connected; IPSR
#    fetches it with GET /v1/content/{cid}?providers={helia peer id};
# 4. prints a report; exits non-zero on any mismatch, error or timeout.
#
# Environment (all optional):
#   IPSR_NODE      ipsr-node binary to use (skips the cargo build)
#   STEP_TIMEOUT   seconds allowed for each fetch (default 60)
#   KEEP_TMP=1     keep the temp dir (logs) even on success
# See testnet/interop/helia/README.md.
set -euo pipefail

T_START=$EPOCHREALTIME
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELIA_DIR="$ROOT/testnet/interop/helia"
STEP_TIMEOUT=${STEP_TIMEOUT:-60}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ipsr-interop-helia.XXXXXX")
PIDS=()
OK=0

log() { printf '[interop] %s\n' "$*" >&2; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# cleanup (on exit) and wait_for
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# json FILE KEY [SELECT]: field KEY of the first JSON line of FILE (whose "event" is SELECT)
json() {
    node -e '
        const [file, key, sel] = process.argv.slice(1)
        for (const line of require("fs").readFileSync(file, "utf8").split("\n")) {
            if (!line.startsWith("{")) continue
            const o = JSON.parse(line)
            if (sel && o.event !== sel) continue
            const v = o[key]
            process.stdout.write(v === undefined ? "" : String(v))
            process.exit(0)
        }' "$@"
}

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# --- ipsr-node ---------------------------------------------------------------
if [[ -n ${IPSR_NODE:-} ]]; then
    BIN=$IPSR_NODE
else
    TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
    log "building the workspace's binaries (debug, as cargo test does) into $TARGET"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET timeout 1800 cargo test -q --workspace --no-run --locked)
    BIN=$TARGET/debug/ipsr-node
fi
[[ -x $BIN ]] || { log "no ipsr-node binary at $BIN"; exit 1; }

mkdir -p "$TMP/ipsr"
# libp2p_swarm=debug logs why a connection closed (e.g. a yamux error)
RUST_LOG=${RUST_LOG:-info,libp2p_swarm=debug,ipsr_content=debug} \
    "$BIN" run --data-dir "$TMP/ipsr" --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 \
    >"$TMP/ipsr.out" 2>"$TMP/ipsr.log" </dev/null &
PIDS+=($!)
wait_for "$TMP/ipsr.out" '^api: ' 30
wait_for "$TMP/ipsr.out" '^listening on: /ip4/127\.0\.0\.1/tcp/' 30
IPSR_ADDR=$(grep -m1 '^listening on: /ip4/127.0.0.1/tcp/' "$TMP/ipsr.out" | awk '{print $3}')
API=$(grep -m1 '^api: ' "$TMP/ipsr.out" | awk '{print $2}')
IPSR_PEER=${IPSR_ADDR##*/p2p/}
log "ipsr-node $IPSR_PEER at $IPSR_ADDR, api $API"

# --- npm dependencies ----------------------------------------------------------
LOCK_SUM=$(sha256 "$HELIA_DIR/package-lock.json")
STAMP="$HELIA_DIR/node_modules/.ipsr-lock-sha256"
if [[ ! -d $HELIA_DIR/node_modules || "$(cat "$STAMP" 2>/dev/null)" != "$LOCK_SUM" ]]; then
    log "npm ci in testnet/interop/helia"
    T_NPM=$EPOCHREALTIME
    (cd "$HELIA_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
    echo "$LOCK_SUM" >"$STAMP"
    log "npm ci took $(since "$T_NPM") s"
fi
INTEROP=(node "$HELIA_DIR/interop.mjs")

# --- test files ------------------------------------------------------------------
# 5 MiB + 12345 B: 6 leaves of 1 MiB in v1 (the last one short), 21 of 256 KiB in v0
"${INTEROP[@]}" gen --seed ipsr-to-helia --size 5255225 --out "$TMP/a.bin" >/dev/null
# 3.5 MB: 4 leaves in v1
"${INTEROP[@]}" gen --seed helia-to-ipsr --size 3500000 --out "$TMP/b.bin" >/dev/null
SHA_A=$(sha256 "$TMP/a.bin")
SHA_B=$(sha256 "$TMP/b.bin")

# --- IPSR -> Helia ---------------------------------------------------------------
add() { # add FILE PROFILE -> JSON answer in $TMP/add-PROFILE.json
    curl -sS --fail-with-body -m 60 -X POST --data-binary @"$1" \
        -H 'Content-Type: application/octet-stream' \
        "$API/v1/content?profile=$2" >"$TMP/add-$2.json"
    echo >>"$TMP/add-$2.json"
}
add "$TMP/a.bin" unixfs-v1-2025
add "$TMP/a.bin" unixfs-v0-2015
CID_V1=$(json "$TMP/add-unixfs-v1-2025.json" cid)
CID_V0=$(json "$TMP/add-unixfs-v0-2015.json" cid)
log "IPSR added $CID_V1 (v1, $(json "$TMP/add-unixfs-v1-2025.json" blocks) blocks)" \
    "and $CID_V0 (v0, $(json "$TMP/add-unixfs-v0-2015.json" blocks) blocks)"

log "IPSR -> Helia: Helia fetches both CIDs over Bitswap"
T1=$EPOCHREALTIME
set +e
timeout $((2 * STEP_TIMEOUT + 30)) "${INTEROP[@]}" run --ipsr "$IPSR_ADDR" --timeout "$STEP_TIMEOUT" \
    --fetch "$CID_V1,$TMP/a.bin,v1" --fetch "$CID_V0,$TMP/a.bin,v0" \
    >"$TMP/fetch.jsonl" 2>"$TMP/fetch.log" </dev/null
FETCH_RC=$?
set -e
T1=$(since "$T1")

fetch_field() { # fetch_field CID KEY
    node -e '
        const [file, cid, key] = process.argv.slice(1)
        for (const line of require("fs").readFileSync(file, "utf8").split("\n")) {
            if (!line.startsWith("{")) continue
            const o = JSON.parse(line)
            if (o.event === "fetch" && o.cid === cid) { process.stdout.write(String(o[key] ?? "")); break }
        }' "$TMP/fetch.jsonl" "$1" "$2"
}
RES_V1=FAIL RES_V0=FAIL
[[ $FETCH_RC == 0 && $(fetch_field "$CID_V1" ok) == true ]] && RES_V1=PASS
[[ $FETCH_RC == 0 && $(fetch_field "$CID_V0" ok) == true ]] && RES_V0=PASS

# --- Helia -> IPSR ---------------------------------------------------------------
log "Helia -> IPSR: Helia imports a file and serves it; IPSR fetches it"
T2=$EPOCHREALTIME
"${INTEROP[@]}" run --ipsr "$IPSR_ADDR" --timeout "$STEP_TIMEOUT" --serve "$TMP/b.bin" \
    --serve-timeout $((STEP_TIMEOUT + 60)) >"$TMP/serve.jsonl" 2>"$TMP/serve.log" </dev/null &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
RES_B=FAIL CID_B="" HTTP_B="" SHA_GOT_B="" WHY_B=""
if wait_for "$TMP/serve.jsonl" '"event":"(serving|error)"' 60 && grep -q '"event":"serving"' "$TMP/serve.jsonl"; then
    CID_B=$(json "$TMP/serve.jsonl" cid serving)
    HELIA_PEER=$(json "$TMP/serve.jsonl" peerId serving)
    # curl runs in the background so that a dropped connection ends the wait early
    curl -sS -m "$STEP_TIMEOUT" -o "$TMP/b.got" -w '%{http_code}' \
        "$API/v1/content/$CID_B?providers=$HELIA_PEER" >"$TMP/curl-b.code" 2>"$TMP/curl-b.log" &
    CURL_PID=$!
    PIDS+=("$CURL_PID")
    DROPPED=""
    while kill -0 "$CURL_PID" 2>/dev/null; do
        if [[ -z $DROPPED ]] && grep -q '"event":"disconnected"' "$TMP/serve.jsonl"; then
            DROPPED=$SECONDS
        fi
        if [[ -n $DROPPED ]] && ((SECONDS - DROPPED >= 3)); then
            kill -TERM "$CURL_PID" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    set +e
    wait "$CURL_PID"
    CURL_RC=$?
    set -e
    HTTP_B=$(cat "$TMP/curl-b.code" 2>/dev/null || true)
    [[ -f $TMP/b.got ]] && SHA_GOT_B=$(sha256 "$TMP/b.got")
    if [[ $CURL_RC == 0 && $HTTP_B == 200 && $SHA_GOT_B == "$SHA_B" ]]; then
        RES_B=PASS
    else
        WHY_B="curl exit $CURL_RC, HTTP ${HTTP_B:-none}"
        ((CURL_RC == 28)) && WHY_B="timeout after $STEP_TIMEOUT s, HTTP ${HTTP_B:-none}"
        [[ -n $DROPPED ]] && WHY_B="the Helia-IPSR connection dropped during the fetch; curl stopped"
    fi
else
    WHY_B="helia did not start serving: $(json "$TMP/serve.jsonl" error error)"
fi
kill -TERM "$SERVE_PID" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
T2=$(since "$T2")

# --- report ------------------------------------------------------------------------
ELAPSED=$(since "$T_START")
echo
echo "IPSR <-> Helia interop report"
echo "  ipsr-node      $IPSR_PEER ($BIN)"
echo "  helia          $(node -p "require('$HELIA_DIR/node_modules/helia/package.json').version")," \
    "@helia/bitswap $(node -p "require('$HELIA_DIR/node_modules/@helia/bitswap/package.json').version")," \
    "libp2p $(node -p "require('$HELIA_DIR/node_modules/libp2p/package.json').version"), node $(node --version)"
echo "  file A         $(stat -c %s "$TMP/a.bin") B sha256 $SHA_A"
echo "  file B         $(stat -c %s "$TMP/b.bin") B sha256 $SHA_B"
echo "IPSR -> Helia ($T1 s)"
for v in v1 v0; do
    cid=$CID_V1 res=$RES_V1
    [[ $v == v0 ]] && cid=$CID_V0 res=$RES_V0
    echo "  $v  $res  cid $cid  helia-cid $(fetch_field "$cid" heliaCid)  bytes $(fetch_field "$cid" size)" \
        "sha-ok $(fetch_field "$cid" shaOk) cid-ok $(fetch_field "$cid" cidOk) $(fetch_field "$cid" ms) ms $(fetch_field "$cid" error)"
done
echo "Helia -> IPSR ($T2 s)"
echo "  v1  $RES_B  cid ${CID_B:-?}  http ${HTTP_B:-none}  sha256 ${SHA_GOT_B:-none} ${WHY_B}"
if [[ $RES_B != PASS ]]; then
    grep -q '"event":"disconnected"' "$TMP/serve.jsonl" &&
        echo "  helia saw the IPSR connection drop"
    if grep -q 'FrameTooLarge' "$TMP/ipsr.log"; then
        echo "  ipsr-node closed the connection: yamux Decode($(grep -m1 -o 'FrameTooLarge([0-9]*)' "$TMP/ipsr.log"))"
        echo "  (rust-yamux refuses data frames > 1 MiB; js-yamux sends frames as large as the"
        echo "   send window, which rust-yamux auto-tuned above 1 MiB - see testnet/interop/helia/README.md)"
    fi
fi
echo "elapsed $ELAPSED s"

if [[ $RES_V1 == PASS && $RES_V0 == PASS && $RES_B == PASS ]]; then
    echo "RESULT: PASS"
    OK=1
    exit 0
fi
echo "RESULT: FAIL"
exit 1
