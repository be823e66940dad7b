# Shared by the testnet scripts: where things live and small helpers.
# Sourced, not run.
#
# Layout of the run folder ($IPSR_TESTNET_RUN, default
# ${XDG_STATE_HOME:-~/.local/state}/ipsr/testnet: outside the checkout, so a
# read-only one works):
#   env                  N, BASE, REDIS, BIN (written by up.sh)
#   node<I>/             I = 1..N, and gateway/ for the gateway
#     data/              the node's data dir (identity, store, blocks)
#     cmd                the command line, one argument per line
#     pid, log           process id and its output
#     addr, api          its libp2p address (with /p2p/) and API URL
#   gateway/http         the gateway's HTTP URL

set -euo pipefail

TESTNET_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$TESTNET_DIR/.." && pwd)"
RUN_DIR="${IPSR_TESTNET_RUN:-${XDG_STATE_HOME:-${HOME:?set HOME or IPSR_TESTNET_RUN}/.local/state}/ipsr/testnet}"
# How long to wait for any one thing, in seconds.
WAIT="${IPSR_TESTNET_WAIT:-60}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

load_env() {
    [[ -f "$RUN_DIR/env" ]] || die "no testnet in $RUN_DIR: start one with testnet/up.sh"
    # shellcheck source=/dev/null
    source "$RUN_DIR/env"
}

# The folder of member I: a number 1..N, or "gateway".
member_dir() {
    case "$1" in
        gateway | g | 0) echo "$RUN_DIR/gateway" ;;
        *[!0-9]* | '') die "not a node number: $1" ;;
        *) echo "$RUN_DIR/node$1" ;;
    esac
}

members() {
    local i
    for ((i = 1; i <= N; i++)); do echo "$i"; done
    echo gateway
}

is_running() {
    local dir="$1" pid
    [[ -f "$dir/pid" ]] || return 1
    pid="$(cat "$dir/pid")"
    kill -0 "$pid" 2>/dev/null || return 1
    # The pid must still be ours (not reused by another program).
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" == "$(head -n1 "$dir/cmd")"* ]]
}

# Starts member folder $1 from its saved command line; returns at once.
launch() {
    local dir="$1" cmd=()
    mapfile -t cmd <"$dir/cmd"
    : >"$dir/log.new"
    [[ -f "$dir/log" ]] && cat "$dir/log" >>"$dir/log.old" && rm -f "$dir/log"
    mv "$dir/log.new" "$dir/log"
    nohup "${cmd[@]}" >>"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
}

# Waits until line "$2..." appears in member $1's log since its start; prints the rest.
log_value() {
    local dir="$1" prefix="$2" deadline=$((SECONDS + WAIT)) line
    while ((SECONDS < deadline)); do
        line="$(grep -m1 "^$prefix" "$dir/log" 2>/dev/null || true)"
        if [[ -n "$line" ]]; then
            echo "${line#"$prefix"}"
            return 0
        fi
        is_running "$dir" || die "$(basename "$dir") exited; see $dir/log"
        sleep 0.1
    done
    die "$(basename "$dir") did not print '$prefix' within ${WAIT}s; see $dir/log"
}

# A field of a JSON object with a number or string value (enough for the
# flat answers of /v1/status; no jq needed).
json_field() {
    sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n1
}

# Stops member folder $1: SIGTERM, then SIGKILL after 10 s.
stop_member() {
    stop_members "$1"
}

# Stops the members whose folders are given, all at once: SIGTERM to each,
# then SIGKILL to those still running 10 s later.
stop_members() {
    local dir i pids=() dirs=()
    for dir in "$@"; do
        if is_running "$dir"; then
            pids+=("$(cat "$dir/pid")")
            dirs+=("$dir")
        else
            rm -f "$dir/pid"
        fi
    done
    ((${#pids[@]})) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "${pids[@]}" 2>/dev/null || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for dir in "${dirs[@]}"; do rm -f "$dir/pid"; done
}
