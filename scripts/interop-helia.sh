#!/usr/bin/env bash
# IPSR <-> Helia (JS IPFS) interop over Bitswap 1.2.0 + UnixFS, on loopback only.
#
#   scripts/interop-helia.sh
#
# 1. builds (debug) and starts one ipsr-node on 127.0.0.1;
# 2. IPSR -> Helia: adds a 64 MiB pseudo-random file to IPSR with both profiles
#    (unixfs-v1-2025, unixfs-v0-2015); Helia dials IPSR, `cat`s each CID over
#    Bitswap, checks the sha256, and checks its own import of the same bytes
#    with the same settings gives the same root CID;
# 3. Helia -> IPSR: Helia imports another 64 MiB file with both profiles and
#    stays connected; IPSR fetches each root with
#    GET /v1/content/{cid}?providers={helia peer id};
# 4. prints a report (with IPSR's Bitswap counters); exits non-zero on any
#    mismatch, error or timeout.
#
# 64 MiB is large enough that Helia's server sees new wantlists while it is
# still sending, which is when it sends a block twice.
#
# Environment (all optional):
#   IPSR_NODE      ipsr-node binary to use (skips the cargo build)
#   INTEROP_SIZE   bytes of each test file (default 67121209: 64 MiB + 12345 B)
#   STEP_TIMEOUT   seconds allowed for each fetch (default 120)
#   KEEP_TMP=1     keep the temp dir (logs) even on success
# See testnet/interop/helia/README.md.
set -euo pipefail

T_START=$EPOCHREALTIME
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELIA_DIR="$ROOT/testnet/interop/helia"
STEP_TIMEOUT=${STEP_TIMEOUT:-120}
SIZE=${INTEROP_SIZE:-67121209}
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
# 64 MiB + 12345 B: 65 leaves of 1 MiB in v1 (the last one short), 257 of
# 256 KiB in v0 (two levels: 174 links per node)
"${INTEROP[@]}" gen --seed ipsr-to-helia --size "$SIZE" --out "$TMP/a.bin" >/dev/null
"${INTEROP[@]}" gen --seed helia-to-ipsr --size "$SIZE" --out "$TMP/b.bin" >/dev/null
SHA_A=$(sha256 "$TMP/a.bin")
SHA_B=$(sha256 "$TMP/b.bin")

