#!/usr/bin/env bash
# Where the CPU of a push goes: CPU time per request of the bare axum reference and of
# pushmon under the same wrk load, measured side by side, and pushmon's split by
# thread (the async worker, the store's writer, fjall's background workers).
#
#   scripts/bench-cpu.sh [MONITORS=10000] [DURATION=8] [CONNECTIONS=64]
#
# CPU time comes from /proc (utime + stime of the server, of each of its threads, and
# of the whole machine for "everything else", which is mostly wrk). On two cores the
# machine is close to saturated in both runs, so the per-request figures, not the
# req/s, say what pushmon costs beyond the HTTP floor. Group-commit figures come from
# pushmon's own histograms over the measured window.
#
# Environment: WARMUP (2), SKIP_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-10000}}"
DURATION="${2:-${DURATION:-8}}"
CONNECTIONS="${3:-${CONNECTIONS:-64}}"
WARMUP="${WARMUP:-2}"

bench_init
ensure_tools
ensure_wrk
build_release reference pushmon
work=""
bench_tempdir work

ticks_per_second="$(getconf CLK_TCK)"
machine_busy() { awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat; }
process_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# thread_ticks PID: "name ticks" per thread name (threads of one name summed).
thread_ticks() {
    local task
    for task in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(tr ' ' _ <"$task/comm")" "$(awk '{print $14+$15}' "$task/stat")"
    done | awk '{sum[$1] += $2} END {for (name in sum) print name, sum[name]}' | sort
}
store_counters() {
    curl -s --max-time 5 "$SERVER_URL/metrics" \
        | awk '/^pushmon_store_(commit_duration_seconds|batch_events)_(sum|count) / {print $1, $2}' | sort
}

# measure NAME PID TOKENS: warm up, then one measured wrk run; prints a summary line.
measure() {
    local name="$1" pid="$2" tokens="$3"
    if (( WARMUP > 0 )); then
        run_wrk "$SERVER_URL" "$tokens" "$CONNECTIONS" "$WARMUP" >/dev/null
    fi
    local server0 busy0 server1 busy1 result
    thread_ticks "$pid" >"$work/$name.threads0"
    server0="$(process_ticks "$pid")"; busy0="$(machine_busy)"
    result="$(run_wrk "$SERVER_URL" "$tokens" "$CONNECTIONS" "$DURATION")"
    server1="$(process_ticks "$pid")"; busy1="$(machine_busy)"
    thread_ticks "$pid" >"$work/$name.threads1"
    assert_alive "$pid"
    local rps; rps="$(field rps "$result")"
    awk -v name="$name" -v rps="$rps" -v server=$(( server1 - server0 )) \
        -v busy=$(( busy1 - busy0 )) -v hz="$ticks_per_second" -v seconds="$DURATION" 'BEGIN {
        s = server / hz / seconds; o = (busy - server) / hz / seconds
        printf "%-16s %9d req/s   server %.2f cores = %5.1f us/request   everything else %.2f cores = %5.1f us/request\n",
            name, rps, s, s / rps * 1e6, o, o / rps * 1e6 }' >>"$work/summary.txt"
    join "$work/$name.threads0" "$work/$name.threads1" \
        | awk -v rps="$rps" -v hz="$ticks_per_second" -v seconds="$DURATION" '{
            c = ($3 - $2) / hz / seconds
            if (c >= 0.005) printf "    thread %-18s %.2f cores = %5.1f us/request\n", $1, c, c / rps * 1e6 }' \
        >>"$work/summary.txt"
}

fake_tokens "$MONITORS" "$work/reference-tokens.txt"
start_reference "$work/reference.log"
wait_ready "$SERVER_URL" "$SERVER_PID" 30
measure reference-bare "$SERVER_PID" "$work/reference-tokens.txt"
stop_server "$SERVER_PID" TERM 10

start_pushmon "$work/data"
wait_ready "$SERVER_URL" "$SERVER_PID"
log "seeding $MONITORS monitors"
seed "$MONITORS" "$work/tokens.txt" >/dev/null || die "seeding failed"
before="$(store_counters)"
measure pushmon "$SERVER_PID" "$work/tokens.txt"
after="$(store_counters)"
stop_server "$SERVER_PID" TERM

echo
echo "===== bench-cpu summary ($(nproc) cores, $MONITORS monitors, $CONNECTIONS connections, ${DURATION}s) ====="
cat "$work/summary.txt"
join <(printf '%s\n' "$before") <(printf '%s\n' "$after") | awk '
    { delta[$1] = $3 - $2 }
    END {
        commits = delta["pushmon_store_commit_duration_seconds_count"]
        if (commits > 0)
            printf "pushmon group commits: %d, %.1f events each (includes the warm-up), %.0f us each on average\n",
                commits, delta["pushmon_store_batch_events_sum"] / commits,
                delta["pushmon_store_commit_duration_seconds_sum"] / commits * 1e6 }'
echo "================================"
