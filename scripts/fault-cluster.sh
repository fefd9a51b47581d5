#!/usr/bin/env bash
# The clustered mode's fault-injection suite, in full: each fault scenario of
# tests/it/faults.rs for many rounds, then a summary table.
#
#   scripts/fault-cluster.sh [ROUNDS=10] [SECONDS_PER_SCENARIO=300]
#
# Every scenario runs on its own cluster on 127.0.0.1: three nats-server processes
# (R3, sync_interval: always), three `pushmon serve` pods (4 shards, lease 2 s), each
# reaching the servers through TCP proxies the test can cut, a load generator logging
# every acknowledged heartbeat and a webhook receiver logging every delivery. Each
# round injects the fault once and checks: no acknowledged heartbeat lost, epochs
# increasing, a zombie's decisions void, one effective down per silenced monitor and
# none for the pushing ones, every duplicate delivery accounted for by a crash
# (at-least-once delivery: an alert is delivered again only when a pod sent it and
# crashed before recording its outcome, never once its outcome is in the log),
# failover under 10 s, all pods' state identical. Failover is timed from the fault until another pod
# holds each of the victim's shards under a later epoch and answers /readyz 200 (it
# does once it has folded them up to its takeover, and decides for them from then on);
# for a NATS server, until appends resume in every shard. A scenario stops after
# ROUNDS rounds or once it has run SECONDS_PER_SCENARIO (no round starts after that);
# the whole run is bounded by their sum and the start-up of each cluster.
#
# Scenarios: SCENARIOS (default: all), space-separated test names:
#   sigkill_of_an_owner sigstop_of_an_owner_for_twice_its_lease an_owner_cut_off_from_nats
#   sigkill_of_the_nats_server_leading_the_most_streams a_rolling_restart_of_every_pod
#   crash_between_sending_an_alert_and_recording_it (the pods run with
#   PUSHMON_FAULT_EXIT_AFTER_SEND=1, or the NAME=VALUE in PUSHMON_FAULT_CRASH_HOOK).
# The normal suite runs the passing scenarios once and ignores the failing ones (each
# names its bug); they all run here.
#
# Percentiles are nearest-rank (the p90 of 20 failovers is the 18th).
#
# Environment: SCENARIOS, PACE_MS (each of the 2 load workers waits this long between
# pushes, default 15), KEEP_REPORT (keep the raw report file).
set -uo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${1:-${ROUNDS:-10}}"
SECONDS_PER_SCENARIO="${2:-${SECONDS_PER_SCENARIO:-300}}"
SCENARIOS="${SCENARIOS:-sigkill_of_an_owner sigstop_of_an_owner_for_twice_its_lease an_owner_cut_off_from_nats sigkill_of_the_nats_server_leading_the_most_streams a_rolling_restart_of_every_pod crash_between_sending_an_alert_and_recording_it}"

command -v nats-server >/dev/null || { echo "nats-server is missing (scripts/test.sh installs it)" >&2; exit 1; }
cargo build --tests --quiet || exit 1

report="$(mktemp)"
if [ -z "${KEEP_REPORT:-}" ]; then trap 'rm -f "$report"' EXIT; else echo "raw report: $report" >&2; fi
declare -A outcome

for scenario in $SCENARIOS; do
    echo "== $scenario: up to $ROUNDS rounds, ${SECONDS_PER_SCENARIO} s" >&2
    started=$(date +%s)
    # The scenario's own bound, plus a margin for start-up, the last round and the checks.
    PUSHMON_FAULT_ROUNDS="$ROUNDS" PUSHMON_FAULT_SECONDS="$SECONDS_PER_SCENARIO" PUSHMON_FAULT_PACE_MS="${PACE_MS:-15}" \
        PUSHMON_FAULT_REPORT="$report" RUST_BACKTRACE=0 \
        timeout --kill-after=10 $((SECONDS_PER_SCENARIO + 240)) \
        cargo test --quiet --test it "faults::$scenario" -- --exact --include-ignored --nocapture --test-threads=1 \
        2>&1 | grep -E '^(fault round|  |test |thread)' >&2
    result="${PIPESTATUS[0]}"
    outcome[$scenario]="$( [ "$result" = 0 ] && echo passed || echo "FAILED (exit $result)" ) in $(( $(date +%s) - started )) s"
done

echo
echo "## Fault-injection suite: $(date -u +%Y-%m-%dT%H:%MZ), up to $ROUNDS rounds per scenario"
echo
printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
    scenario rounds "rounds ok" "acked pushes" "refused pushes" lost "failover s (min/median/p90/max)" \
    "stale-epoch voids" "other voids" "silenced / effective downs / deliveries" "duplicates (in flight at crashes)" crashes "state identical" "histories stored in another order"
echo '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
awk -F '\t' '
    $1 != "#" {
        s = $1; order[s] = order[s] ? order[s] : ++n; names[order[s]] = s
        rounds[s]++; if ($18 == "ok") ok[s]++
        acked[s] += $3; refused[s] += $4; lost[s] += $5
        count = split($6, times, "/")
        for (i = 1; i <= count; i++) if (times[i] != "-") { failovers[s, ++nf[s]] = times[i] + 0 }
        takeovers[s] += $7; stale[s] += $8; other[s] += $9
        silenced[s] += $10; downs[s] += $11; deliveries[s] += $12; duplicates[s] += $13; inflight[s] += $14; crashes[s] += $15
        if ($16 == "yes") identical[s]++
        reordered[s] += $17
    }
    END {
        for (k = 1; k <= n; k++) {
            s = names[k]; m = nf[s]
            for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
                if (failovers[s, j] < failovers[s, i]) { t = failovers[s, i]; failovers[s, i] = failovers[s, j]; failovers[s, j] = t }
            p90 = int(0.9 * m); if (p90 < 0.9 * m) p90++
            f = m ? sprintf("%.2f / %.2f / %.2f / %.2f (%d)", failovers[s, 1], failovers[s, int((m + 1) / 2)], failovers[s, p90], failovers[s, m], m) : "-"
            printf "| %s | %d | %d | %d | %d | %d | %s | %d | %d | %d / %d / %d | %d (%d) | %d | %d of %d | %d |\n",
                s, rounds[s], ok[s], acked[s], refused[s], lost[s], f, stale[s], other[s],
                silenced[s], downs[s], deliveries[s], duplicates[s], inflight[s], crashes[s], identical[s], rounds[s], reordered[s]
        }
    }' "$report"
echo
for scenario in $SCENARIOS; do echo "- $scenario: ${outcome[$scenario]:-not run}"; done
if grep -q '^#' "$report"; then
    echo
    echo "Failed checks (first 40):"
    grep '^#' "$report" | cut -f 2- | head -40 | cut -c 1-400 | sed 's/^/  /'
fi
