# shellcheck shell=bash
# shellcheck disable=SC2034  # SERVER_*, STOP_* are set here for the scripts to read
# Shared helpers for the bench scripts. Source it; do not run it.
#
#   source "$(dirname "$0")/lib.sh"
#
# Every server started here is recorded and stopped by the EXIT trap that
# `bench_init` installs, whether the script succeeds or fails; every temp dir
# made by `bench_tempdir` is removed by the same trap (KEEP_TMP=1 keeps them).
#
# Environment:
#   SKIP_BUILD=1        do not run cargo build (use the binaries already built)
#   PUSHMON_BIN=path    pushmon binary (default target/release/pushmon)
#   REFERENCE_BIN=path  reference server (default target/release/examples/reference_server)
#   KEEP_TMP=1          keep temp dirs (data dirs, logs) for inspection

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPTS_DIR/.." && pwd)"
PUSHMON_BIN="${PUSHMON_BIN:-$REPO_DIR/target/release/pushmon}"
REFERENCE_BIN="${REFERENCE_BIN:-$REPO_DIR/target/release/examples/reference_server}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"   # seconds to wait for /readyz
STOP_TIMEOUT="${STOP_TIMEOUT:-60}"      # seconds to wait for a server to exit

_BENCH_PIDS=()
_BENCH_TMPDIRS=()

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

bench_cleanup() {
    local rc=$?
    if (( rc != 0 )) && [[ -n "${SERVER_LOG:-}" && -s "${SERVER_LOG:-}" ]]; then
        log "failed (status $rc); last lines of $SERVER_LOG:"
        tail -n 20 "$SERVER_LOG" | sed 's/^/    log| /' >&2
    fi
    local pid
    for pid in "${_BENCH_PIDS[@]:-}"; do
        [[ -n "$pid" ]] || continue
        if kill -0 "$pid" 2>/dev/null; then
            log "cleanup: stopping pid $pid"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    local dir
    for dir in "${_BENCH_TMPDIRS[@]:-}"; do
        [[ -n "$dir" && -d "$dir" ]] || continue
        if [[ "${KEEP_TMP:-0}" == 1 ]]; then log "kept $dir"; else rm -rf "$dir"; fi
    done
    return "$rc"
}

# Install the cleanup trap. Call once, near the top of a script.
bench_init() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# bench_tempdir VAR: make a temp dir that the EXIT trap removes and store its path in
# VAR. (Not `dir=$(bench_tempdir)`: a command substitution is a subshell, and the
# trap would never hear of the dir.)
bench_tempdir() {
    local dir
    dir="$(mktemp -d "${TMPDIR:-/tmp}/pushmon-bench.XXXXXX")"
    _BENCH_TMPDIRS+=("$dir")
    printf -v "$1" '%s' "$dir"
}

ensure_wrk() {
    command -v wrk >/dev/null 2>&1 && return 0
    log "installing wrk (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } >&2 \
        || die "could not install wrk"
}

ensure_tools() {
    command -v curl >/dev/null 2>&1 || die "curl is required"
    command -v python3 >/dev/null 2>&1 || die "python3 is required"
}

# Build pushmon and the reference server (release) unless SKIP_BUILD=1.
# Arguments: what to build: "pushmon", "reference" or both.
build_release() {
    [[ "${SKIP_BUILD:-0}" == 1 ]] && return 0
    local what
    for what in "$@"; do
        case "$what" in
            pushmon) log "cargo build --release --bin pushmon"
                     (cd "$REPO_DIR" && cargo build --release --quiet --bin pushmon) >&2 ;;
            reference) log "cargo build --release --example reference_server"
                     (cd "$REPO_DIR" && cargo build --release --quiet --example reference_server) >&2 ;;
            idle_actors) log "cargo build --release --example idle_actors"
                     (cd "$REPO_DIR" && cargo build --release --quiet --example idle_actors) >&2 ;;
            webhook_sink) log "cargo build --release --example webhook_sink"
                     (cd "$REPO_DIR" && cargo build --release --quiet --example webhook_sink) >&2 ;;
            *) die "build_release: unknown target $what" ;;
        esac
    done
}

# Print a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Milliseconds on a monotonic-enough clock (wall clock in ns, fine at ms scale).
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# HTTP status of GET URL, or 000 when nothing answered.
http_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true
}

# wait_ready BASE_URL PID [TIMEOUT_SECONDS]
# Poll BASE_URL/readyz every 20 ms until 200. Fails if PID dies or time runs out.
wait_ready() {
    local url="$1" pid="$2" limit="${3:-$READY_TIMEOUT}"
    local deadline=$(( $(now_ms) + limit * 1000 ))
    while :; do
        [[ "$(http_status "$url/readyz")" == 200 ]] && return 0
        kill -0 "$pid" 2>/dev/null || { log "pid $pid exited before ready"; return 1; }
        (( $(now_ms) < deadline )) || { log "not ready within ${limit}s: $url"; return 1; }
        sleep 0.02
    done
}

