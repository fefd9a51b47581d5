#!/usr/bin/env bash
# Durable pushes per second through one pod, and through all three pods at once, of a
# 3-pod / 3-NATS cluster, against a single-node pushmon (its fjall store) in the same
# run.
#
#   scripts/bench-cluster.sh [MONITORS=1000] [DURATION=15] [CONNECTIONS=64]
#
# Starts three nats-server processes (JetStream, sync_interval: always, one cluster on
# 127.0.0.1), three `pushmon serve --cluster-nats` pods (--cluster-replicas 3,
# CLUSTER_SHARDS shards, default 64, over CLUSTER_STREAMS streams, default 4), seeds
# MONITORS monitors through pod 1, waits until pod 3 has the last one, then runs wrk
# (scripts/push.lua, as bench-ingest.sh) against pod 1: every 200 is a heartbeat
# acknowledged by its stream (a quorum of the three servers fsynced the record
# carrying it); then three wrk at once, one per pod, CONNECTIONS shared out among
# them. Then the same against a single-node pushmon. Reports each pod's appends,
# heartbeats per append and mean PubAck wait per append (its metrics), and a `top`
# sample of every process's CPU taken in the middle of each cluster run.
# Everything is on 127.0.0.1, bounded in time, and stopped on exit.
#
# Also, for each run, every process's CPU time per 1,000 acknowledged pushes (from
# /proc: what a CPU-bound machine's throughput follows).
#
# Environment: WARMUP (2), CLUSTER_SHARDS (64), CLUSTER_STREAMS (4), SKIP_BUILD,
# KEEP_TMP, NATS_SYNC_INTERVAL (always; anything else is an experiment on what the
# fsyncs cost, never a setting to run pushmon with).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-1000}}"
DURATION="${2:-${DURATION:-15}}"
CONNECTIONS="${3:-${CONNECTIONS:-64}}"
WARMUP="${WARMUP:-2}"
CLUSTER_SHARDS="${CLUSTER_SHARDS:-64}"
CLUSTER_STREAMS="${CLUSTER_STREAMS:-4}"

bench_init
ensure_tools
ensure_wrk
command -v nats-server >/dev/null || die "nats-server is missing (scripts/test.sh installs it)"
build_release pushmon
work=""
bench_tempdir work

# --- NATS ---------------------------------------------------------------------------
client_ports=() route_ports=() nats_pids=()
for i in 1 2 3; do client_ports+=("$(free_port)"); route_ports+=("$(free_port)"); done
nats_urls=""
for i in 0 1 2; do
    name="n$((i + 1))"
    routes=""
    for j in 0 1 2; do
        [[ $j == "$i" ]] && continue
        routes+="${routes:+, }nats-route://127.0.0.1:${route_ports[$j]}"
    done
    cat >"$work/$name.conf" <<CONF
server_name: $name
listen: 127.0.0.1:${client_ports[$i]}
jetstream {
  store_dir: "$work/$name"
  sync_interval: ${NATS_SYNC_INTERVAL:-always}
}
cluster {
  name: bench
  listen: 127.0.0.1:${route_ports[$i]}
  routes: [$routes]
}
CONF
    nats-server -c "$work/$name.conf" >"$work/$name.log" 2>&1 &
    _BENCH_PIDS+=("$!") nats_pids+=("$!")
    nats_urls+="${nats_urls:+,}nats://127.0.0.1:${client_ports[$i]}"
done
log "nats servers on $nats_urls"

# --- the pods -----------------------------------------------------------------------
pod_urls=() pod_pids=()
for i in 1 2 3; do
    start_pushmon "$work/pod-$i" "" --cluster-nats "$nats_urls" --pod-name "pod-$i" \
        --cluster-shards "$CLUSTER_SHARDS" --cluster-streams "$CLUSTER_STREAMS" --cluster-replicas 3
    pod_urls+=("$SERVER_URL") pod_pids+=("$SERVER_PID")
done
for i in 0 1 2; do
    SERVER_LOG="$work/pod-$((i + 1)).log"
    wait_ready "${pod_urls[$i]}" "${pod_pids[$i]}" 90 || die "pod $((i + 1)) not ready (see $SERVER_LOG)"
done
SERVER_URL="${pod_urls[0]}" SERVER_PID="${pod_pids[0]}"
log "seeding $MONITORS monitors through pod 1"
seed_out="$(seed "$MONITORS" "$work/tokens.txt")" || die "seeding failed: $seed_out"
last_token="$(tail -n1 "$work/tokens.txt")"
deadline=$(( $(now_ms) + 60000 ))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "${pod_urls[2]}/api/push/$last_token?msg=sanity")" == 200 ]]; do
    (( $(now_ms) < deadline )) || die "pod 3 does not know the last monitor after 60 s"
    sleep 0.2
