#!/usr/bin/env bash
# Validates deploy/ offline: the Kubernetes manifests against the Kubernetes API schemas
# (kubernetes-validate, strict: unknown fields are errors), the Job's shell wrapper, the
# Grafana dashboard's queries against the metrics stampede pushes, and the Dockerfile.
# No cluster, no Docker, no cargo. Run from anywhere: deploy/validate.sh
set -euo pipefail

cd "$(dirname "$0")/.."

KV_VERSION=1.37.0
K8S_VERSION=1.33.0
VENV=target/k8s-venv

# 1. The validator, in a venv of its own under target/ (ignored by git).
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if [ "$("$VENV/bin/kubernetes-validate" --version 2>/dev/null || true)" != "$KV_VERSION" ] \
    || ! "$VENV/bin/python" -c 'import yaml' 2>/dev/null; then
    "$VENV/bin/pip" install -q "kubernetes-validate==$KV_VERSION" pyyaml
fi
PY="$VENV/bin/python"

# 2. The manifests (kustomization.yaml is kustomize's, not a Kubernetes resource).
manifests=()
for f in deploy/k8s/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
echo "== Kubernetes manifests: kubernetes-validate $KV_VERSION --strict, Kubernetes $K8S_VERSION"
"$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$K8S_VERSION" "${manifests[@]}"

# A control: strict validation must reject an unknown field, or the pass above means little.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sed 's/^  completionMode: Indexed$/  completionsMode: Indexed/' deploy/k8s/job.yaml >"$scratch/typo.yaml"
if "$VENV/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$K8S_VERSION" \
    "$scratch/typo.yaml" >/dev/null 2>&1; then
    echo "FAIL: a Job with the unknown field spec.completionsMode passed strict validation" >&2
    exit 1
fi
echo "ok   control: a Job with the unknown field spec.completionsMode is rejected"

# 3. What the schemas cannot see: the kustomization's list, the Job's numbers, the script.
echo "== Consistency"
"$PY" - "$scratch" <<'EOF'
import os, re, sys, yaml

scratch = sys.argv[1]
k8s = "deploy/k8s"

def docs(name):
    with open(os.path.join(k8s, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]

def fail(msg):
    sys.exit(f"FAIL: {msg}")

kust = docs("kustomization.yaml")[0]
for r in kust["resources"]:
    if not os.path.exists(os.path.join(k8s, r)):
        fail(f"kustomization.yaml lists {r}, which does not exist")
if "merge-job.yaml" in kust["resources"]:
    fail("kustomization.yaml must not list merge-job.yaml: the merge runs after the load")
print(f"ok   kustomization.yaml lists {', '.join(kust['resources'])} (all present; not the merge job)")

job = docs("job.yaml")[0]
spec = job["spec"]
pod = spec["template"]["spec"]
c = pod["containers"][0]
env = {e["name"]: e.get("value") for e in c["env"]}
if spec.get("completionMode") != "Indexed":
    fail("job.yaml: completionMode must be Indexed")
if not (spec["completions"] == spec["parallelism"] == int(env["SEGMENTS"])):
    fail(f"job.yaml: completions {spec['completions']}, parallelism {spec['parallelism']} "
         f"and SEGMENTS {env['SEGMENTS']} differ")
if spec.get("backoffLimit") != 0 or pod.get("restartPolicy") != "Never":
    fail("job.yaml: a segment must not be retried (backoffLimit 0, restartPolicy Never)")
if env.get("START_AT") != "2026-01-01T00:00:00Z":
    fail("job.yaml: START_AT is not the placeholder the docs tell to replace")
print(f"ok   job.yaml: Indexed, completions = parallelism = SEGMENTS = {spec['completions']}, "
      f"no retries, START_AT placeholder {env['START_AT']}")

def mounts(pod_spec):
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in pod_spec["volumes"] if "persistentVolumeClaim" in v}
    return {m["mountPath"]: claims.get(m["name"])
            for m in pod_spec["containers"][0]["volumeMounts"]}

pvc = docs("pvc.yaml")[0]
if pvc["spec"]["accessModes"] != ["ReadWriteMany"]:
    fail("pvc.yaml: the results volume must be ReadWriteMany")
for name in ["job.yaml", "merge-job.yaml", "results-pod.yaml"]:
    d = docs(name)[0]
    ps = d["spec"]["template"]["spec"] if d["kind"] == "Job" else d["spec"]
    if mounts(ps).get("/results") != pvc["metadata"]["name"]:
        fail(f"{name}: /results is not the claim {pvc['metadata']['name']}")
    for cont in ps["containers"]:
        sc = cont["securityContext"]
        if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                and sc["capabilities"]["drop"] == ["ALL"] and ps["securityContext"]["runAsNonRoot"]):
            fail(f"{name}: container {cont['name']} is not locked down")
