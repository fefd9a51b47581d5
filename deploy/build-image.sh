#!/usr/bin/env bash
# Builds the pushmon image from deploy/Dockerfile without a Docker engine (buildah,
# podman; vfs storage, chroot isolation), runs it, creates a monitor, pushes one
# heartbeat, stops it with SIGTERM and prints the image size. Not part of CI.
#
#   deploy/build-image.sh [--base distroless|debootstrap] [--binary source|host]
#                         [--host-ca auto|yes|no] [--tag IMAGE] [--port PORT]
#                         [--no-run] [--keep] [--clean]
#
#   --base distroless   the Dockerfile's own bases (rust:*-bookworm, distroless/cc);
#                       needs a reachable container registry.
#   --base debootstrap  no registry: builds Debian bookworm bases locally with
#                       debootstrap (a minbase root, like bookworm-slim, for the
#                       runtime; the same plus Debian's rustc-web/cargo-web and gcc for
#                       the builder) and passes them as BUILDER_IMAGE / RUNTIME_IMAGE.
#                       Needs Debian's mirrors and crates.io.
#   --binary source     build pushmon inside the builder stage (the Dockerfile as is).
#   --binary host       skip the builder stage: copy the host's target/release/pushmon
#                       (cargo build --release when missing) into a variant of the
#                       Dockerfile's runtime stage. For when no toolchain or crates can
#                       be had inside the build.
#   --host-ca           mount the host's /etc/ssl/certs into the build's RUN steps (not
#                       into the image), for networks behind a TLS-intercepting proxy
#                       whose CA only the host trusts; auto: when the host has local
#                       CAs in /usr/local/share/ca-certificates.
#
#   --clean             delete the script's container storage and exit.
#
# Runs as root. Uses its own container storage under /var/lib/pushmon-build, so it
# neither needs nor touches a system-wide containers configuration. The vfs driver
# copies every layer in full: a source build leaves several GB there (the layer
# cache); --clean frees it.
set -euo pipefail
cd "$(dirname "$0")/.."

base=distroless
binary=source
tag=""
port=18080
host_ca=auto
run=1
keep=0
clean=0
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --host-ca) host_ca="$2"; shift 2 ;;
    --no-run) run=0; shift ;;
    --keep) keep=1; shift ;;
    --clean) clean=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$base" in distroless | debootstrap) ;; *) echo "--base distroless|debootstrap" >&2; exit 2 ;; esac
case "$binary" in source | host) ;; *) echo "--binary source|host" >&2; exit 2 ;; esac

say() { printf '==> %s\n' "$*"; }

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
tag="${tag:-localhost/pushmon:${version}}"
state=/var/lib/pushmon-build
storage=(--root "$state/storage" --runroot /run/pushmon-build --storage-driver vfs)
export BUILDAH_ISOLATION=chroot

if [ "$clean" -eq 1 ]; then
  if command -v buildah >/dev/null && [ -d "$state/storage" ]; then
    buildah "${storage[@]}" rm --all >/dev/null 2>&1 || true
  fi
  rm -rf "$state" /run/pushmon-build
  say "removed $state"
  exit 0
fi

# ---- tools ---------------------------------------------------------------------------
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v podman >/dev/null || need+=(podman containernetworking-plugins)
# runc rather than crun: crun refuses hosts with hybrid cgroups (v1 plus a v2 mount).
command -v runc >/dev/null || need+=(runc)
command -v curl >/dev/null || need+=(curl)
[ "$base" = debootstrap ] && ! command -v debootstrap >/dev/null && need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
mkdir -p "$state"

image_exists() { podman "${storage[@]}" image exists "$1"; }

