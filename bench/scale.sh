#!/usr/bin/env bash
# Memory and spawn time at scale: 1,000 / 10,000 / 30,000 virtual users that each make a
# request and then wait, against stampede's own demo server (loopback only). Prints peak RSS,
# RSS per user over the 1-user baseline, and how long spawning took.
#
#   bench/scale.sh                 # 1000 10000 30000
#   bench/scale.sh 10000           # just one size
#
# Users at 1,000 and 10,000 keep their keep-alive connection open while they wait. The
# 30,000-user run sends `Connection: close`: 30,000 open connections would need 60,000 file
# descriptors (both ends are on this machine) and the hard limit here is lower; stampede
# raises its soft limit to the hard one and warns when a run may exceed it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=$PWD/target/release/stampede
SIZES=("${@:-1000 10000 30000}")
# shellcheck disable=SC2206
SIZES=(${SIZES[*]})
OUT=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$OUT"' EXIT

# shellcheck source=bench/demo-server.sh
. bench/demo-server.sh
start_demo_server "$OUT"

script() {
    local extra=$1
    cat > "$OUT/wait.rhai" <<RHAI
const options = #{ wait_time: constant(4) };
fn t() { http::get("/health", #{ expect: 200${extra} }); }
RHAI
}

measure() {   # users, script-extra
    local users=$1
    script "$2"
    /usr/bin/time -f "%M" -o "$OUT/rss" taskset -c 1 "$BIN" run "$OUT/wait.rhai" --host "$URL" \
        --users "$users" --spawn-rate 10000 --run-time 6s --quiet --json "$OUT/r.json" > /dev/null
    python3 - "$users" "$(cat "$OUT/rss")" "$OUT/r.json" <<'PY'
import json, sys
users, rss_kb, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
r = json.load(open(path))
fails = r["aggregated"]["failures"]
spawn = r.get("spawn_s")
print(f"{users}\t{rss_kb}\t{r['aggregated']['requests']}\t{fails}\t{spawn:.2f}" if spawn is not None else f"{users}\t{rss_kb}\t{r['aggregated']['requests']}\t{fails}\t-")
PY
}

echo "| users | peak RSS MiB | KiB per user (over 1 user) | requests | failures | all users started after |"
echo "|---:|---:|---:|---:|---:|---:|"
base=$(measure 1 "" | cut -f2)
for n in "${SIZES[@]}"; do
    extra=""
    [ "$n" -gt 10000 ] && extra=', headers: #{ Connection: "close" }'
    IFS=$'\t' read -r users rss reqs fails spawn < <(measure "$n" "$extra")
    per=$(( (rss - base) / users ))
    printf '| %s | %.0f | %s | %s | %s | %s s |\n' "$users" "$(echo "$rss/1024" | bc -l)" "$per" "$reqs" "$fails" "$spawn"
done