# start_pushmon DATA_DIR [PORT] [extra args...]
# Start pushmon in the background with load-test rate limits. Sets SERVER_PID,
# SERVER_PORT, SERVER_URL, SERVER_LOG, SERVER_START_MS (just before exec).
# Does not wait for readiness: call wait_ready.
start_pushmon() {
    local data_dir="$1"; shift
    local port="${1:-}"; [[ $# -gt 0 ]] && shift
    [[ -n "$port" ]] || port="$(free_port)"
    [[ -x "$PUSHMON_BIN" ]] || die "no pushmon binary at $PUSHMON_BIN"
    mkdir -p "$data_dir"
    SERVER_PORT="$port"
    SERVER_URL="http://127.0.0.1:$port"
    SERVER_LOG="$data_dir.log"
    SERVER_START_MS="$(now_ms)"
    "$PUSHMON_BIN" serve \
        --listen "127.0.0.1:$port" \
        --data-dir "$data_dir" \
        --admin-token "$ADMIN_TOKEN" \
        --rate-limit-per-second 1000000 \
        --rate-limit-burst 1000000 \
        --rate-limit-ip-per-second 0 \
        "$@" >>"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    _BENCH_PIDS+=("$SERVER_PID")
    log "pushmon pid $SERVER_PID on $SERVER_URL, data $data_dir, log $SERVER_LOG"
}

# start_reference LOG_FILE [--mpsc]
# Start the bare axum reference server. Sets SERVER_PID, SERVER_PORT, SERVER_URL, SERVER_LOG.
start_reference() {
    local log_file="$1"; shift
    [[ -x "$REFERENCE_BIN" ]] || die "no reference server at $REFERENCE_BIN"
    SERVER_PORT="$(free_port)"
    SERVER_URL="http://127.0.0.1:$SERVER_PORT"
    SERVER_LOG="$log_file"
    SERVER_START_MS="$(now_ms)"
    "$REFERENCE_BIN" "127.0.0.1:$SERVER_PORT" "$@" >>"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    _BENCH_PIDS+=("$SERVER_PID")
    log "reference $* pid $SERVER_PID on $SERVER_URL"
}

# stop_server PID [SIGNAL=TERM] [TIMEOUT_SECONDS]
# Send SIGNAL, wait for exit (SIGKILL after the timeout). Sets STOP_RC (exit status,
# 128+n for a signal) and STOP_MS (time from signal to exit).
stop_server() {
    local pid="$1" signal="${2:-TERM}" limit="${3:-$STOP_TIMEOUT}"
    local start; start="$(now_ms)"
    STOP_RC=0
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || STOP_RC=$?
        STOP_MS=0
        log "pid $pid had already exited (status $STOP_RC)"
        return 0
    fi
    kill "-$signal" "$pid" 2>/dev/null || true
    local deadline=$(( start + limit * 1000 ))
    while kill -0 "$pid" 2>/dev/null; do
        # A zombie child still answers kill -0; wait reaps it below.
        [[ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" == Z ]] && break
        if (( $(now_ms) >= deadline )); then
            log "pid $pid still running ${limit}s after SIG$signal: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.02
    done
    wait "$pid" 2>/dev/null || STOP_RC=$?
    STOP_MS=$(( $(now_ms) - start ))
}

# rss_kib PID: resident set size in KiB (VmRSS), from /proc.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# hwm_kib PID: peak resident set size in KiB (VmHWM).
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# Fail unless PID is still running (the server crashed during a step).
assert_alive() {
    kill -0 "$1" 2>/dev/null || die "server pid $1 is no longer running (see ${SERVER_LOG:-its log})"
}

# seed N OUT_FILE [extra seed.py args...]: create N monitors on SERVER_URL.
seed() {
    local count="$1" out="$2"; shift 2
    python3 "$SCRIPTS_DIR/seed.py" --url "$SERVER_URL" --admin-token "$ADMIN_TOKEN" \
        --count "$count" --out "$out" "$@"
}

# fake_tokens N OUT_FILE: N random URL-safe tokens shaped like pushmon's (128 bits).
fake_tokens() {
    python3 -c 'import secrets,sys
with open(sys.argv[2], "w") as f:
    for _ in range(int(sys.argv[1])): f.write(secrets.token_urlsafe(16) + "\n")' "$1" "$2"
}

# run_wrk URL TOKENS_FILE CONNECTIONS DURATION_SECONDS
# Run wrk with push.lua; print its output to stderr and the "RESULT ..." line on stdout.
run_wrk() {
    local url="$1" tokens="$2" connections="$3" duration="$4"
    local threads=2
    (( connections < threads )) && threads="$connections"
    local out
    out="$(timeout $(( duration + 60 )) wrk -t"$threads" -c"$connections" -d"${duration}s" \
        --timeout 10s -s "$SCRIPTS_DIR/push.lua" "$url" -- "$tokens" "$threads")" \
        || die "wrk failed or timed out against $url"
    printf '%s\n' "$out" | sed 's/^/    wrk| /' >&2
    printf '%s\n' "$out" | grep '^RESULT ' | tail -n1
}

# field NAME "RESULT a=1 b=2": print the value of NAME.
field() {
    local name="$1" line="$2" kv
    for kv in $line; do
        [[ "$kv" == "$name="* ]] && { printf '%s\n' "${kv#*=}"; return 0; }
    done
    printf 'NA\n'
}

# New admin token for this run.
ADMIN_TOKEN="${ADMIN_TOKEN:-bench-$(python3 -c 'import secrets; print(secrets.token_hex(16))')}"
