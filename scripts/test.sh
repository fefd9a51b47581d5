#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need when it is missing, then
# runs `cargo test`. CI (.ci/run) calls this same script.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi

# Two cores: one test thread per core keeps the timing-sensitive lifecycle tests honest.
cargo test --all-targets -- --test-threads="${PUSHMON_TEST_THREADS:-4}"
