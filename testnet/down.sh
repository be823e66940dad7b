#!/usr/bin/env bash
# Stops exactly the processes the testnet started (by their saved pids:
# SIGTERM to all at once, then SIGKILL to any still running 10 s later). Keeps their data unless --clean, which
# also deletes the run folder.
#
#   testnet/down.sh [--clean]
source "$(dirname "$0")/lib.sh"
clean=0
case "${1:-}" in
    --clean) clean=1 ;;
    '') ;;
    *) die "usage: testnet/down.sh [--clean]" ;;
esac
if [[ -f "$RUN_DIR/env" ]]; then
    load_env
    dirs=()
    for m in $(members); do
        dir="$(member_dir "$m")"
        if is_running "$dir"; then
            say "stopping $m (pid $(cat "$dir/pid"))"
        fi
        dirs+=("$dir")
    done
    stop_members "${dirs[@]}"
fi
if ((clean)); then
    say "deleting $RUN_DIR"
    rm -rf "$RUN_DIR"
fi
