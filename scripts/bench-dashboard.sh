#!/usr/bin/env bash
# The dashboard with many monitors: the list page's time to first byte (curl) and until
# its first rows show in Chromium, and push ingestion with the dashboard open and live
# (server-sent events connected) against without it, in the same run.
#
#   scripts/bench-dashboard.sh [MONITORS=10000] [DURATION=10] [CONNECTIONS=64]
#
# 1. Seeds MONITORS monitors through the API (scripts/seed.py), each with 3
#    heartbeats, and DOWN (default 50) of them down, so the list has problems first.
# 2. Signs in with curl and fetches pages LOADS (default 20) times each: the first
#    page `/`, a far page, a text search, `?status=down`; reports the median and the
#    worst time to first byte and to the last byte.
# 3. Headless Chromium (tests/browser's playwright-core with Debian's chromium) signs
#    in and loads `/` LOADS times: time to first byte, until the first row is
#    visible, and DOMContentLoaded.
# 4. wrk pushes (status=up, every monitor in turn, as bench-ingest.sh) for DURATION
#    seconds, four times: without the dashboard, with it (Chromium on `/` with its
#    live updates, plus SSE_CLIENTS (default 4) more `/live` streams), without, with.
#
# Environment: LOADS, DOWN, SSE_CLIENTS, SKIP_BUILD, KEEP_TMP (see lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-10000}}"
DURATION="${2:-${DURATION:-10}}"
CONNECTIONS="${3:-${CONNECTIONS:-64}}"
LOADS="${LOADS:-20}"
DOWN="${DOWN:-50}"
SSE_CLIENTS="${SSE_CLIENTS:-4}"

bench_init
ensure_tools
ensure_wrk
command -v node >/dev/null 2>&1 || die "node is required (scripts/test.sh installs it)"
[[ -f "$REPO_DIR/tests/browser/node_modules/playwright-core/package.json" ]] \
    || die "run npm ci in tests/browser first (scripts/test.sh does)"
build_release pushmon
work=""
bench_tempdir work

start_pushmon "$work/data"
wait_ready "$SERVER_URL" "$SERVER_PID"
pushmon_pid="$SERVER_PID"

log "seeding $MONITORS monitors, 3 heartbeats each"
seed_out="$(seed "$MONITORS" "$work/tokens.txt" --pushes 3)" || die "seeding failed: $seed_out"
printf '%s\n' "$seed_out" >&2
head -n "$DOWN" "$work/tokens.txt" | while read -r token; do
    curl -fsS -o /dev/null -X POST "$SERVER_URL/api/push/$token?status=down&msg=bench" \
        || die "a down push failed"
done
log "$DOWN monitors pushed down"

# --- curl: time to first byte ------------------------------------------------------
jar="$work/cookies.txt"
curl -fsS -o /dev/null -c "$jar" --data-urlencode "token=$ADMIN_TOKEN" "$SERVER_URL/login" \
    || die "cannot sign in"
far_page=$(( (MONITORS + 49) / 50 / 2 ))
declare -A page_result=()
pages=("/" "/?page=$far_page" "/?q=bench-12" "/?status=down")
for path in "${pages[@]}"; do
    : >"$work/times.txt"
    for _ in $(seq 1 "$LOADS"); do
        curl -fsS -o "$work/page.html" -b "$jar" -w '%{time_starttransfer} %{time_total}\n' \
            "$SERVER_URL$path" >>"$work/times.txt" || die "GET $path failed"
    done
    grep -q 'class="monitors"' "$work/page.html" || die "GET $path shows no table"
    rows="$(grep -c 'class="row ' "$work/page.html" || true)"
    page_result[$path]="$(python3 - "$work/times.txt" "$rows" <<'EOF'
import statistics, sys
ttfb, total = zip(*(map(float, line.split()) for line in open(sys.argv[1])))
ms = lambda s: f"{s * 1000:.1f}"
print(f"ttfb median {ms(statistics.median(ttfb))} ms, worst {ms(max(ttfb))} ms; "
      f"whole page median {ms(statistics.median(total))} ms; {sys.argv[2]} rows")
EOF
)"
    log "GET $path: ${page_result[$path]}"
done
page_bytes="$(curl -fsS -b "$jar" "$SERVER_URL/" | wc -c)"

