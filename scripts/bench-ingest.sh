#!/usr/bin/env bash
# Push ingestion throughput and latency: pushmon against a bare axum reference.
#
#   scripts/bench-ingest.sh [MONITORS=10000] [DURATION=15] [CONNECTIONS=64]
#
# For each server: a WARMUP-second wrk run (not reported), then wrk -t2 with
# CONNECTIONS keep-alive connections for DURATION seconds, then the same with
# LOW_CONNECTIONS (default 8), a lighter load whose p99 says more about the
# per-request path than a saturated one. Requests are POST /api/push/{token}?status=up&msg=x
# rotating over MONITORS tokens (scripts/push.lua), so each hits a different monitor.
#
# Servers: the bare reference (examples/reference_server.rs), the forwarding reference
# (--mpsc; WITH_MPSC=0 skips it), then pushmon with MONITORS monitors seeded through
# the API. Everything targets 127.0.0.1, is bounded in time and is stopped on exit.
#
# Environment: WARMUP (2), LOW_CONNECTIONS (8), WITH_MPSC (1), SKIP_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-10000}}"
DURATION="${2:-${DURATION:-15}}"
CONNECTIONS="${3:-${CONNECTIONS:-64}}"
LOW_CONNECTIONS="${LOW_CONNECTIONS:-8}"
WARMUP="${WARMUP:-2}"
WITH_MPSC="${WITH_MPSC:-1}"

bench_init
ensure_tools
ensure_wrk
build_release reference pushmon
work=""
bench_tempdir work

declare -A result=()
servers=()

# measure NAME URL TOKENS_FILE: warm up, then one run at each connection count.
measure() {
    local name="$1" url="$2" tokens="$3"
    servers+=("$name")
    if (( WARMUP > 0 )); then
        log "$name: warm-up ${WARMUP}s"
        run_wrk "$url" "$tokens" "$CONNECTIONS" "$WARMUP" >/dev/null
    fi
    log "$name: ${CONNECTIONS} connections, ${DURATION}s"
    result[$name,hi]="$(run_wrk "$url" "$tokens" "$CONNECTIONS" "$DURATION")"
    assert_alive "$SERVER_PID"
    log "$name: ${LOW_CONNECTIONS} connections, ${DURATION}s"
    result[$name,lo]="$(run_wrk "$url" "$tokens" "$LOW_CONNECTIONS" "$DURATION")"
    assert_alive "$SERVER_PID"
}

# --- references -------------------------------------------------------------------
fake_tokens "$MONITORS" "$work/reference-tokens.txt"

start_reference "$work/reference-bare.log"
wait_ready "$SERVER_URL" "$SERVER_PID" 30
measure reference-bare "$SERVER_URL" "$work/reference-tokens.txt"
stop_server "$SERVER_PID" TERM 10

if [[ "$WITH_MPSC" == 1 ]]; then
    start_reference "$work/reference-mpsc.log" --mpsc
    wait_ready "$SERVER_URL" "$SERVER_PID" 30
    measure reference-mpsc "$SERVER_URL" "$work/reference-tokens.txt"
    stop_server "$SERVER_PID" TERM 10
fi

# --- pushmon ----------------------------------------------------------------------
start_pushmon "$work/data"
wait_ready "$SERVER_URL" "$SERVER_PID"
pushmon_pid="$SERVER_PID"
pushmon_log="$SERVER_LOG"

log "seeding $MONITORS monitors"
seed_out="$(seed "$MONITORS" "$work/tokens.txt")" || die "seeding failed: $seed_out"
printf '%s\n' "$seed_out" >&2

first_token="$(head -n1 "$work/tokens.txt")"
sanity="$(curl -s --max-time 5 -X POST -w ' %{http_code}' \
    "$SERVER_URL/api/push/$first_token?status=up&msg=sanity" || true)"
log "sanity push: $sanity"
[[ "${sanity// /}" == *'"ok":true}200' ]] || log "warning: unexpected answer to a push: $sanity"

rss_before_load="$(rss_kib "$pushmon_pid")"
measure pushmon "$SERVER_URL" "$work/tokens.txt"
rss_after_load="$(rss_kib "$pushmon_pid")"
hwm="$(hwm_kib "$pushmon_pid")"

stop_server "$pushmon_pid" TERM
pushmon_exit="$STOP_RC"
pushmon_stop_ms="$STOP_MS"
log_errors="$(grep -cE 'panicked|ERROR' "$pushmon_log" || true)"
log_warnings="$(grep -cE 'WARN' "$pushmon_log" || true)"

# --- summary ----------------------------------------------------------------------
row() {
    local name="$1" which="$2" conns="$3" r="${result[$1,$2]}"
    local socket_errors
    socket_errors=$(( $(field connect_err "$r") + $(field read_err "$r") \
        + $(field write_err "$r") + $(field timeouts "$r") ))
    printf '%-16s %6s %9s %8s %8s %9s %8s %10s %8s\n' "$name" "$conns" \
        "$(field rps "$r")" "$(field p50_ms "$r")" "$(field p99_ms "$r")" \
        "$(field p999_ms "$r")" "$(field max_ms "$r")" "$(field non2xx "$r")" "$socket_errors"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "NA" }'; }

echo
echo "===== bench-ingest summary ====="
echo "MONITORS=$MONITORS DURATION=${DURATION}s wrk -t2 (warm-up ${WARMUP}s), POST /api/push/{token}?status=up&msg=x, $(nproc) cores"
printf '%-16s %6s %9s %8s %8s %9s %8s %10s %8s\n' server conns 'req/s' 'p50 ms' 'p99 ms' \
    'p99.9 ms' 'max ms' 'non-2xx' 'sock err'
for which in hi lo; do
    conns="$CONNECTIONS"; [[ "$which" == lo ]] && conns="$LOW_CONNECTIONS"
    for name in "${servers[@]}"; do row "$name" "$which" "$conns"; done
done
echo
bare_hi="$(field rps "${result[reference-bare,hi]}")"
push_hi="$(field rps "${result[pushmon,hi]}")"
bare_lo="$(field rps "${result[reference-bare,lo]}")"
push_lo="$(field rps "${result[pushmon,lo]}")"
echo "ratio pushmon/reference-bare req/s: $(ratio "$push_hi" "$bare_hi") @${CONNECTIONS} conns, $(ratio "$push_lo" "$bare_lo") @${LOW_CONNECTIONS} conns"
if [[ "$WITH_MPSC" == 1 ]]; then
    mpsc_hi="$(field rps "${result[reference-mpsc,hi]}")"
    echo "ratio pushmon/reference-mpsc req/s: $(ratio "$push_hi" "$mpsc_hi") @${CONNECTIONS} conns"
fi
echo "pushmon p99 @${LOW_CONNECTIONS} conns: $(field p99_ms "${result[pushmon,lo]}") ms (reference-bare $(field p99_ms "${result[reference-bare,lo]}") ms)"
echo "pushmon seeding: $(grep '^created' <<<"$seed_out")"
echo "pushmon RSS: $(( rss_before_load / 1024 )) MiB before load, $(( rss_after_load / 1024 )) MiB after, peak $(( hwm / 1024 )) MiB"
echo "pushmon SIGTERM: exit status $pushmon_exit after ${pushmon_stop_ms} ms; log lines with ERROR or panicked: $log_errors, with WARN: $log_warnings"
echo "================================"
