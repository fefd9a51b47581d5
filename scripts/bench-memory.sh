#!/usr/bin/env bash
# Resident memory per monitor.
#
#   scripts/bench-memory.sh [MONITORS=100000]
#
# Starts pushmon on an empty store, records VmRSS idle, creates MONITORS monitors
# through the API, waits SETTLE seconds (default 5), records VmRSS again, then sends
# PUSHES heartbeats (default 1) to every monitor, one round at a time (PUSH=0 skips
# this), and records it once more. PUSHES=8 leaves up to 7 `up` heartbeats waiting in
# each quiet monitor's inbox if they were not merged (`QUIET_BACKLOG`).
# Prints (rss_after - rss_before) / MONITORS. Then it stops the server (SIGTERM),
# starts it again on the same store and records VmRSS once the monitors are rebuilt
# and SETTLE seconds have passed (RESTART=0 skips this): the memory a server holds
# for its monitors after a deploy, without what the creation traffic left behind.
# Everything is stopped on exit.
#
# Environment: SETTLE (5), PUSH (1), PUSHES (1), RESTART (1), SKIP_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-100000}}"
SETTLE="${SETTLE:-5}"
PUSH="${PUSH:-1}"
PUSHES="${PUSHES:-1}"
RESTART="${RESTART:-1}"
(( MONITORS > 0 )) || die "MONITORS must be positive"
(( PUSHES > 0 )) || die "PUSHES must be positive"

bench_init
ensure_tools
build_release pushmon idle_actors

# The reference, in the same run: bare idle ractor actors with a pending timer each.
log "reference: $MONITORS idle ractor actors"
reference_out="$("$REPO_DIR/target/release/examples/idle_actors" "$MONITORS")" || die "idle_actors failed"
reference_bytes="$(field bytes_per_actor "$reference_out")"
log "$reference_out"
work=""
bench_tempdir work

start_pushmon "$work/data"
wait_ready "$SERVER_URL" "$SERVER_PID"
pid="$SERVER_PID"
sleep "$SETTLE"
rss_idle="$(rss_kib "$pid")"
log "idle RSS ${rss_idle} KiB"

log "seeding $MONITORS monitors"
seed_out="$(seed "$MONITORS" "$work/tokens.txt")" || die "seeding failed: $seed_out"
printf '%s\n' "$seed_out" >&2
assert_alive "$pid"
hwm_seed="$(hwm_kib "$pid")"
sleep "$SETTLE"
rss_seeded="$(rss_kib "$pid")"
log "seeded RSS ${rss_seeded} KiB"

rss_pushed=""
if [[ "$PUSH" == 1 ]]; then
    log "$PUSHES heartbeat(s) to each monitor"
    push_out="$(python3 "$SCRIPTS_DIR/seed.py" --url "$SERVER_URL" --admin-token "$ADMIN_TOKEN" \
        --push-only "$work/tokens.txt" --pushes "$PUSHES")" || die "pushing failed: $push_out"
    log "$push_out"
    assert_alive "$pid"
    sleep "$SETTLE"
    rss_pushed="$(rss_kib "$pid")"
fi
hwm_end="$(hwm_kib "$pid")"
data_size="$(du -sh "$work/data" | cut -f1)"

stop_server "$pid" TERM
stop_rc="$STOP_RC"; stop_ms="$STOP_MS"

rss_restarted=""
if [[ "$RESTART" == 1 ]]; then
    log "restarting on the same store"
    start_pushmon "$work/data"
    wait_ready "$SERVER_URL" "$SERVER_PID" 300
    sleep "$SETTLE"
    rss_restarted="$(rss_kib "$SERVER_PID")"
    log "restarted RSS ${rss_restarted} KiB"
    stop_server "$SERVER_PID" TERM
fi

per_monitor() { awk -v a="$1" -v b="$2" -v n="$MONITORS" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }'; }

echo
echo "===== bench-memory summary ====="
echo "MONITORS=$MONITORS, settle ${SETTLE}s before each reading"
echo "seeding: $(grep '^created' <<<"$seed_out")"
echo "RSS idle, 0 monitors:        $rss_idle KiB ($(( rss_idle / 1024 )) MiB)"
echo "RSS after seeding:           $rss_seeded KiB ($(( rss_seeded / 1024 )) MiB), peak during seeding $(( hwm_seed / 1024 )) MiB"
echo "bytes per monitor (seeded):  $(per_monitor "$rss_seeded" "$rss_idle")"
if [[ -n "$rss_pushed" ]]; then
    echo "heartbeats: $push_out"
    echo "RSS after $PUSHES heartbeat(s) each: $rss_pushed KiB ($(( rss_pushed / 1024 )) MiB), peak $(( hwm_end / 1024 )) MiB"
    echo "bytes per monitor (pushed):  $(per_monitor "$rss_pushed" "$rss_idle")"
fi
echo "reference: bare idle ractor actor with a pending timer: $reference_bytes bytes each"
echo "pushmon above the reference (seeded): $(( $(per_monitor "$rss_seeded" "$rss_idle") - reference_bytes )) bytes per monitor"
if [[ -n "$rss_pushed" ]]; then
    echo "pushmon above the reference (pushed): $(( $(per_monitor "$rss_pushed" "$rss_idle") - reference_bytes )) bytes per monitor"
fi
if [[ -n "$rss_restarted" ]]; then
    echo "RSS after a restart:         $rss_restarted KiB ($(( rss_restarted / 1024 )) MiB)"
    echo "bytes per monitor (restart): $(per_monitor "$rss_restarted" "$rss_idle")"
    echo "pushmon above the reference (restart): $(( $(per_monitor "$rss_restarted" "$rss_idle") - reference_bytes )) bytes per monitor"
fi
echo "data dir size: $data_size; SIGTERM exit status $stop_rc after ${stop_ms} ms"
echo "================================"
