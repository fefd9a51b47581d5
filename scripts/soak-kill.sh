#!/usr/bin/env bash
# Crash safety, full length: the kill-loop test of tests/it/killloop.rs run with many
# more SIGKILLs, clients and monitors than CI's reduced run, against the release build.
#
#   scripts/soak-kill.sh [KILLS=30] [MONITORS=200] [CLIENTS=8] [ROUND_MS=3000]
#
# Each round drives CLIENTS clients pushing (10% `down`) to MONITORS monitors with a
# webhook channel, SIGKILLs the real server at a random moment up to ROUND_MS into the
# round, runs `pushmon check` on the store (every snapshot equals a full replay of the
# log), and restarts it. At the end: every acknowledged heartbeat is in the history, no
# monitor is lost, every down/up in the history reached the webhook. It prints one
# `killloop:` line with the counts. Bounded: rounds are at most ROUND_MS long.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export PUSHMON_SOAK_KILLS="${1:-${KILLS:-30}}"
export PUSHMON_SOAK_MONITORS="${2:-${MONITORS:-200}}"
export PUSHMON_SOAK_CLIENTS="${3:-${CLIENTS:-8}}"
export PUSHMON_SOAK_ROUND_MS="${4:-${ROUND_MS:-3000}}"

start=$(date +%s)
out="$(timeout 3600 cargo test --release --test it killloop -- --nocapture --test-threads 1 2>&1)" \
    && rc=0 || rc=$?
printf "%s\n" "$out" > "${SOAK_LOG:-/dev/null}"
echo "$out" | grep -E -A2 'killloop: kills|test result|panicked' | cut -c1-600 || true
echo "soak-kill: exit $rc after $(( $(date +%s) - start )) s (kills=$PUSHMON_SOAK_KILLS monitors=$PUSHMON_SOAK_MONITORS clients=$PUSHMON_SOAK_CLIENTS round<=${PUSHMON_SOAK_ROUND_MS}ms)"
exit "$rc"