print("ok   job, merge job and results pod mount the ReadWriteMany claim "
      f"{pvc['metadata']['name']} at /results; non-root, read-only root, no capabilities")

cm = docs("configmap.yaml")[0]
script = cm["data"]["scenario.rhai"]
if "/script/scenario.rhai" not in c["args"][0]:
    fail("job.yaml does not run /script/scenario.rhai")
with open(os.path.join(scratch, "scenario.rhai"), "w") as f:
    f.write(script)
with open(os.path.join(scratch, "load.sh"), "w") as f:
    f.write(c["args"][0])
merge = docs("merge-job.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
with open(os.path.join(scratch, "merge.sh"), "w") as f:
    f.write(merge["args"][0])
with open(os.path.join(scratch, "env"), "w") as f:
    for k, v in env.items():
        f.write(f"{k}={v}\n")
EOF

# 4. The Job's shell wrapper, run by /bin/sh with a stand-in stampede: the arguments each
#    index gets, and the exit codes it passes on.
echo "== The Job's /bin/sh wrapper (a stand-in stampede)"
sh -n "$scratch/load.sh"
sh -n "$scratch/merge.sh"
mkdir "$scratch/bin"
cat >"$scratch/bin/stampede" <<'EOF'
#!/bin/sh
# Records its arguments and exits FAKE_CODE. With FAKE_SLEEP it runs until SIGTERM, then
# "stops gracefully": takes a moment and exits 0, as stampede does on one SIGTERM.
printf '%s\n' "$@" >"$FAKE_ARGS"
if [ -n "${FAKE_SLEEP:-}" ]; then
    sleep "$FAKE_SLEEP" &
    s=$!
    trap 'kill "$s"; echo TERM >>"$FAKE_ARGS"; sleep 0.3; exit 0' TERM
    wait "$s"
fi
exit "$FAKE_CODE"
EOF
chmod +x "$scratch/bin/stampede"
run_wrapper() { # index code
    env -i PATH="$scratch/bin:/usr/bin:/bin" FAKE_ARGS="$scratch/args" FAKE_CODE="$2" \
        JOB_COMPLETION_INDEX="$1" $(cat "$scratch/env") /bin/sh "$scratch/load.sh" 2>/dev/null
}
for case in "0 0 0" "2 0 0" "3 1 0" "1 2 2" "1 3 3" "1 4 4"; do
    set -- $case
    code=0
    run_wrapper "$1" "$2" || code=$?
    want_seg="$(($1 + 1))/4"
    grep -qx -- "$want_seg" "$scratch/args" || { echo "FAIL: index $1 did not get --segment $want_seg" >&2; exit 1; }
    grep -qx -- "/results/segment-$(($1 + 1)).json" "$scratch/args" \
        || { echo "FAIL: index $1 did not write segment-$(($1 + 1)).json" >&2; exit 1; }
    [ "$code" = "$3" ] || { echo "FAIL: stampede exiting $2 made the pod exit $code, not $3" >&2; exit 1; }
done
echo "ok   JOB_COMPLETION_INDEX 0..3 -> --segment 1/4..4/4, --json /results/segment-1..4.json"
echo "ok   exit codes: stampede 0 -> pod 0, 1 (a threshold on one segment) -> 0, 2/3/4 -> 2/3/4"
env -i PATH="$scratch/bin:/usr/bin:/bin" FAKE_ARGS="$scratch/args" FAKE_CODE=7 FAKE_SLEEP=30 \
    JOB_COMPLETION_INDEX=0 $(cat "$scratch/env") /bin/sh "$scratch/load.sh" 2>/dev/null &
wrapper=$!
sleep 0.5
kill -TERM "$wrapper"
code=0
wait "$wrapper" || code=$?
grep -qx TERM "$scratch/args" || { echo "FAIL: SIGTERM to the wrapper did not reach stampede" >&2; exit 1; }
[ "$code" = 0 ] || { echo "FAIL: after SIGTERM the pod exited $code, not stampede's 0 after its graceful stop" >&2; exit 1; }
echo "ok   SIGTERM to the pod's shell reaches stampede; the pod waits for its graceful stop and exits with its code"
grep -q -- '--prometheus-label "testid=$TESTID"' "$scratch/load.sh" \
    || { echo "FAIL: the Job does not label its series with testid" >&2; exit 1; }
echo "ok   the Job pushes to \$PROMETHEUS_URL with --prometheus-label testid=\$TESTID"

# 5. The script in the ConfigMap, if a stampede binary is at hand (none is built here).
STAMPEDE_BIN=${STAMPEDE:-}
if [ -z "$STAMPEDE_BIN" ]; then
    STAMPEDE_BIN=$(command -v stampede || true)
fi
if [ -z "$STAMPEDE_BIN" ]; then
    # The newer of the local builds, if any.
    for b in target/release/stampede target/debug/stampede; do
        if [ -x "$b" ] && { [ -z "$STAMPEDE_BIN" ] || [ "$b" -nt "$STAMPEDE_BIN" ]; }; then
            STAMPEDE_BIN=$b
        fi
    done
fi
if [ -n "$STAMPEDE_BIN" ]; then
    echo "== The ConfigMap's scenario.rhai: $STAMPEDE_BIN check"
    "$STAMPEDE_BIN" check "$scratch/scenario.rhai"
else
    echo "== The ConfigMap's scenario.rhai: skipped (no stampede binary; set STAMPEDE=path)"
fi

# 6. The Grafana dashboard: valid JSON, and every query names only metrics stampede pushes.
echo "== Grafana dashboard"
"$PY" - <<'EOF'
import json, re, sys

path = "deploy/grafana/stampede-dashboard.json"
with open(path) as f:
    d = json.load(f)

METRICS = {
    "stampede_http_requests_total",
    "stampede_http_request_duration_seconds_bucket",
    "stampede_http_request_duration_seconds_sum",
    "stampede_http_request_duration_seconds_count",
    "stampede_failures_total",
    "stampede_checks_total",
    "stampede_iterations_total",
    "stampede_failed_iterations_total",
    "stampede_dropped_iterations_total",
    "stampede_users",
}
LABELS = {"scenario", "method", "name", "le", "kind", "check", "result", "segment", "testid"}
FUNCS = {"sum", "rate", "histogram_quantile", "vector", "by", "or", "label_values"}

def fail(msg):
    sys.exit(f"FAIL: {path}: {msg}")

if d.get("schemaVersion") != 39:
    fail("schemaVersion is not 39")
variables = {v["name"]: v for v in d["templating"]["list"]}
ds = variables.get("DS_PROMETHEUS")
if not ds or ds["type"] != "datasource" or ds["query"] != "prometheus":
    fail("no datasource variable DS_PROMETHEUS of type prometheus")
for name in ["testid", "segment"]:
    if name not in variables or variables[name]["type"] != "query":
        fail(f"no query variable {name}")
if "label_values(stampede_http_requests_total, testid)" not in variables["testid"]["definition"]:
    fail("the testid variable does not list the testid label's values")

exprs = []  # (where, expr)
def walk(node, where):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                exprs.append((where, v))
            walk(v, node.get("title", where))
    elif isinstance(node, list):
        for v in node:
            walk(v, where)
walk(d["panels"], "?")
for v in d["templating"]["list"]:
    if v["type"] == "query":
        exprs.append((f"variable {v['name']}", v["definition"]))

ids = set()
for where, e in exprs:
    # Strip strings, Grafana variables and durations, then what is left are names.
    bare = re.sub(r'"[^"]*"', '""', e)
    bare = re.sub(r"\$\{?\w+\}?", "", bare)
    used = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare))
    metrics = {u for u in used if u.startswith("stampede_")}
    if not metrics:
        fail(f"panel {where!r}: {e} names no stampede metric")
    unknown = metrics - METRICS
    if unknown:
        fail(f"panel {where!r}: unknown metrics {sorted(unknown)} in {e}")
    labels = set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", bare))
    labels |= set(re.findall(r"label_values\([^,]*,\s*(\w+)\s*\)", bare))
    for group in re.findall(r"by\s*\(([^)]*)\)", bare):
        labels |= {l.strip() for l in group.split(",") if l.strip()}
    if labels - LABELS:
        fail(f"panel {where!r}: unknown labels {sorted(labels - LABELS)} in {e}")
    others = used - metrics - labels - FUNCS
    if others:
        fail(f"panel {where!r}: unexpected names {sorted(others)} in {e}")
    ids |= metrics

