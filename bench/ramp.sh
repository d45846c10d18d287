#!/usr/bin/env bash
# Ramp accuracy: 0 → 10,000 users over 10 s (k6's ramping-vus, `--stages 10s:10000,2s:10000`)
# against stampede's own demo server (loopback only), then how many users were running at
# each second against what the stages wanted. Each user makes a request and waits 4 s.
#
#   bench/ramp.sh              # 10000 users over 10 s
#   bench/ramp.sh 2000 5       # 2000 users over 5 s
#
# Columns: second, users wanted by the stages at that second, users running when the
# second's metrics were merged (the JSON `series[].users`), the difference in % of the
# target. The run's own clock and the merge tick are both aligned to whole seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-10000}
SECONDS_UP=${2:-10}
cargo build --release --quiet
BIN=$PWD/target/release/stampede
OUT=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$OUT"' EXIT

# shellcheck source=bench/demo-server.sh
. bench/demo-server.sh
start_demo_server "$OUT"

cat > "$OUT/wait.rhai" <<'RHAI'
const options = #{ wait_time: constant(4) };
fn t() { http::get("/health", #{ expect: 200, headers: #{ connection: "close" } }); }
RHAI
taskset -c 1 "$BIN" run "$OUT/wait.rhai" --host "$URL" --stages "${SECONDS_UP}s:${USERS},2s:${USERS}" \
    --quiet --json "$OUT/r.json" > /dev/null
python3 - "$OUT/r.json" "$USERS" "$SECONDS_UP" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); users = int(sys.argv[2]); up = float(sys.argv[3])
print("| second | target users | running | error |")
print("|---:|---:|---:|---:|")
worst = 0.0
for s in d["series"]:
    t = s["second"]
    if t > up + 2:
        break
    target = min(users, int(users * t / up))
    err = 100.0 * (s["users"] - target) / max(target, 1)
    worst = max(worst, abs(err)) if target else worst
    print(f"| {t} | {target} | {s['users']} | {err:+.2f}% |")
print(f"\nworst error: {worst:.2f}% of the target")
PY