# --- Chromium: until the first rows show ----------------------------------------------
log "Chromium: $LOADS loads of /"
browser_out="$(cd "$REPO_DIR/scripts" && node bench-dashboard.mjs load "$SERVER_URL" "$ADMIN_TOKEN" "$LOADS")" \
    || die "the browser run failed: $browser_out"
printf '%s\n' "$browser_out" | sed 's/^/    chromium| /' >&2
browser_summary="$(printf '%s\n' "$browser_out" | python3 -c '
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=([\d.]+)", line)) for line in sys.stdin if line.startswith("LOAD")]
rows = rows[1:] or rows  # the first load warms the browser up
def stat(key):
    values = [float(row[key]) for row in rows]
    return f"median {statistics.median(values):.0f} ms, worst {max(values):.0f} ms"
ttfb, visible, dom, shown = stat("ttfb_ms"), stat("rows_ms"), stat("dom_ms"), rows[0]["rows"]
print(f"time to first byte {ttfb}; first rows visible {visible}; "
      f"DOMContentLoaded {dom} ({len(rows)} loads, {shown} rows)")
')"
log "Chromium: $browser_summary"

# --- ingestion without and with the dashboard live ------------------------------------
declare -A ingest=()
hold_pids=()
with_dashboard() {
    : >"$work/hold.txt"
    (cd "$REPO_DIR/scripts" && node bench-dashboard.mjs hold "$SERVER_URL" "$ADMIN_TOKEN" \
        $(( DURATION + 8 )) >>"$work/hold.txt" 2>&1) &
    hold_pids=($!)
    for _ in $(seq 1 "$SSE_CLIENTS"); do
        curl -sN -b "$jar" --max-time $(( DURATION + 8 )) "$SERVER_URL/live" >>"$work/sse.txt" 2>/dev/null &
        hold_pids+=($!)
    done
    for _ in $(seq 1 100); do grep -q "HOLD open" "$work/hold.txt" && return 0; sleep 0.1; done
    die "the dashboard did not connect: $(cat "$work/hold.txt")"
}
without_dashboard() {
    local pid
    for pid in "${hold_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    hold_pids=()
}
log "warm-up 3s"
run_wrk "$SERVER_URL" "$work/tokens.txt" "$CONNECTIONS" 3 >/dev/null
for round in 1 2; do
    log "round $round: pushes without the dashboard, ${DURATION}s"
    ingest[without,$round]="$(run_wrk "$SERVER_URL" "$work/tokens.txt" "$CONNECTIONS" "$DURATION")"
    assert_alive "$pushmon_pid"
    log "round $round: pushes with the dashboard open and live, ${DURATION}s"
    with_dashboard
    ingest[with,$round]="$(run_wrk "$SERVER_URL" "$work/tokens.txt" "$CONNECTIONS" "$DURATION")"
    assert_alive "$pushmon_pid"
    without_dashboard
    grep '^HOLD live' "$work/hold.txt" | sed 's/^/    chromium| /' >&2
    grep -q '^HOLD live=1' "$work/hold.txt" || die "the dashboard's live updates were not connected"
done
rss="$(rss_kib "$pushmon_pid")"
stop_server "$pushmon_pid" TERM

echo
echo "===== bench-dashboard summary ====="
echo "MONITORS=$MONITORS ($DOWN down), $(nproc) cores, release build"
for path in "${pages[@]}"; do printf '%-22s %s\n' "GET $path" "${page_result[$path]}"; done
echo "list page size: $page_bytes bytes"
echo "chromium /: $browser_summary"
printf '%-28s %9s %8s %8s %8s\n' "pushes, ${CONNECTIONS} conns, ${DURATION}s" 'req/s' 'p50 ms' 'p99 ms' 'non-2xx'
for round in 1 2; do
    for which in without with; do
        r="${ingest[$which,$round]}"
        printf '%-28s %9s %8s %8s %8s\n' "round $round, $which dashboard" "$(field rps "$r")" \
            "$(field p50_ms "$r")" "$(field p99_ms "$r")" "$(field non2xx "$r")"
    done
done
echo "live: Chromium on / and $SSE_CLIENTS more /live streams during each 'with' run"
echo "pushmon RSS at the end: $(( rss / 1024 )) MiB"
echo "==================================="
