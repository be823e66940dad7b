#!/usr/bin/env bash
# Prints each member of the running testnet: up or down, connected peers,
# DHT peers, records held and blocks stored.
#
#   testnet/status.sh
source "$(dirname "$0")/lib.sh"
load_env
printf '%-8s %-5s %6s %6s %8s %8s  %s\n' member state peers dht records blocks api
for m in $(members); do
    dir="$(member_dir "$m")"
    api="$(cat "$dir/api" 2>/dev/null || echo -)"
    if ! is_running "$dir"; then
        printf '%-8s %-5s %6s %6s %8s %8s  %s\n' "$m" down - - - - "$api"
        continue
    fi
    status="$(curl -fsS --max-time 5 "$api/v1/status" 2>/dev/null || true)"
    metrics="$(curl -fsS --max-time 5 "$api/metrics" 2>/dev/null || true)"
    blocks="$(sed -n 's/^ipsr_blockstore_blocks \([0-9]*\).*/\1/p' <<<"$metrics" | head -n1)"
    printf '%-8s %-5s %6s %6s %8s %8s  %s\n' "$m" up \
        "$(json_field peers <<<"$status")" "$(json_field dht_peers <<<"$status")" \
        "$(json_field records <<<"$status")" "${blocks:--}" "$api"
done
echo "gateway: $(cat "$RUN_DIR/gateway/http" 2>/dev/null || echo -)"
