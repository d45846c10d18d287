#!/usr/bin/env bash
# The equality table of scale-out: one process running bench/segments.rhai against the
# demo API, then N processes with --segment i/N and one --start-at against a second demo
# API, merged. Prints what each server counted, what the merge reports, and each segment's
# share of the arrival rate. Loopback only; the runs are pinned to nothing (N + 1
# processes on this machine's cores).
#
#   bench/segments.sh          # 4 segments
#   SEGMENTS=3 bench/segments.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEGMENTS=${SEGMENTS:-4}
cargo build --release --quiet
BIN=$PWD/target/release/stampede
OUT=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$OUT"' EXIT
server() {  # starts a demo API, prints its URL
    "$BIN" demo-server --port 0 > "$OUT/$1.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q 'listening on' "$OUT/$1.log" && break; sleep 0.05; done
    grep -o 'http://[0-9.:]*' "$OUT/$1.log" | head -1
}
WHOLE=$(server whole)
SPLIT=$(server split)
"$BIN" run bench/segments.rhai --host "$WHOLE" --quiet --json "$OUT/whole.json" > /dev/null
START=$(date -u -d '+3 sec' +%Y-%m-%dT%H:%M:%SZ)
RUNS=()
for i in $(seq "$SEGMENTS"); do
    "$BIN" run bench/segments.rhai --host "$SPLIT" --quiet --workers 1 \
        --segment "$i/$SEGMENTS" --start-at "$START" --json "$OUT/seg-$i.json" > /dev/null 2>&1 &
    RUNS+=($!)
done
wait "${RUNS[@]}"
"$BIN" merge "$OUT"/seg-*.json --quiet --json "$OUT/merged.json"
curl -s "$WHOLE/stats" > "$OUT/whole-stats.json"
curl -s "$SPLIT/stats" > "$OUT/split-stats.json"
python3 - "$OUT" "$SEGMENTS" <<'PY'
import glob, json, sys
out, n = sys.argv[1], int(sys.argv[2])
whole = json.load(open(f"{out}/whole.json"))
merged = json.load(open(f"{out}/merged.json"))
segs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/seg-*.json"))]
ws = json.load(open(f"{out}/whole-stats.json"))
ss = json.load(open(f"{out}/split-stats.json"))
ws, ss = ws.get("requests", ws), ss.get("requests", ss)
print(f"| at the server | whole run | {n} segments |")
print("|---|---:|---:|")
for route in sorted(set(ws) | set(ss)):
    print(f"| {route} | {ws.get(route, 0)} | {ss.get(route, 0)} |")
print()
print(f"| in the results | whole run | merged | segments |")
print("|---|---:|---:|---|")
def sc(d, name):
    return next(s for s in d["scenarios"] if s["name"] == name)
for name in ["writers", "batch", "readers"]:
    parts = " / ".join(str(sc(s, name)["iterations"]) for s in segs)
    print(f"| {name} iterations | {sc(whole, name)['iterations']} | {sc(merged, name)['iterations']} | {parts} |")
for key in ["aggregated"]:
    w, m = whole[key], merged[key]
    print(f"| requests | {w['requests']} | {m['requests']} | " + " / ".join(str(s[key]['requests']) for s in segs) + " |")
    for i, p in enumerate(["p50", "p90", "p95", "p99"]):
        print(f"| {p} ms | {w['percentiles_ms'][i]:.2f} | {m['percentiles_ms'][i]:.2f} | " +
              " / ".join(f"{s[key]['percentiles_ms'][i]:.2f}" for s in segs) + " |")
checks = lambda d: sum(c["pass"] for c in d["checks"])
print(f"| checks passed | {checks(whole)} | {checks(merged)} | " + " / ".join(str(checks(s)) for s in segs) + " |")
rate = [sc(s, "readers")["iterations"] for s in segs]
total = sum(rate)
print()
print("each segment's share of the arrival rate: " +
      ", ".join(f"{r / total * 100:.2f} %" for r in rate) + f" (1/{n} = {100 / n:.2f} %)")
print(f"merged run: {merged['duration_s']:.2f} s, segments started within "
      f"{(max(s['started_unix_ms'] for s in segs) - min(s['started_unix_ms'] for s in segs))} ms")
PY