panels = d["panels"]
if len({p["id"] for p in panels}) != len(panels):
    fail("panel ids are not unique")
kinds = sorted({p["type"] for p in panels})
print(f"ok   {path}: valid JSON, schemaVersion 39, variables "
      f"{', '.join(variables)}; {len(panels)} panels ({', '.join(kinds)})")
print(f"ok   {len(exprs)} queries name only stampede's metrics and labels; they use "
      f"{len(ids)} of the {len(METRICS)} series names")
EOF

# 7. The Dockerfile.
echo "== Dockerfile"
grep -qx 'FROM rust:1-bookworm AS build' Dockerfile
grep -q 'cargo build --release --locked' Dockerfile
grep -qx 'FROM debian:bookworm-slim' Dockerfile
grep -qx 'USER 10001:10001' Dockerfile
grep -qx 'WORKDIR /work' Dockerfile
grep -qx 'ENTRYPOINT \["stampede"\]' Dockerfile
grep -qx 'target/' .dockerignore
echo "ok   Dockerfile: rust:1-bookworm build (--locked), debian:bookworm-slim runtime, USER 10001:10001, WORKDIR /work, ENTRYPOINT [\"stampede\"]; .dockerignore excludes target/"
echo "== All of deploy/ validated (offline: no cluster, no image build)"
