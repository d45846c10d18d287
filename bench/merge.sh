#!/usr/bin/env bash
# `stampede merge` is O(files × request names), not O(requests): merges SEGMENTS result files
# of a 10-minute run (600 per-second rows each) and prints how long it takes.
#
#   bench/merge.sh              # 100 segments, 10 request names, 5 repetitions
#   SEGMENTS=20 NAMES=50 bench/merge.sh
#
# The files are made from one real result (a short run against the demo API, loopback
# only): its per-second rows repeated to 600 seconds and its requests copied under NAMES
# names, then written once per segment as i/SEGMENTS with the same fingerprint. The
# histograms are real ones, so decoding and adding them costs what it would.
set -euo pipefail
cd "$(dirname "$0")/.."
SEGMENTS=${SEGMENTS:-100}
NAMES=${NAMES:-10}
REPS=${REPS:-5}
cargo build --release --quiet
BIN=$PWD/target/release/stampede
OUT=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$OUT"' EXIT
"$BIN" demo-server --port 0 > "$OUT/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do grep -q 'listening on' "$OUT/server.log" && break; sleep 0.05; done
HOST=$(grep -o 'http://[0-9.:]*' "$OUT/server.log" | head -1)
cat > "$OUT/s.rhai" <<'RHAI'
let options = #{ scenarios: #{
    browse: #{ executor: "constant-arrival-rate", rate: 500, time_unit: "1s", duration: "3s",
               pre_allocated_users: 20, max_users: 200, exec: "browse" } } };
fn browse() { http::get("/health"); http::get(`/cities/${random_int(1, 9)}`, #{ on_error: "return" }); }
RHAI
"$BIN" run "$OUT/s.rhai" --host "$HOST" --quiet --json "$OUT/one.json" > /dev/null 2>&1 || true
python3 - "$OUT" "$SEGMENTS" "$NAMES" <<'PY'
import copy, json, sys
out, segments, names = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = json.load(open(f"{out}/one.json"))
def widen(part):
    rows = part["series"]
    part["series"] = [dict(copy.deepcopy(rows[i % len(rows)]), second=i + 1) for i in range(600)]
    base = part["requests"]
    part["requests"] = [dict(copy.deepcopy(base[i % len(base)]), name=f"/route/{i}") for i in range(names)]
widen(d)
for s in d["scenarios"]:
    widen(s)
for i in range(1, segments + 1):
    d["run"]["segment"] = f"{i}/{segments}"
    json.dump(d, open(f"{out}/seg-{i}.json", "w"))
PY
TIMES=()
for _ in $(seq "$REPS"); do
    start=$(date +%s%N)
    "$BIN" merge "$OUT"/seg-*.json --quiet --json "$OUT/merged.json" 2> /dev/null
    end=$(date +%s%N)
    TIMES+=("$(( (end - start) / 1000000 ))")
done
MEDIAN=$(printf '%s\n' "${TIMES[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
EACH=$(du -k --apparent-size "$OUT/seg-1.json" | cut -f1)
echo "| segments | request names | seconds per file | KiB per file | merge median (ms) | runs (ms) |"
echo "|---:|---:|---:|---:|---:|---|"
echo "| $SEGMENTS | $NAMES | 600 | $EACH | $MEDIAN | ${TIMES[*]} |"
python3 - "$OUT/merged.json" "$SEGMENTS" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"merged: {m['aggregated']['requests']} requests, {len(m['series'])} seconds, "
      f"{len(m['requests'])} names, missing segments: {m['run']['merged']['missing']}")
PY
