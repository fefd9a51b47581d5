#!/usr/bin/env bash
# Fuzzes the push parser, the monitors file and the stored-record decoders with
# libFuzzer (`cargo fuzz`, the crate in fuzz/), each target for a bounded time, and
# exits non-zero if any target crashed, hung or ran out of memory (the input is then
# in fuzz/artifacts/<target>/: add it to fuzz/corpus/<target>/ with the fix, so the
# ordinary test suite replays it).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#
# Each target starts from its committed corpus, fuzz/corpus/<target>/, and writes what
# it finds to a temporary directory that is thrown away; with FUZZ_KEEP_CORPUS=1 new
# inputs go into fuzz/corpus/<target>/ instead (minimise it before committing:
# `RUSTC_BOOTSTRAP=1 cargo fuzz cmin <target>`).
#
# cargo-fuzz builds with flags only a nightly compiler takes (-Zsanitizer=address);
# the machine's one (stable) toolchain takes them with RUSTC_BOOTSTRAP=1, so no
# nightly is needed. Installs cargo-fuzz and a C++ compiler (libFuzzer is C++) when
# they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi
shift || true

if ! command -v c++ >/dev/null 2>&1; then
  echo "installing g++ (libFuzzer is C++)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${targets[*]}"
cargo fuzz build >/dev/null

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then
    corpora=("$corpus")
  else
    mkdir -p "$scratch/$target"
    corpora=("$scratch/$target" "$corpus")
  fi
  dict=()
  if [ -f "fuzz/dicts/$target.dict" ]; then
    dict=("-dict=fuzz/dicts/$target.dict")
  fi
  log="$scratch/$target.log"
  echo "== $target: ${seconds}s from $(find "$corpus" -type f | wc -l) corpus files"
  # -timeout: one input taking longer is a hang. -malloc_limit_mb: one allocation
  # above it is a failure (the decoders allow themselves at most 1 MiB a record).
  status=0
  cargo fuzz run "$target" "${corpora[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=64 \
    -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || status=$?
  grep -E '^Done [0-9]+ runs' "$log" || true
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "$target FAILED (exit $status):"
    grep -E -A12 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY' "$log" | head -40
    grep -E 'Test unit written to' "$log" || true
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing: no failure in ${targets[*]} (${seconds}s each)"
