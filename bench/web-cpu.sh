#!/usr/bin/env bash
# What the web UI costs while it watches a big test: 10,000 users (a request every 4 s each,
# ~2,500 requests/s) against the demo API, started from the UI's own API, with two pages'
# worth of live updates open (server-sent event streams, what a browser tab receives).
# Prints the CPU of the UI's server thread and of the run's supervising thread (which builds
# the page's state document once a second), each as a share of one core, next to the
# workers' CPU. Loopback only.
#
#   bench/web-cpu.sh            # 10000 users, 30 s measured
#   USERS=2000 SECONDS_MEASURED=20 bench/web-cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=$PWD/target/release/stampede
USERS=${USERS:-10000}
MEASURE=${SECONDS_MEASURED:-30}
OUT=$(mktemp -d)
trap 'kill $SERVER $WEB $SSE1 $SSE2 2>/dev/null || true; rm -rf "$OUT"' EXIT

# shellcheck source=bench/demo-server.sh
. bench/demo-server.sh
start_demo_server "$OUT"

cat > "$OUT/wait.rhai" <<'RHAI'
const options = #{ wait_time: constant(4) };
fn t() { http::get("/health", #{ expect: 200 }); }
RHAI
taskset -c 1 "$BIN" web "$OUT/wait.rhai" --host "$URL" --web-port 0 --quiet > "$OUT/web.txt" 2>&1 &
WEB=$!
for _ in $(seq 50); do grep -q http:// "$OUT/web.txt" 2>/dev/null && break; sleep 0.1; done
UI=$(grep -o 'http://[0-9.:]*' "$OUT/web.txt" | head -1)
curl -sN "$UI/api/events" > /dev/null & SSE1=$!
curl -sN "$UI/api/events" > /dev/null & SSE2=$!
curl -sf -X POST "$UI/api/start" -H 'content-type: application/json' \
    -d "{\"users\": $USERS, \"spawn_rate\": 10000, \"host\": \"\", \"run_time_s\": null}" > /dev/null
sleep 5   # spawning done, steady load

cpu_ns() {  # per thread name: nanoseconds on a CPU (schedstat), summed
    for t in /proc/"$WEB"/task/*; do
        echo "$(tr ' ' '_' < "$t/comm") $(cut -d' ' -f1 "$t/schedstat")"
    done | awk '{a[$1]+=$2} END {for (k in a) print k, a[k]}' | sort
}
cpu_ns > "$OUT/t0"; sleep "$MEASURE"; cpu_ns > "$OUT/t1"
state=$(curl -s "$UI/api/state")
curl -sf -X POST "$UI/api/stop" -H 'content-type: application/json' -d '{}' > /dev/null
echo "| thread | CPU, share of one core over ${MEASURE} s |"
echo "|---|---:|"
join "$OUT/t0" "$OUT/t1" | awk -v s="$MEASURE" \
    '{ printf "| %s | %.3f %% |\n", $1, 100 * ($3 - $2) / 1e9 / s }'
python3 - "$state" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
agg = d["rows"][-1]
print(f"\nusers {d['users']}, requests {agg['requests']}, failures {agg['failures']}, "
      f"state document {len(sys.argv[1])} bytes a second")
PY
