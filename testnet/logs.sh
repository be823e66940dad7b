#!/usr/bin/env bash
# Shows the log of member I (a node number or "gateway"); -f follows it.
#
#   testnet/logs.sh I [-f]
source "$(dirname "$0")/lib.sh"
load_env
dir="$(member_dir "${1:?usage: testnet/logs.sh I [-f]}")"
if [[ "${2:-}" == -f ]]; then exec tail -n 100 -F "$dir/log"; fi
cat "$dir/log.old" "$dir/log" 2>/dev/null
