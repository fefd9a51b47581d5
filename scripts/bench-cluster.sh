#!/usr/bin/env bash
# Durable pushes per second through one pod of a 3-pod / 3-NATS cluster, against a
# single-node pushmon (its fjall store) in the same run.
#
#   scripts/bench-cluster.sh [MONITORS=1000] [DURATION=15] [CONNECTIONS=64]
#
# Starts three nats-server processes (JetStream, sync_interval: always, one cluster on
# 127.0.0.1), three `pushmon serve --cluster-nats` pods (--cluster-replicas 3,
# CLUSTER_SHARDS shards, default 16), seeds MONITORS monitors through pod 1, waits
# until pod 3 has the last one, then runs wrk (scripts/push.lua, as bench-ingest.sh)
# against pod 1: every 200 is a heartbeat record acknowledged by the shard's stream
# (a quorum of the three servers fsynced it). Then the same against a single-node
# pushmon. Everything is on 127.0.0.1, bounded in time, and stopped on exit.
#
# Environment: WARMUP (2), CLUSTER_SHARDS (16), SKIP_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONITORS="${1:-${MONITORS:-1000}}"
DURATION="${2:-${DURATION:-15}}"
CONNECTIONS="${3:-${CONNECTIONS:-64}}"
WARMUP="${WARMUP:-2}"
CLUSTER_SHARDS="${CLUSTER_SHARDS:-16}"

bench_init
ensure_tools
ensure_wrk
command -v nats-server >/dev/null || die "nats-server is missing (scripts/test.sh installs it)"
build_release pushmon
work=""
bench_tempdir work

# --- NATS ---------------------------------------------------------------------------
client_ports=() route_ports=()
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
  sync_interval: always
}
cluster {
  name: bench
  listen: 127.0.0.1:${route_ports[$i]}
  routes: [$routes]
}
CONF
    nats-server -c "$work/$name.conf" >"$work/$name.log" 2>&1 &
    _BENCH_PIDS+=("$!")
    nats_urls+="${nats_urls:+,}nats://127.0.0.1:${client_ports[$i]}"
done
log "nats servers on $nats_urls"

# --- the pods -----------------------------------------------------------------------
pod_urls=() pod_pids=()
for i in 1 2 3; do
    start_pushmon "$work/pod-$i" "" --cluster-nats "$nats_urls" --pod-name "pod-$i" \
        --cluster-shards "$CLUSTER_SHARDS" --cluster-replicas 3
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
measure() {
    local name="$1" url="$2" pid="$3"
    if (( WARMUP > 0 )); then
        run_wrk "$url" "$work/tokens.txt" "$CONNECTIONS" "$WARMUP" >/dev/null
    fi
    log "$name: ${CONNECTIONS} connections, ${DURATION}s"
    result[$name]="$(run_wrk "$url" "$work/tokens.txt" "$CONNECTIONS" "$DURATION")"
    assert_alive "$pid"
}
measure cluster-pod-1 "${pod_urls[0]}" "${pod_pids[0]}"
appends="$(curl -s "${pod_urls[0]}/metrics" | awk '/^pushmon_cluster_appends_total /{print $2}')"
records="$(curl -s "${pod_urls[0]}/metrics" | awk '/^pushmon_cluster_appended_records_total /{print $2}')"
lag="$(curl -s "${pod_urls[2]}/metrics" | awk '/^pushmon_cluster_shard_lag_records/{sum += $2} END {print sum + 0}')"
for pid in "${pod_pids[@]}"; do stop_server "$pid" TERM 15; done

# --- single node --------------------------------------------------------------------
start_pushmon "$work/single"
wait_ready "$SERVER_URL" "$SERVER_PID"
seed_single="$(seed "$MONITORS" "$work/tokens.txt")" || die "seeding failed: $seed_single"
measure single-node "$SERVER_URL" "$SERVER_PID"
stop_server "$SERVER_PID" TERM

echo
echo "===== bench-cluster summary ====="
echo "MONITORS=$MONITORS DURATION=${DURATION}s CONNECTIONS=$CONNECTIONS wrk -t2, POST /api/push/{token}?status=up&msg=x, $(nproc) cores"
echo "cluster: 3 nats-server (R3, sync_interval: always), 3 pods, $CLUSTER_SHARDS shards, wrk against pod 1"
printf '%-14s %9s %8s %8s %8s %8s\n' server 'req/s' 'p50 ms' 'p99 ms' 'max ms' 'non-2xx'
for name in cluster-pod-1 single-node; do
    r="${result[$name]}"
    printf '%-14s %9s %8s %8s %8s %8s\n' "$name" "$(field rps "$r")" "$(field p50_ms "$r")" \
        "$(field p99_ms "$r")" "$(field max_ms "$r")" "$(field non2xx "$r")"
done
echo "pod 1: $appends appends for $records records (mean batch $(awk -v a="$appends" -v r="$records" 'BEGIN { if (a > 0) printf "%.1f", r / a; else print "NA" }')); pod 3 fold lag at the end: $lag records"
echo "================================="
