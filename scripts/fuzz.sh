#!/usr/bin/env bash
# Fuzzes the push parser, the monitors file and the stored-record decoders with
# libFuzzer (`cargo fuzz`, the crate in fuzz/), each target for a bounded time, and
# exits non-zero if any target crashed, hung or ran out of memory (the input is then
# in fuzz/artifacts/<target>/: add it to fuzz/corpus/<target>/ with the fix, so the
# ordinary test suite replays it).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#   scripts/fuzz.sh --minimise [TARGET...]
#
# Each target starts from its committed corpus, fuzz/corpus/<target>/, and writes what
# it finds to a temporary directory that is thrown away; with FUZZ_KEEP_CORPUS=1 new
# inputs go into fuzz/corpus/<target>/ instead: minimise it before committing.
#
# --minimise shrinks each corpus to a small set of inputs that still reaches every
# branch the whole corpus reaches: the named files (seed-*, written by hand or by the
# codec, and crash-*, the fuzzer's findings) are always kept, and of the rest a greedy
# set cover (libFuzzer's -set_cover_merge) of the edges they add. Edges, not
# libFuzzer's default features (edges times hit-count buckets): those keep an input for
# each loop count of the YAML and form parsers, four times the files for no new
# branch. `cargo fuzz cmin` does the default merge and renames every file to its hash.
#
# cargo-fuzz builds with flags only a nightly compiler takes (-Zsanitizer=address);
# the machine's one (stable) toolchain takes them with RUSTC_BOOTSTRAP=1, so no
# nightly is needed. Installs cargo-fuzz and a C++ compiler (libFuzzer is C++) when
# they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

minimise=0
seconds=60
if [ "${1:-}" = --minimise ]; then
  minimise=1
  shift
elif [ "$#" -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  seconds="$1"
  shift
fi
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]] || [[ "${1:-}" == -* ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  echo "       scripts/fuzz.sh --minimise [TARGET...]" >&2
  exit 2
fi

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

mapfile -t known < <(cargo fuzz list)
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=("${known[@]}")
fi
for target in "${targets[@]}"; do
  if ! printf '%s\n' "${known[@]}" | grep -qxF -- "$target"; then
    echo "no fuzz target $target (there are: ${known[*]})" >&2
    exit 2
  fi
done

echo "== building ${targets[*]}"
cargo fuzz build >/dev/null

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

if [ "$minimise" = 1 ]; then
  binaries="fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"
  for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    minimal="$scratch/$target"
    mkdir -p "$minimal"
    find "$corpus" -maxdepth 1 -type f \( -name 'seed-*' -o -name 'crash-*' \) \
      -exec cp {} "$minimal/" \;
    before="$(find "$corpus" -type f | wc -l) files, $(du -sb --apparent-size "$corpus" | cut -f1) bytes"
    # The merge skips an input that fails the check: that is a finding, not an input
    # to drop quietly, so it stops here with the input in fuzz/artifacts/<target>/.
    mkdir -p "fuzz/artifacts/$target"
    status=0
    "$binaries/$target" -set_cover_merge=1 -use_counters=0 -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=64 -artifact_prefix="fuzz/artifacts/$target/" \
      "$minimal" "$corpus" >"$scratch/$target.log" 2>&1 || status=$?
    if [ "$status" -ne 0 ] || grep -q 'ERROR: libFuzzer' "$scratch/$target.log"; then
      grep -E -A3 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer' "$scratch/$target.log" \
        | head -40 >&2
      grep -E 'Test unit written to' "$scratch/$target.log" >&2 || true
      echo "$target: an input fails its check; fuzz/corpus/$target is unchanged" >&2
      exit 1
    fi
    rm -rf "$corpus"
    cp -r "$minimal" "$corpus"
    echo "$target: $before -> $(find "$corpus" -type f | wc -l) files, $(du -sb --apparent-size "$corpus" | cut -f1) bytes"
  done
  exit 0
fi
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
  grep -E '^#[0-9]+' "$log" | tail -1 || true
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
