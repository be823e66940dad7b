# Shared by the scripted checks (interop-helia.sh, browser-test.sh); sourced.
# The caller sets TMP (a temp dir), PIDS=() (processes to stop), OK=0 (set
# to 1 on success) and defines log() before sourcing this.

# Stops every pid in PIDS (SIGTERM, SIGKILL after 5 s), removes TMP on
# success unless KEEP_TMP=1, and keeps the exit status.
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ $OK == 1 && ${KEEP_TMP:-0} != 1 ]]; then
        rm -rf "$TMP"
    else
        log "logs kept in $TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for FILE REGEX SECONDS: wait until a line of FILE matches REGEX
wait_for() {
    local deadline=$((SECONDS + $3))
    until grep -qE "$2" "$1" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "timeout after $3 s waiting for /$2/ in $1"
            return 1
        fi
        sleep 0.1
    done
}
