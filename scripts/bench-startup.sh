#!/usr/bin/env bash
# Start-up (replay) time on a populated store, after a clean stop and after a crash.
#
#   scripts/bench-startup.sh [MONITORS=100000]
#
# 1. Starts pushmon on an empty store, creates MONITORS monitors and sends PUSHES
#    heartbeats to each (default 1; 0 skips), stops it with SIGTERM.
# 2. Restarts it on the same data dir and measures the time from exec to the first
#    HTTP answer and to /readyz 200 (polled every 20 ms), checks that every monitor
#    is back (GET /api/monitors) and that pushes to the first and last token get 200.
# 3. Pushes with wrk for KILL_LOAD seconds (default 3), then SIGKILLs it, restarts,
#    and measures and checks the same again.
# Everything targets 127.0.0.1, is bounded in time and is stopped on exit.
#
# Environment: PUSHES (1), KILL_LOAD (3), SKIP_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-100000}}"
PUSHES="${PUSHES:-1}"
KILL_LOAD="${KILL_LOAD:-3}"

bench_init
ensure_tools
ensure_wrk
build_release pushmon
work=""
bench_tempdir work
data="$work/data"

# start_timed: start pushmon on $data and wait for readiness, polling every 20 ms.
# Sets LISTEN_MS (exec to first HTTP answer of any status) and READY_MS (exec to 200).
start_timed() {
    start_pushmon "$data"
    local start="$SERVER_START_MS" deadline=$(( SERVER_START_MS + READY_TIMEOUT * 1000 ))
    local status
    LISTEN_MS=""
    READY_MS=""
    while :; do
        status="$(http_status "$SERVER_URL/readyz")"
        if [[ "$status" != 000 && -z "$LISTEN_MS" ]]; then LISTEN_MS=$(( $(now_ms) - start )); fi
        if [[ "$status" == 200 ]]; then READY_MS=$(( $(now_ms) - start )); break; fi
        assert_alive "$SERVER_PID"
        (( $(now_ms) < deadline )) || die "not ready ${READY_TIMEOUT}s after start"
        sleep 0.02
    done
    log "listening after ${LISTEN_MS} ms, ready after ${READY_MS} ms"
}

# check_recovered: print "<monitors listed> monitors, first/last push <status>/<status>".
check_recovered() {
    local listed first last
    listed="$(timeout 180 curl -s --max-time 170 -H "Authorization: Bearer $ADMIN_TOKEN" \
        "$SERVER_URL/api/monitors" \
        | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["monitors"]))' 2>/dev/null \
        || echo NA)"
    first="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
        "$SERVER_URL/api/push/$(head -n1 "$work/tokens.txt")?msg=after-restart" || true)"
    last="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
        "$SERVER_URL/api/push/$(tail -n1 "$work/tokens.txt")?msg=after-restart" || true)"
    printf '%s monitors listed (expected %s), push to first/last token: %s/%s' \
        "$listed" "$MONITORS" "$first" "$last"
}

# --- populate -----------------------------------------------------------------------
start_pushmon "$data"
wait_ready "$SERVER_URL" "$SERVER_PID"
log "seeding $MONITORS monitors, $PUSHES heartbeats each"
seed_out="$(seed "$MONITORS" "$work/tokens.txt" --pushes "$PUSHES")" \
    || die "seeding failed: $seed_out"
printf '%s\n' "$seed_out" >&2
assert_alive "$SERVER_PID"
rss_populated="$(rss_kib "$SERVER_PID")"
stop_server "$SERVER_PID" TERM
term_rc="$STOP_RC"; term_stop_ms="$STOP_MS"
size_after_populate="$(du -sh "$data" | cut -f1)"

# --- restart after SIGTERM ----------------------------------------------------------
start_timed
term_listen_ms="$LISTEN_MS"; term_ready_ms="$READY_MS"
term_rss="$(rss_kib "$SERVER_PID")"
term_check="$(check_recovered)"
log "after SIGTERM: $term_check"

log "push load for ${KILL_LOAD}s, then SIGKILL"
kill_load="$(run_wrk "$SERVER_URL" "$work/tokens.txt" 64 "$KILL_LOAD")"
assert_alive "$SERVER_PID"
stop_server "$SERVER_PID" KILL
size_after_kill="$(du -sh "$data" | cut -f1)"

# --- restart after SIGKILL ----------------------------------------------------------
start_timed
kill_listen_ms="$LISTEN_MS"; kill_ready_ms="$READY_MS"
kill_rss="$(rss_kib "$SERVER_PID")"
kill_check="$(check_recovered)"
log "after SIGKILL: $kill_check"
stop_server "$SERVER_PID" TERM
final_rc="$STOP_RC"

echo
echo "===== bench-startup summary ====="
echo "MONITORS=$MONITORS, PUSHES=$PUSHES per monitor"
echo "populate: $(grep '^created' <<<"$seed_out")"
grep '^pushed' <<<"$seed_out" | sed 's/^/populate: /' || true
echo "populated RSS $(( rss_populated / 1024 )) MiB; SIGTERM exit status $term_rc after ${term_stop_ms} ms; data dir $size_after_populate"
echo "restart after SIGTERM: first answer ${term_listen_ms} ms, /readyz 200 after ${term_ready_ms} ms, RSS $(( term_rss / 1024 )) MiB"
echo "    $term_check"
echo "load before SIGKILL (${KILL_LOAD}s, 64 conns): rps=$(field rps "$kill_load") requests=$(field requests "$kill_load") non2xx=$(field non2xx "$kill_load"); data dir $size_after_kill"
echo "restart after SIGKILL: first answer ${kill_listen_ms} ms, /readyz 200 after ${kill_ready_ms} ms, RSS $(( kill_rss / 1024 )) MiB"
echo "    $kill_check"
echo "final SIGTERM exit status $final_rc"
echo "================================="