# ---- debootstrap bases ---------------------------------------------------------------
runtime_base=gcr.io/distroless/cc-debian12:nonroot
builder_base=docker.io/library/rust:1.95-bookworm
if [ "$base" = debootstrap ]; then
  runtime_base=localhost/pushmon-base:bookworm
  builder_base=localhost/pushmon-builder:bookworm
  if ! image_exists "$runtime_base"; then
    say "debootstrap bookworm (minbase) -> $runtime_base"
    rootfs="$state/rootfs-bookworm"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$state/debootstrap.log" 2>&1 ||
      { tail -n 20 "$state/debootstrap.log" >&2; exit 1; }
    # Slim it the way the bookworm-slim image is: no package lists, docs or man pages.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    tar -C "$rootfs" --numeric-owner -c . |
      podman "${storage[@]}" import --change 'CMD ["/bin/bash"]' - "$runtime_base" >/dev/null
    rm -rf "$rootfs"
  fi
  if [ "$binary" = source ] && ! image_exists "$builder_base"; then
    say "builder base: $runtime_base + rustc-web, cargo-web, gcc (Debian) -> $builder_base"
    container="$(buildah "${storage[@]}" from "$runtime_base")"
    # rustc-web (1.85 in bookworm, newer in bookworm-security) is Debian's Rust for
    # building browsers; new enough for edition 2024.
    buildah "${storage[@]}" run "$container" -- sh -ec '
      echo "deb http://deb.debian.org/debian-security bookworm-security main" \
        > /etc/apt/sources.list.d/security.list
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        rustc-web cargo-web gcc libc6-dev binutils ca-certificates >/dev/null
      rm -rf /var/lib/apt/lists/*
      cargo --version; rustc --version'
    buildah "${storage[@]}" commit --rm "$container" "$builder_base" >/dev/null
  fi
fi

# ---- build ---------------------------------------------------------------------------
build_args=(
  --build-arg "BUILDER_IMAGE=$builder_base"
  --build-arg "RUNTIME_IMAGE=$runtime_base"
  --build-arg "VERSION=$version"
  --build-arg "REVISION=$revision"
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
)
if [ "$host_ca" = auto ]; then
  host_ca=no
  compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null && host_ca=yes
fi
[ "$host_ca" = yes ] && build_args+=(--volume /etc/ssl/certs:/etc/ssl/certs:ro)
started=$SECONDS
if [ "$binary" = source ]; then
  say "building $tag from source (deploy/Dockerfile, builder $builder_base, runtime $runtime_base)"
  say "(log: $state/build.log)"
  buildah "${storage[@]}" bud --isolation chroot --layers \
    -f deploy/Dockerfile --ignorefile deploy/Dockerfile.dockerignore \
    "${build_args[@]}" -t "$tag" . >"$state/build.log" 2>&1 ||
    { tail -n 30 "$state/build.log" >&2; exit 1; }
  grep -E '^(\[[0-9]+/[0-9]+\] )?(STEP|COMMIT)' "$state/build.log" || true
else
  if [ ! -x target/release/pushmon ]; then
    say "cargo build --release (waits if another build holds the lock)"
    cargo build --release --locked
  fi
  say "building $tag from the host's target/release/pushmon (runtime stage of deploy/Dockerfile)"
  context="$(mktemp -d)"
  trap 'rm -rf "$context"' EXIT
  mkdir -p "$context/out/data"
  strip --strip-debug -o "$context/out/pushmon" target/release/pushmon
  # The runtime stage with its COPY --from=builder /out/... reading out/... from this
  # context instead; everything else (labels, env, user, volume) is the Dockerfile's.
  {
    sed -n '/^ARG RUNTIME_IMAGE=/p' deploy/Dockerfile
    sed -n '/^FROM \${RUNTIME_IMAGE}/,$p' deploy/Dockerfile |
      sed -e 's#--from=builder ##' -e 's# /out/# out/#'
  } >"$context/Containerfile"
  grep -q 'COPY out/pushmon ' "$context/Containerfile" ||
    { echo "cannot derive the runtime stage from deploy/Dockerfile" >&2; exit 1; }
  # The data dir keeps the runtime user's ownership through the COPY --chown.
  buildah "${storage[@]}" bud --isolation chroot -f "$context/Containerfile" \
    "${build_args[@]}" -t "$tag" "$context" >"$state/build.log" 2>&1 ||
    { tail -n 30 "$state/build.log" >&2; exit 1; }
fi
size_bytes="$(podman "${storage[@]}" image inspect --format '{{.Size}}' "$tag")"
say "built $tag in $((SECONDS - started)) s: $(numfmt --to=iec "$size_bytes") ($size_bytes bytes)"
podman "${storage[@]}" image inspect --format \
  'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} env={{.Config.Env}} volumes={{.Config.Volumes}} version={{index .Config.Labels "org.opencontainers.image.version"}}' "$tag"

[ "$run" -eq 1 ] || exit 0

# ---- run and push one heartbeat ------------------------------------------------------
# Host networking, so no bridge or port-forwarding setup is needed; pushmon listens on
# loopback only. Explicit ulimits: podman's defaults can exceed the hard limits of a
# sandboxed host, and the OCI runtime then fails to start the container. The other
# flags mirror the Kubernetes securityContext.
name="pushmon-smoke-$$"
volume="$name-data"
token="smoke-admin-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
url="http://127.0.0.1:$port"
cleanup() {
  if [ "$keep" -eq 0 ]; then
    podman "${storage[@]}" rm -f "$name" >/dev/null 2>&1 || true
    podman "${storage[@]}" volume rm -f "$volume" >/dev/null 2>&1 || true
  fi
  [ -n "${context:-}" ] && rm -rf "$context"
  return 0
}
trap cleanup EXIT
say "running $tag as $name on $url (read-only root, all capabilities dropped)"
podman "${storage[@]}" volume create "$volume" >/dev/null
nofile="$(ulimit -Hn)"
[ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
podman "${storage[@]}" --runtime runc run -d --name "$name" --network host \
  --ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096 \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  -v "$volume:/data" \
  -e "PUSHMON_LISTEN=127.0.0.1:$port" -e "PUSHMON_ADMIN_TOKEN=$token" \
  -e PUSHMON_LOG_FORMAT=json "$tag" >/dev/null

ready=0
for _ in $(seq 1 60); do
  if curl -fsS "$url/readyz" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.5
done
if [ "$ready" -ne 1 ]; then
  echo "pushmon did not become ready; its log:" >&2
  podman "${storage[@]}" logs "$name" >&2
  exit 1
fi
say "ready: $(curl -fsS "$url/readyz")"

monitor="$(curl -fsS -X POST "$url/api/monitors" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"name":"smoke","timeout_seconds":300}')"
monitor_id="$(jq -r .id <<<"$monitor")"
push_token="$(jq -r .push_token <<<"$monitor")"
say "created monitor $monitor_id ($(jq -r .status <<<"$monitor"))"
push="$(curl -fsS -X POST "$url/api/push/$push_token?status=up&msg=smoke")"
say "push answered: $push"
status="$(curl -fsS "$url/api/monitors/$monitor_id" -H "Authorization: Bearer $token" | jq -r .status)"
say "monitor status after the push: $status"
say "metrics: $(curl -fsS "$url/metrics" | grep -E '^pushmon_heartbeats_total\{status="up"\}')"
say "process user in the container: $(podman "${storage[@]}" top "$name" user huser args 2>/dev/null | tail -n1)"

podman "${storage[@]}" stop -t 20 "$name" >/dev/null
exit_code="$(podman "${storage[@]}" inspect --format '{{.State.ExitCode}}' "$name")"
say "stopped with SIGTERM: exit code $exit_code"

if [ "$push" = '{"ok":true}' ] && [ "$status" = up ] && [ "$exit_code" = 0 ]; then
  say "OK: $tag served a heartbeat; image size $(numfmt --to=iec "$size_bytes")"
else
  echo "smoke test failed; log:" >&2
  podman "${storage[@]}" logs "$name" >&2
  exit 1
fi
