#!/usr/bin/env bash
# /metrics at many monitors with two labels each: the scrape with
# `--metrics-labels team,env` (two more labels on every per-monitor series) against
# the same store without the flag, side by side in one run.
#
#   scripts/bench-metrics-labels.sh [MONITORS=100000]
#
# Seeds MONITORS monitors, each with the labels team (50 values) and env (3) and one
# heartbeat, then restarts the server ROUNDS times (default 3) alternately without
# and with the flag and times SCRAPES scrapes (default 10) after each start; prints
# the median of each side over all its scrapes, the sizes and the series counts.
# Each side starts from the same store the same way, so a restart's cost (an
# uncompacted store, cold caches) falls on both alike.
#
# Environment: SCRAPES (10), ROUNDS (3), SKIP_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-100000}}"
SCRAPES="${SCRAPES:-10}"
ROUNDS="${ROUNDS:-3}"

bench_init
ensure_tools
build_release pushmon
work=""
bench_tempdir work

# scrape_times URL OUT: one scrape time (seconds) a line, appended to OUT.
scrape_times() {
    local url="$1" out="$2"
    curl -s -o /dev/null "$url/metrics" # warm-up, not counted
    for _ in $(seq "$SCRAPES"); do
        curl -s -o "$work/metrics.txt" -w '%{time_total}\n' "$url/metrics" >>"$out"
    done
}

median() {
    sort -n "$1" | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'
}

start_pushmon "$work/data"
wait_ready "$SERVER_URL" "$SERVER_PID"
log "seeding $MONITORS monitors with two labels and one heartbeat each"
seed "$MONITORS" "$work/tokens.txt" --pushes 1 --two-labels >&2 || die "seeding failed"
assert_alive "$SERVER_PID"
stop_server "$SERVER_PID"

: >"$work/without.txt"
: >"$work/with.txt"
for round in $(seq "$ROUNDS"); do
    start_pushmon "$work/data"
    wait_ready "$SERVER_URL" "$SERVER_PID" 120
    scrape_times "$SERVER_URL" "$work/without.txt"
    without_size="$(stat -c %s "$work/metrics.txt")"
    without_series="$(grep -vc '^#' "$work/metrics.txt")"
    stop_server "$SERVER_PID"

    start_pushmon "$work/data" "" --metrics-labels team,env
    wait_ready "$SERVER_URL" "$SERVER_PID" 120
    scrape_times "$SERVER_URL" "$work/with.txt"
    with_size="$(stat -c %s "$work/metrics.txt")"
    with_series="$(grep -vc '^#' "$work/metrics.txt")"
    grep -q 'label_team="team-' "$work/metrics.txt" || die "no label_team in the exposition"
    stop_server "$SERVER_PID"
    log "round $round: without $(tail -n "$SCRAPES" "$work/without.txt" | sort -n | paste -sd' '), with $(tail -n "$SCRAPES" "$work/with.txt" | sort -n | paste -sd' ')"
done

cat <<SUMMARY

== /metrics with $MONITORS monitors of two labels each ($(nproc) cores, $ROUNDS rounds of $SCRAPES scrapes a side)
without --metrics-labels:       median $(median "$work/without.txt") s, ${without_size} bytes, ${without_series} series
with --metrics-labels team,env: median $(median "$work/with.txt") s, ${with_size} bytes, ${with_series} series
SUMMARY
