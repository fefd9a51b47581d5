#!/usr/bin/env bash
# Disk use under sustained load: with the history limits on, the store must level off
# instead of growing with every heartbeat.
#
#   scripts/soak-disk.sh [MONITORS=1000] [MINUTES=10] [CONNECTIONS=16]
#
# Starts pushmon (release) with --history-max-heartbeats KEEP (default 100) and a
# SWEEP-second sweep (default 30), seeds MONITORS monitors, then drives wrk against
# them for MINUTES minutes in one-minute rounds. After each round it prints the
# heartbeats acknowledged so far, the store's size on disk (du), the heartbeats pruned
# (pushmon_history_pruned_total) and the resident memory. At the end it stops the
# server with SIGTERM, runs `pushmon check` (snapshots equal a replay of the pruned
# log) and prints the table. Bounded in time, 127.0.0.1 only, stops by itself.
#
# Environment: KEEP (100), SWEEP (30), SKIP_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-1000}}"
MINUTES="${2:-${MINUTES:-10}}"
CONNECTIONS="${3:-${CONNECTIONS:-16}}"
KEEP="${KEEP:-100}"
SWEEP="${SWEEP:-30}"

bench_init
ensure_tools
ensure_wrk
build_release pushmon
work=""
bench_tempdir work

start_pushmon "$work/data" "" --history-max-heartbeats "$KEEP" --history-sweep-seconds "$SWEEP"
wait_ready "$SERVER_URL" "$SERVER_PID"
pid="$SERVER_PID"
log "seeding $MONITORS monitors"
seed "$MONITORS" "$work/tokens.txt" >/dev/null || die "seeding failed"

metric() {
    curl -s --max-time 30 "$SERVER_URL/metrics" | awk -v name="$1" '$1 == name { print $2 }'
}

rows=()
total=0
for (( minute = 1; minute <= MINUTES; minute++ )); do
    r="$(run_wrk "$SERVER_URL" "$work/tokens.txt" "$CONNECTIONS" 60)"
    assert_alive "$pid"
    total=$(( total + $(field requests "$r") - $(field non2xx "$r") ))
    disk_kib="$(du -sk "$work/data" | cut -f1)"
    pruned="$(metric pushmon_history_pruned_total)"
    rows+=("$(printf '%6d %14d %10s %12d %14s %9d' "$minute" "$total" "$(field rps "$r")" \
        "$(( disk_kib / 1024 ))" "${pruned%.*}" "$(( $(rss_kib "$pid") / 1024 ))")")
    log "minute $minute: ${rows[-1]}"
done

stop_server "$pid" TERM
check_out="$("$PUSHMON_BIN" check --data-dir "$work/data" 2>&1)" && check_rc=0 || check_rc=$?
final_kib="$(du -sk "$work/data" | cut -f1)"

echo
echo "===== soak-disk summary ====="
echo "MONITORS=$MONITORS MINUTES=$MINUTES CONNECTIONS=$CONNECTIONS history: $KEEP heartbeats per monitor, sweep every ${SWEEP}s, $(nproc) cores"
printf '%6s %14s %10s %12s %14s %9s\n' minute acknowledged 'req/s' 'disk MiB' 'pruned' 'RSS MiB'
printf '%s\n' "${rows[@]}"
echo "after SIGTERM (exit $STOP_RC): disk $(( final_kib / 1024 )) MiB; history bound: $MONITORS x $KEEP heartbeats"
echo "pushmon check: exit $check_rc: $(tail -n1 <<<"$check_out")"
echo "============================="
