#!/usr/bin/env bash
# /metrics scrape time and size with many monitors, and what a scrape does to
# ingestion running at the same time.
#
#   scripts/bench-scrape.sh [MONITORS=100000]
#
# Seeds MONITORS monitors with one heartbeat each (so every per-monitor family has a
# series per monitor), then times SCRAPES scrapes (default 10) with curl and reports
# the median and the size. Then it runs wrk on the push ingress for DURATION seconds
# (default 10) twice, once alone and once while scraping every second, and prints
# both rates. Finally it repeats the scrape with --no-monitor-metrics.
#
# Environment: SCRAPES (10), DURATION (10), SKIP_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-100000}}"
SCRAPES="${SCRAPES:-10}"
DURATION="${DURATION:-10}"

bench_init
ensure_tools
ensure_wrk
build_release pushmon
work=""
bench_tempdir work

time_scrapes() {
    local url="$1" times=()
    for _ in $(seq "$SCRAPES"); do
        times+=("$(curl -s -o "$work/metrics.txt" -w '%{time_total}' "$url/metrics")")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'
}

start_pushmon "$work/data"
wait_ready "$SERVER_URL" "$SERVER_PID"
pid="$SERVER_PID"
log "seeding $MONITORS monitors with one heartbeat each"
seed "$MONITORS" "$work/tokens.txt" --pushes 1 >&2 || die "seeding failed"
assert_alive "$pid"

median="$(time_scrapes "$SERVER_URL")"
size_bytes="$(stat -c %s "$work/metrics.txt")"
series="$(grep -vc '^#' "$work/metrics.txt")"
log "scrape median ${median}s, ${size_bytes} bytes, ${series} series"

alone="$(run_wrk "$SERVER_URL" "$work/tokens.txt" 64 "$DURATION")"
( end=$(( $(now_ms) + DURATION * 1000 + 2000 ))
  while (( $(now_ms) < end )); do curl -s -o /dev/null "$SERVER_URL/metrics"; sleep 1; done ) &
scraper=$!
_BENCH_PIDS+=("$scraper")
with_scrapes="$(run_wrk "$SERVER_URL" "$work/tokens.txt" 64 "$DURATION")"
wait "$scraper" 2>/dev/null || true
stop_server "$pid"

start_pushmon "$work/data" "" --no-monitor-metrics
wait_ready "$SERVER_URL" "$SERVER_PID" 120
off_median="$(time_scrapes "$SERVER_URL")"
off_size="$(stat -c %s "$work/metrics.txt")"
stop_server "$SERVER_PID"

cat <<SUMMARY

== scrape with $MONITORS monitors ($(nproc) cores)
per-monitor series on:   median ${median} s over $SCRAPES scrapes, ${size_bytes} bytes, ${series} series
per-monitor series off:  median ${off_median} s, ${off_size} bytes
ingestion alone:         $(field rps "$alone") req/s, p99 $(field p99_ms "$alone") ms
ingestion, scrape/1 s:   $(field rps "$with_scrapes") req/s, p99 $(field p99_ms "$with_scrapes") ms
SUMMARY