# --- IPSR -> Helia ---------------------------------------------------------------
add() { # add FILE PROFILE -> JSON answer in $TMP/add-PROFILE.json
    curl -sS --fail-with-body -m "$STEP_TIMEOUT" -X POST --data-binary @"$1" \
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
# helia_serves NAME FILE SHA PROFILE... [-- EXTRA ARGS]: starts a Helia node that
# imports FILE with each PROFILE and serves it, then IPSR fetches each root with
# GET /v1/content/{cid}?providers={helia peer id}. Sets RES_<NAME>_<profile>
# (PASS|FAIL) and ROW_<NAME>_<profile> (a report line).
helia_serves() {
    local name=$1 file=$2 sha=$3 profiles=() extra=() serve=() p
    shift 3
    while (($#)) && [[ $1 != -- ]]; do profiles+=("$1"); shift; done
    (($#)) && shift && extra=("$@")
    for p in "${profiles[@]}"; do
        serve+=(--serve "$file,$p")
        printf -v "RES_${name}_$p" %s FAIL
        printf -v "ROW_${name}_$p" %s "$p  FAIL  helia did not start serving"
    done
    local jsonl=$TMP/serve-$name.jsonl
    "${INTEROP[@]}" run --ipsr "$IPSR_ADDR" --timeout "$STEP_TIMEOUT" "${serve[@]}" "${extra[@]}" \
        --serve-timeout $((${#profiles[@]} * STEP_TIMEOUT + 120)) >"$jsonl" 2>"$TMP/serve-$name.log" </dev/null &
    local serve_pid=$!
    PIDS+=("$serve_pid")
    if wait_for "$jsonl" '"event":"(ready|error)"' $((STEP_TIMEOUT + 60)) && grep -q '"event":"ready"' "$jsonl"; then
        local peer
        peer=$(json "$jsonl" peerId ready)
        for p in "${profiles[@]}"; do
            ipsr_fetch "$name" "$p" "$jsonl" "$peer" "$sha"
        done
    fi
    kill -TERM "$serve_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
}

# ipsr_fetch NAME PROFILE JSONL PEER SHA: IPSR fetches the root Helia serves
# for PROFILE (as JSONL says) from PEER and compares the body's sha256 with SHA.
ipsr_fetch() {
    local name=$1 p=$2 jsonl=$3 peer=$4 want=$5 cid code rc sha="" why="" dropped="" t seen
    cid=$(node -e '
        const [file, profile] = process.argv.slice(1)
        for (const line of require("fs").readFileSync(file, "utf8").split("\n")) {
            if (!line.startsWith("{")) continue
            const o = JSON.parse(line)
            if (o.event === "serving" && o.profile === profile) { process.stdout.write(o.cid); break }
        }' "$jsonl" "$p")
    log "IPSR fetches $cid ($name, $p) from Helia"
    seen=$(grep -c '"event":"disconnected"' "$jsonl" || true)
    t=$EPOCHREALTIME
    local out=$TMP/got-$name-$p
    # curl runs in the background so that a dropped connection ends the wait early
    curl -sS -m "$STEP_TIMEOUT" -o "$out" -w '%{http_code}' \
        "$API/v1/content/$cid?providers=$peer" >"$out.code" 2>"$out.log" &
    local curl_pid=$!
    PIDS+=("$curl_pid")
    while kill -0 "$curl_pid" 2>/dev/null; do
        if [[ -z $dropped ]] && (($(grep -c '"event":"disconnected"' "$jsonl" || true) > seen)); then
            dropped=$SECONDS
        fi
        if [[ -n $dropped ]] && ((SECONDS - dropped >= 3)); then
            kill -TERM "$curl_pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    set +e
    wait "$curl_pid"
    rc=$?
    set -e
    code=$(cat "$out.code" 2>/dev/null || true)
    [[ -f $out ]] && sha=$(sha256 "$out")
    local res=FAIL
    if [[ $rc == 0 && $code == 200 && $sha == "$want" ]]; then
        res=PASS
    else
        why="curl exit $rc, HTTP ${code:-none}"
        ((rc == 28)) && why="timeout after $STEP_TIMEOUT s, HTTP ${code:-none}"
        [[ -n $dropped ]] && why="the Helia-IPSR connection dropped during the fetch; curl stopped"
    fi
    printf -v "RES_${name}_$p" %s "$res"
    printf -v "ROW_${name}_$p" %s "$p  $res  cid $cid  http ${code:-none}  sha256 ${sha:-none}  $(since "$t") s  $why"
}

log "Helia -> IPSR: Helia imports a file with both profiles and serves it; IPSR fetches both"
T2=$EPOCHREALTIME
helia_serves B "$TMP/b.bin" "$SHA_B" v1 v0
T2=$(since "$T2")

# The pinned Helia sends each block once. Older Helia and kubo servers sent a
# block again when a new wantlist came in while they were still sending; the
# copy must count as a duplicate, not get the server banned. --resend-blocks
# makes this Helia do that for every message (a quarter of the size suffices).
log "Helia -> IPSR with every block sent twice: IPSR must take the copies as duplicates"
"${INTEROP[@]}" gen --seed helia-resends --size $((SIZE / 4)) --out "$TMP/c.bin" >/dev/null
SHA_C=$(sha256 "$TMP/c.bin")
T3=$EPOCHREALTIME
helia_serves C "$TMP/c.bin" "$SHA_C" v0 -- --resend-blocks 1
T3=$(since "$T3")
METRICS=$(curl -sS -m 10 "$API/metrics" 2>/dev/null | grep -E '^ipsr_bitswap_' || true)
metric() { awk -v m="$1" '$1 == m { print $2 }' <<<"$METRICS"; }
DUPLICATES=$(metric ipsr_bitswap_duplicate_blocks_total)
BAD=$(metric ipsr_bitswap_bad_blocks_total)
RES_DUP=FAIL
[[ $RES_C_v0 == PASS && ${DUPLICATES:-0} -gt 0 && ${BAD:-1} == 0 ]] && RES_DUP=PASS

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
echo "  file C         $(stat -c %s "$TMP/c.bin" 2>/dev/null) B sha256 ${SHA_C:-}"
echo "IPSR -> Helia ($T1 s)"
for v in v1 v0; do
    cid=$CID_V1 res=$RES_V1
    [[ $v == v0 ]] && cid=$CID_V0 res=$RES_V0
    echo "  $v  $res  cid $cid  helia-cid $(fetch_field "$cid" heliaCid)  bytes $(fetch_field "$cid" size)" \
        "sha-ok $(fetch_field "$cid" shaOk) cid-ok $(fetch_field "$cid" cidOk) $(fetch_field "$cid" ms) ms $(fetch_field "$cid" error)"
done
echo "Helia -> IPSR ($T2 s)"
echo "  $ROW_B_v1"
echo "  $ROW_B_v0"
echo "Helia -> IPSR, every block sent twice ($T3 s)"
echo "  $ROW_C_v0"
echo "  duplicates $RES_DUP  ${DUPLICATES:-no} duplicate blocks counted, ${BAD:-no count of} bad blocks"
if [[ $RES_B_v1 != PASS || $RES_B_v0 != PASS || $RES_DUP != PASS ]]; then
    grep -q '"event":"disconnected"' "$TMP"/serve-*.jsonl &&
        echo "  helia saw the IPSR connection drop"
    if grep -q 'FrameTooLarge' "$TMP/ipsr.log"; then
        echo "  ipsr-node closed the connection: yamux Decode($(grep -m1 -o 'FrameTooLarge([0-9]*)' "$TMP/ipsr.log"))"
        echo "  (rust-yamux refuses data frames > 1 MiB; js-yamux sends frames as large as the"
        echo "   send window - see testnet/interop/helia/README.md)"
    fi
    grep -m3 -E 'does not match|unsolicited|bad block' "$TMP/ipsr.log" | cut -c1-300 | sed 's/^/  ipsr log: /' || true
fi
echo "IPSR Bitswap counters"
sed 's/^/  /' <<<"${METRICS:-(none)}"
echo "elapsed $ELAPSED s"

if [[ $RES_V1 == PASS && $RES_V0 == PASS && $RES_B_v1 == PASS && $RES_B_v0 == PASS && $RES_DUP == PASS ]]; then
    echo "RESULT: PASS"
    OK=1
    exit 0
fi
echo "RESULT: FAIL"
exit 1
