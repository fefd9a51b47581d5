#!/usr/bin/env bash
# Lost writes, for real: SIGKILL the server under load, damage its journal, restart.
#
#   scripts/soak-truncate.sh [ROUNDS=4] [MONITORS=20] [CLIENTS=8] [MAX_ROUND_SECONDS=4]
#
# Each round pushes heartbeats from CLIENTS clients for 1 to MAX_ROUND_SECONDS seconds,
# logging every acknowledged one with the time its 200 arrived, then SIGKILLs the
# release server. Copies of its data directory are damaged: the newest journal cut at
# 10, 50, 90 and 99% of its data, 4 KiB of it zeroed, the journal files deleted, the
# whole fjall/ deleted. Each copy must either be refused (exit 1, an error naming the
# loss, `pushmon check` exit 1) or start with every heartbeat acknowledged before the
# high-water mark's moment; losses from the last second before the kill (not
# detectable, docs/operations.md "Lost writes") are counted apart. The undamaged
# directory is restarted every round and must hold every acknowledged heartbeat.
# Prints a table of outcomes per damage. Bounded (DEADLINE seconds, 1800), 127.0.0.1
# only; scripts/soak_truncate.py does the work.
#
# Environment: DEADLINE (1800), SKIP_BUILD, KEEP_TMP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS="${1:-${ROUNDS:-4}}"
MONITORS="${2:-${MONITORS:-20}}"
CLIENTS="${3:-${CLIENTS:-8}}"
MAX_ROUND_SECONDS="${4:-${MAX_ROUND_SECONDS:-4}}"
DEADLINE="${DEADLINE:-1800}"

bench_init
ensure_tools
build_release pushmon
keep=()
[[ "${KEEP_TMP:-0}" == 1 ]] && keep=(--keep)
timeout $(( DEADLINE + 300 )) python3 "$SCRIPTS_DIR/soak_truncate.py" \
    --binary "$PUSHMON_BIN" --rounds "$ROUNDS" --monitors "$MONITORS" \
    --clients "$CLIENTS" --max-round-seconds "$MAX_ROUND_SECONDS" \
    --deadline-seconds "$DEADLINE" "${keep[@]}"
