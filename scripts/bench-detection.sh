#!/usr/bin/env bash
# Detection lag: MONITORS monitors whose deadlines fall within a few seconds of each
# other, each alerting a webhook. Reports the delay from deadline to a durable `down`
# (the pushmon_detection_lag_seconds histogram) and from deadline to the webhook's
# arrival (measured by the receiver, examples/webhook_sink.rs), p50 and p99.
#
#   scripts/bench-detection.sh [MONITORS=100000]
#
# Monitors are created with timeout TIMEOUT (default 30 s, longer than creating them
# all takes), then get one heartbeat each, paced at PUSH_RATE a second (default
# 12500: 100k deadlines within 8 s of each other; 0 pushes as fast as loopback
# allows, which makes the burst as dense as the server is fast, so runs compare badly).
# Environment: TIMEOUT (30), PUSH_RATE (12500), DELIVERY_WAIT (180), SKIP_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-100000}}"
TIMEOUT="${TIMEOUT:-30}"
DELIVERY_WAIT="${DELIVERY_WAIT:-180}"
PUSH_RATE="${PUSH_RATE:-12500}"

bench_init
ensure_tools
build_release pushmon webhook_sink
work=""
bench_tempdir work

sink_port="$(free_port)"
"$REPO_DIR/target/release/examples/webhook_sink" --port "$sink_port" --out "$work/lags.txt" \
    --max-seconds $(( DELIVERY_WAIT + TIMEOUT + 900 )) &
_BENCH_PIDS+=("$!")

start_pushmon "$work/data" "" --no-monitor-metrics
wait_ready "$SERVER_URL" "$SERVER_PID"
pid="$SERVER_PID"
channel="$(curl -s -X POST "$SERVER_URL/api/channels" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -d "{\"kind\":\"webhook\",\"name\":\"sink\",\"url\":\"http://127.0.0.1:$sink_port/hook\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
log "seeding $MONITORS monitors (timeout ${TIMEOUT}s, one heartbeat each) alerting $channel"
seed_out="$(seed "$MONITORS" "$work/tokens.txt" --monitor-timeout "$TIMEOUT" --channel "$channel" --pushes 1 --push-rate "$PUSH_RATE")"
printf '%s\n' "$seed_out" >&2

down_count() {
    curl -s "$SERVER_URL/metrics" | awk '/^pushmon_monitors\{status="down"\}/ {print $2}'
}
deadline=$(( $(now_ms) + (TIMEOUT + 120) * 1000 ))
while [[ "$(down_count)" != "$MONITORS" ]]; do
    (( $(now_ms) < deadline )) || die "only $(down_count) of $MONITORS monitors went down"
    sleep 2
done
log "all $MONITORS monitors are down"
curl -s "$SERVER_URL/metrics" > "$work/metrics.txt"

deadline=$(( $(now_ms) + DELIVERY_WAIT * 1000 ))
while (( $(wc -l < "$work/lags.txt") < MONITORS )); do
    (( $(now_ms) < deadline )) || { log "only $(wc -l < "$work/lags.txt") deliveries within ${DELIVERY_WAIT}s"; break; }
    sleep 2
done
assert_alive "$pid"
stop_server "$pid"

# histogram_quantile Q [NAME]: the upper bound of the bucket holding quantile Q of
# histogram NAME (default: the detection lag).
histogram_quantile() {
    awk -v q="$1" -v name="${2:-pushmon_detection_lag_seconds}_bucket" -F'[{}" ]+' '
        BEGIN { n = 0 }
        $1 == name { for (i = 1; i <= NF; i++) if ($i == "le=") le = $(i + 1);
            le_list[n] = le; count[n++] = $NF }
        END { total = count[n - 1]; for (i = 0; i < n; i++) if (count[i] >= q * total) { print le_list[i]; exit } }
    ' "$work/metrics.txt"
}
sorted_quantile() {
    sort -n "$work/lags.txt" | awk -v q="$1" '{ a[NR] = $1 } END { if (NR) print a[int(q * (NR - 1)) + 1]; else print "NA" }'
}

cat <<SUMMARY

===== bench-detection summary ($(nproc) cores) =====
monitors: $MONITORS, timeout ${TIMEOUT}s; $(grep '^pushed' <<<"$seed_out" || true)
deadline -> durable down:   p50 <= $(histogram_quantile 0.5) s, p99 <= $(histogram_quantile 0.99) s (histogram bucket bounds)
deadline -> webhook arrival: $(wc -l < "$work/lags.txt") of $MONITORS delivered; p50 $(sorted_quantile 0.5) ms, p99 $(sorted_quantile 0.99) ms, max $(sorted_quantile 1.0) ms
whole run: group commit p99 <= $(histogram_quantile 0.99 pushmon_store_commit_duration_seconds) s; append (queue + commit) p99 <= $(histogram_quantile 0.99 pushmon_store_append_duration_seconds) s
====================================================
SUMMARY