done
log "pod 3 knows every monitor"

declare -A result=()
# measure NAME URL PID [PIDS...]: a warm-up, then the measured run, with `ticks` of
# PIDS (default: PID) before and after it in MEASURE_BEFORE and MEASURE_AFTER.
measure() {
    local name="$1" url="$2" pid="$3"
    local watched=("${@:4}")
    (( ${#watched[@]} )) || watched=("$pid")
    if (( WARMUP > 0 )); then
        run_wrk "$url" "$work/tokens.txt" "$CONNECTIONS" "$WARMUP" >/dev/null
    fi
    log "$name: ${CONNECTIONS} connections, ${DURATION}s"
    MEASURE_BEFORE="$(ticks "${watched[@]}")"
    result[$name]="$(run_wrk "$url" "$work/tokens.txt" "$CONNECTIONS" "$DURATION")"
    MEASURE_AFTER="$(ticks "${watched[@]}")"
    assert_alive "$pid"
}
# counters URL: "appends heartbeats append_seconds_sum" from a pod's metrics.
counters() {
    curl -s "$1/metrics" | awk '
        /^pushmon_cluster_appends_total /{a=$2}
        /^pushmon_cluster_appended_heartbeats_total /{h=$2}
        /^pushmon_cluster_append_duration_seconds_sum /{s=$2}
        /^pushmon_cluster_append_duration_seconds_count /{c=$2}
        END {printf "%d %d %.6f %d\n", a, h, s, c}'
}
# delta NAME BEFORE AFTER: one line on appends, heartbeats per append, mean wait.
delta() {
    local name="$1" before="$2" after="$3"
    awk -v n="$name" -v d="$DURATION" -v b="$before" -v a="$after" 'BEGIN {
        split(b, x, " "); split(a, y, " ");
        ap = y[1] - x[1]; hb = y[2] - x[2]; s = y[3] - x[3]; c = y[4] - x[4];
        printf "%s: %d appends (%.0f/s), %.1f heartbeats per append, mean PubAck wait %.2f ms\n",
            n, ap, ap / d, (ap > 0 ? hb / ap : 0), (c > 0 ? 1000 * s / c : 0) }'
}
# cpu_sample LABEL: every nats-server and pushmon process's CPU from one top sample
# (2 s), taken in the middle of the run, with the load averages.
cpu_sample() {
    sleep $(( DURATION / 2 ))
    {
        echo "$1 (top, 2 s sample, %CPU of one core): $(cut -d' ' -f1-3 /proc/loadavg) load"
        top -b -d 2 -n 2 -w 200 | awk '/^top -/{n++} n==2' \
            | awk '$12 ~ /nats|pushmon|wrk|cargo|rustc/ {cpu[$12] += $9} END {for (p in cpu) printf "    %s %.0f%%\n", p, cpu[p]}'
    } >>"$work/cpu.txt"
}
: >"$work/cpu.txt"
# ticks PID...: the user + system CPU time each process used so far, in clock ticks
# (/proc/PID/stat fields 14 and 15), space-separated; then the machine's busy ticks
# (every core, /proc/stat) last.
ticks() {
    local pid
    for pid in "$@"; do awk '{printf "%d ", $14 + $15}' "/proc/$pid/stat"; done
    awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat
}
# cpu_cost LABEL REQUESTS NAMES BEFORE AFTER: CPU milliseconds per 1,000 acknowledged
# pushes of each process (NAMES, space-separated, in the order of the ticks) and of
# the whole machine, from two `ticks` readings over a run that answered REQUESTS.
cpu_cost() {
    awk -v label="$1" -v n="$2" -v names="$3" -v b="$4" -v a="$5" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        split(names, name, " "); k = split(b, x, " "); split(a, y, " ");
        line = label " (CPU ms per 1,000 pushes):";
        for (i = 1; i < k; i++) line = line sprintf(" %s %.1f", name[i], 1e6 * (y[i] - x[i]) / hz / n);
        printf "%s; whole machine %.1f\n", line, 1e6 * (y[k] - x[k]) / hz / n }' >>"$work/cpu.txt"
}
cluster_pids=("${pod_pids[@]}" "${nats_pids[@]}")
cluster_names="pod-1 pod-2 pod-3 nats-1 nats-2 nats-3"
declare -a before=() after=()
for i in 0 1 2; do before[$i]="$(counters "${pod_urls[$i]}")"; done
cpu_sample cluster-pod-1 &
sampler=$!
MEASURE_BEFORE="" MEASURE_AFTER=""
measure cluster-pod-1 "${pod_urls[0]}" "${pod_pids[0]}" "${cluster_pids[@]}"
wait "$sampler"
cpu_cost cluster-pod-1 "$(field requests "${result[cluster-pod-1]}")" "$cluster_names" "$MEASURE_BEFORE" "$MEASURE_AFTER"
for i in 0 1 2; do after[$i]="$(counters "${pod_urls[$i]}")"; done
one_pod="$(delta "pod 1" "${before[0]}" "${after[0]}")"

# --- all three pods at once ----------------------------------------------------------
per_pod=$(( CONNECTIONS / 3 ))
(( per_pod < 1 )) && per_pod=1
for i in 0 1 2; do
    run_wrk "${pod_urls[$i]}" "$work/tokens.txt" "$per_pod" "$WARMUP" >/dev/null
done
for i in 0 1 2; do before[$i]="$(counters "${pod_urls[$i]}")"; done
three_before="$(ticks "${cluster_pids[@]}")"
log "all three pods: $per_pod connections each, ${DURATION}s"
cpu_sample cluster-3-pods &
waiting=("$!")
for i in 0 1 2; do
    run_wrk "${pod_urls[$i]}" "$work/tokens.txt" "$per_pod" "$DURATION" >"$work/wrk-$i.txt" &
    waiting+=("$!")
done
# Only these: the servers run in the background too.
wait "${waiting[@]}"
three_after="$(ticks "${cluster_pids[@]}")"
for i in 0 1 2; do
    after[$i]="$(counters "${pod_urls[$i]}")"
    assert_alive "${pod_pids[$i]}"
done
three_pods=""
all_rps=0 all_requests=0
for i in 0 1 2; do
    r="$(cat "$work/wrk-$i.txt")"
    all_rps="$(awk -v a="$all_rps" -v b="$(field rps "$r")" 'BEGIN {printf "%.0f", a + b}')"
    all_requests=$(( all_requests + $(field requests "$r") ))
    three_pods+="  pod $((i + 1)): $(field rps "$r") req/s, p50 $(field p50_ms "$r") ms, p99 $(field p99_ms "$r") ms, non-2xx $(field non2xx "$r"); $(delta "" "${before[$i]}" "${after[$i]}")"$'\n'
done
cpu_cost cluster-3-pods "$all_requests" "$cluster_names" "$three_before" "$three_after"
lag="$(curl -s "${pod_urls[2]}/metrics" | awk '/^pushmon_cluster_stream_lag_records/{sum += $2} END {print sum + 0}')"
for pid in "${pod_pids[@]}"; do stop_server "$pid" TERM 15; done

# --- single node --------------------------------------------------------------------
start_pushmon "$work/single"
wait_ready "$SERVER_URL" "$SERVER_PID"
seed_single="$(seed "$MONITORS" "$work/tokens.txt")" || die "seeding failed: $seed_single"
measure single-node "$SERVER_URL" "$SERVER_PID"
cpu_cost single-node "$(field requests "${result[single-node]}")" "pushmon" "$MEASURE_BEFORE" "$MEASURE_AFTER"
stop_server "$SERVER_PID" TERM

echo
echo "===== bench-cluster summary ====="
echo "MONITORS=$MONITORS DURATION=${DURATION}s CONNECTIONS=$CONNECTIONS wrk -t2, POST /api/push/{token}?status=up&msg=x, $(nproc) cores"
echo "cluster: 3 nats-server (R3, sync_interval: always), 3 pods, $CLUSTER_SHARDS shards over $CLUSTER_STREAMS streams"
printf '%-14s %9s %8s %8s %8s %8s\n' server 'req/s' 'p50 ms' 'p99 ms' 'max ms' 'non-2xx'
for name in cluster-pod-1 single-node; do
    r="${result[$name]}"
    printf '%-14s %9s %8s %8s %8s %8s\n' "$name" "$(field rps "$r")" "$(field p50_ms "$r")" \
        "$(field p99_ms "$r")" "$(field max_ms "$r")" "$(field non2xx "$r")"
done
single="$(field rps "${result[single-node]}")"
ratio() { awk -v a="$1" -v b="$single" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "NA" }'; }
echo "wrk against pod 1 alone: ratio to single node $(ratio "$(field rps "${result[cluster-pod-1]}")"); $one_pod"
echo "wrk against all three pods at once ($per_pod connections each): $all_rps req/s in all, ratio to single node $(ratio "$all_rps")"
printf '%s' "$three_pods"
echo "pod 3 fold lag at the end: $lag records"
cat "$work/cpu.txt"
echo "================================="
