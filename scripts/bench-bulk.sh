#!/usr/bin/env bash
# Bulk ingestion throughput: heartbeats per second through POST /api/push with ITEMS
# heartbeats a request (100 by default), as a ratio to the bare axum reference's
# requests per second in the same run (single pushes, scripts/push.lua).
#
#   scripts/bench-bulk.sh [MONITORS=10000] [DURATION=15] [CONNECTIONS=64]
#
# For each server a WARMUP-second wrk run (not reported), then CONNECTIONS and then
# LOW_CONNECTIONS (default 8) keep-alive connections for DURATION seconds each. The
# reference answers single pushes (its requests per second is the yardstick);
# pushmon gets bulk requests (scripts/bulk.lua), each item for another of MONITORS
# monitors seeded through the API. Heartbeats are counted by the server
# (pushmon_heartbeats_total before and after each run), not assumed from the
# requests, so a refused item does not count. Everything targets 127.0.0.1, is
# bounded in time and is stopped on exit.
#
# Environment: ITEMS (100), WARMUP (2), LOW_CONNECTIONS (8), SKIP_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-10000}}"
DURATION="${2:-${DURATION:-15}}"
CONNECTIONS="${3:-${CONNECTIONS:-64}}"
LOW_CONNECTIONS="${LOW_CONNECTIONS:-8}"
WARMUP="${WARMUP:-2}"
ITEMS="${ITEMS:-100}"

bench_init
ensure_tools
ensure_wrk
build_release reference pushmon
work=""
bench_tempdir work

# run_bulk URL TOKENS CONNECTIONS DURATION: wrk with bulk.lua; the RESULT line.
run_bulk() {
    local url="$1" tokens="$2" connections="$3" duration="$4"
    local threads=2
    (( connections < threads )) && threads="$connections"
    local out
    out="$(timeout $(( duration + 60 )) wrk -t"$threads" -c"$connections" -d"${duration}s" \
        --timeout 10s -s "$SCRIPTS_DIR/bulk.lua" "$url" -- "$tokens" "$threads" "$ITEMS")" \
        || die "wrk failed or timed out against $url"
    printf '%s\n' "$out" | sed 's/^/    wrk| /' >&2
    printf '%s\n' "$out" | grep '^RESULT ' | tail -n1
}

# heartbeats_total URL: pushmon_heartbeats_total over both statuses.
heartbeats_total() {
    curl -s --max-time 10 "$1/metrics" \
        | awk '/^pushmon_heartbeats_total\{/ {sum += $2} END {printf "%.0f\n", sum}'
}

declare -A result=()

# --- reference: single pushes -------------------------------------------------------
fake_tokens "$MONITORS" "$work/reference-tokens.txt"
start_reference "$work/reference-bare.log"
wait_ready "$SERVER_URL" "$SERVER_PID" 30
if (( WARMUP > 0 )); then
    run_wrk "$SERVER_URL" "$work/reference-tokens.txt" "$CONNECTIONS" "$WARMUP" >/dev/null
fi
log "reference-bare: ${CONNECTIONS} connections, ${DURATION}s"
result[ref,hi]="$(run_wrk "$SERVER_URL" "$work/reference-tokens.txt" "$CONNECTIONS" "$DURATION")"
log "reference-bare: ${LOW_CONNECTIONS} connections, ${DURATION}s"
result[ref,lo]="$(run_wrk "$SERVER_URL" "$work/reference-tokens.txt" "$LOW_CONNECTIONS" "$DURATION")"
stop_server "$SERVER_PID" TERM 10

# --- pushmon: bulk pushes -----------------------------------------------------------
start_pushmon "$work/data"
wait_ready "$SERVER_URL" "$SERVER_PID"
pushmon_pid="$SERVER_PID"
pushmon_log="$SERVER_LOG"
log "seeding $MONITORS monitors"
seed_out="$(seed "$MONITORS" "$work/tokens.txt")" || die "seeding failed: $seed_out"
printf '%s\n' "$seed_out" >&2

first_token="$(head -n1 "$work/tokens.txt")"
sanity="$(curl -s --max-time 5 -H 'Content-Type: application/json' \
    --data "[{\"token\":\"$first_token\",\"msg\":\"sanity\"}]" "$SERVER_URL/api/push" || true)"
log "sanity bulk push: $sanity"
[[ "$sanity" == *'"accepted":1,'* ]] || die "unexpected answer to a bulk push: $sanity"

if (( WARMUP > 0 )); then
    run_bulk "$SERVER_URL" "$work/tokens.txt" "$CONNECTIONS" "$WARMUP" >/dev/null
fi
for which in hi lo; do
    conns="$CONNECTIONS"; [[ "$which" == lo ]] && conns="$LOW_CONNECTIONS"
    log "pushmon bulk: ${conns} connections, ${DURATION}s, ${ITEMS} items a request"
    before="$(heartbeats_total "$SERVER_URL")"
    result[bulk,$which]="$(run_bulk "$SERVER_URL" "$work/tokens.txt" "$conns" "$DURATION")"
    after="$(heartbeats_total "$SERVER_URL")"
    result[beats,$which]=$(( after - before ))
    assert_alive "$pushmon_pid"
done

stop_server "$pushmon_pid" TERM
log_errors="$(grep -cE 'panicked|ERROR' "$pushmon_log" || true)"

# --- summary ------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "NA" }'; }
per_second() { awk -v n="$1" -v d="$DURATION" 'BEGIN { printf "%.0f", n / d }'; }

echo
echo "===== bench-bulk summary ====="
echo "MONITORS=$MONITORS DURATION=${DURATION}s ITEMS=$ITEMS wrk -t2 (warm-up ${WARMUP}s), $(nproc) cores"
printf '%-8s %6s %14s %12s %14s %9s %9s %8s\n' conns '' 'ref req/s' 'bulk req/s' \
    'heartbeats/s' 'ratio' 'p99 ms' 'non-2xx'
for which in hi lo; do
    conns="$CONNECTIONS"; [[ "$which" == lo ]] && conns="$LOW_CONNECTIONS"
    ref_rps="$(field rps "${result[ref,$which]}")"
    beats_per_second="$(per_second "${result[beats,$which]}")"
    printf '%-8s %6s %14s %12s %14s %9s %9s %8s\n' "$conns" '' "$ref_rps" \
        "$(field rps "${result[bulk,$which]}")" "$beats_per_second" \
        "$(ratio "$beats_per_second" "$ref_rps")" "$(field p99_ms "${result[bulk,$which]}")" \
        "$(field non2xx "${result[bulk,$which]}")"
done
echo "ratio: pushmon heartbeats/s through bulk requests of $ITEMS over the bare reference's single-push req/s (target >= 3)"
echo "pushmon log lines with ERROR or panicked: $log_errors"
echo "=============================="
