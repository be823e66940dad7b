#!/usr/bin/env bash
# Restarts member I of the testnet (stopping it first if it runs) with the
# same command line, data dir and ports, and waits until its API answers.
#
#   testnet/restart.sh I
source "$(dirname "$0")/lib.sh"
load_env
m="${1:?usage: testnet/restart.sh I}"
dir="$(member_dir "$m")"
[[ -f "$dir/cmd" ]] || die "no member $m in this testnet"
stop_member "$dir"
say "starting member $m"
launch "$dir"
log_value "$dir" "api: " >/dev/null
deadline=$((SECONDS + WAIT))
until curl -fsS --max-time 2 "$(cat "$dir/api")/v1/status" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "member $m does not answer; see $dir/log"
    sleep 0.1
done
