#!/usr/bin/env bash
# Kills member I of the testnet with SIGKILL (a crash, to test faults).
# I is a node number or "gateway". testnet/restart.sh I brings it back.
#
#   testnet/kill.sh I
source "$(dirname "$0")/lib.sh"
load_env
dir="$(member_dir "${1:?usage: testnet/kill.sh I}")"
is_running "$dir" || die "member $1 is not running"
say "kill -9 member $1 (pid $(cat "$dir/pid"))"
kill -KILL "$(cat "$dir/pid")"
rm -f "$dir/pid"
