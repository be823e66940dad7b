#!/usr/bin/env bash
# Starts a local IPSR network: N nodes and one gateway on loopback, each
# bootstrapped from earlier ones (a chain plus shortcuts, not a star), then
# waits until every member is connected and has DHT peers, and prints them.
#
#   testnet/up.sh [-n N] [--redis URL] [--base-port P]
#
# Ports: node I listens on P+I (TCP) and serves its API on P+100+I; the
# gateway listens on P, serves its node API on P+100 and HTTP on P+200.
# Default: 5 nodes, P = 4100, the embedded store (no Redis).
# Running it again while the network is up only prints the table.
# Variables: IPSR_TESTNET_RUN (run folder, default
#   ${XDG_STATE_HOME:-~/.local/state}/ipsr/testnet),
# IPSR_TESTNET_PROFILE (cargo profile, default release), IPSR_TESTNET_BIN
# (a folder with the three binaries already built: no build).
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

n=5 base=4100 redis=""
while (($#)); do
    case "$1" in
        -n) n="${2:?-n needs a number}"; shift 2 ;;
        --redis) redis="${2:?--redis needs a URL}"; shift 2 ;;
        --base-port) base="${2:?--base-port needs a port}"; shift 2 ;;
        -h | --help) usage ;;
        *) printf 'error: unknown argument %s\n' "$1" >&2; usage 2 ;;
    esac
done
[[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 50)) || die "-n must be 1..50"
[[ "$base" =~ ^[0-9]+$ ]] && ((base >= 1024 && base + 200 + n < 65536)) || die "bad --base-port"

print_table() {
    load_env
    printf '%-8s %-54s %-32s %s\n' member "peer id" address api
    local m dir
    for m in $(members); do
        dir="$(member_dir "$m")"
        local addr api
        addr="$(cat "$dir/addr" 2>/dev/null || echo -)"
        api="$(cat "$dir/api" 2>/dev/null || echo -)"
        printf '%-8s %-54s %-32s %s\n' "$m" "${addr##*/p2p/}" "${addr%/p2p/*}" "$api"
    done
    echo "gateway: $(cat "$RUN_DIR/gateway/http")"
}

if [[ -f "$RUN_DIR/env" ]]; then
    load_env
    up=0
    for m in $(members); do is_running "$(member_dir "$m")" && up=$((up + 1)); done
    if ((up > 0)); then
        say "a testnet is already running in $RUN_DIR ($up of $((N + 1)) members up); testnet/down.sh stops it"
        print_table
        exit 0
    fi
fi

if [[ -n "${IPSR_TESTNET_BIN:-}" ]]; then
    bin="$IPSR_TESTNET_BIN"
    for b in ipsr-node ipsr-gateway ipsr-cli; do [[ -x "$bin/$b" ]] || die "no $bin/$b"; done
else
    profile="${IPSR_TESTNET_PROFILE:-release}"
    say "building ipsr-node, ipsr-gateway and ipsr-cli (cargo profile $profile)"
    (cd "$REPO_DIR" && cargo build --locked --profile "$profile" -p ipsr-node -p ipsr-gateway -p ipsr-cli)
    target="${CARGO_TARGET_DIR:-$REPO_DIR/target}"
    [[ "$target" = /* ]] || target="$REPO_DIR/$target"
    case "$profile" in dev | test) bin="$target/debug" ;; *) bin="$target/$profile" ;; esac
fi

mkdir -p "$RUN_DIR"
cat >"$RUN_DIR/env" <<ENV
N=$n
BASE=$base
REDIS=${redis@Q}
BIN=${bin@Q}
ENV
load_env

# Writes member $1's command line and starts it.
start() {
    local m="$1" dir port api boot=() args
    dir="$(member_dir "$m")"
    mkdir -p "$dir/data"
    if [[ "$m" == gateway ]]; then port=$base; api=$((base + 100)); else port=$((base + m)); api=$((base + 100 + m)); fi
    shift
    for b in "$@"; do boot+=(--bootstrap "$(cat "$(member_dir "$b")/addr")"); done
    if [[ "$m" == gateway ]]; then
        args=("$BIN/ipsr-gateway" --http "127.0.0.1:$((base + 200))" --rate-limit 0)
        [[ -n "$REDIS" ]] && args+=(--redis "$REDIS" --redis-prefix "testnet:$base:")
    else
        args=("$BIN/ipsr-node" run)
    fi
    args+=(--data-dir "$dir/data" --listen "/ip4/127.0.0.1/tcp/$port" --api "127.0.0.1:$api" "${boot[@]}")
    printf '%s\n' "${args[@]}" >"$dir/cmd"
    rm -f "$dir/log" "$dir/log.old"
    launch "$dir"
    log_value "$dir" "listening on: " >"$dir/addr"
    log_value "$dir" "api: " >"$dir/api"
    [[ "$m" == gateway ]] && log_value "$dir" "gateway: " | cut -d' ' -f1 >"$dir/http"
    return 0
}

say "starting $n nodes and a gateway in $RUN_DIR"
for ((i = 1; i <= n; i++)); do
    boot=()
    ((i > 1)) && boot+=($((i - 1)))
    ((i > 2 && i / 2 != i - 1)) && boot+=($((i / 2)))
    start "$i" "${boot[@]}"
done
if ((n > 1)); then start gateway 1 "$n"; else start gateway 1; fi

say "waiting until every member has peers and DHT peers"
for m in $(members); do
    dir="$(member_dir "$m")"
    deadline=$((SECONDS + WAIT))
    while :; do
        status="$(curl -fsS --max-time 5 "$(cat "$dir/api")/v1/status" 2>/dev/null || true)"
        peers="$(json_field peers <<<"$status")"
        dht="$(json_field dht_peers <<<"$status")"
        if [[ -n "$peers" && -n "$dht" ]] && ((peers >= 1 && dht >= 1)); then break; fi
        ((SECONDS < deadline)) || die "member $m has no peers after ${WAIT}s; see $dir/log"
        sleep 0.2
    done
done
print_table
