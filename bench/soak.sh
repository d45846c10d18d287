#!/usr/bin/env bash
# Soak: 5,000 users for 5 minutes against stampede's own demo server (loopback only), with
# stampede's RSS and open file descriptors sampled every 10 s. After warm-up both must be
# flat (within ±5 % of their median): nothing may grow with the number of requests.
#
#   bench/soak.sh                       # 5000 users, 300 s
#   USERS=2000 DURATION=60 bench/soak.sh
#   BIN=/tmp/stampede bench/soak.sh     # a given binary, no build
#
# Prints one row per sample and a verdict per series; exits 1 if a series is not flat.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-5000}
DURATION=${DURATION:-300}
WARMUP=${WARMUP:-60}
if [ -z "${BIN:-}" ]; then   # BIN=/path/to/stampede measures a given build
    cargo build --release --quiet
    BIN=$PWD/target/release/stampede
fi
OUT=$(mktemp -d)
trap 'kill $SERVER $RUN 2>/dev/null || true; rm -rf "$OUT"' EXIT

# shellcheck source=bench/demo-server.sh
. bench/demo-server.sh
start_demo_server "$OUT"

# Each user polls, keeps its connection, and sometimes fails (a 404) so the failure maps
# are exercised too; ~2,500 requests/s in all.
cat > "$OUT/soak.rhai" <<'RHAI'
const options = #{ wait_time: between(1.0, 3.0) };
fn health() { http::get("/health", #{ expect: 200 }); }
fn missing() { http::get(`/cities/${unique_id()}`, #{ name: "/cities/[id]" }); }
RHAI

taskset -c 1 "$BIN" run "$OUT/soak.rhai" --host "$URL" --users "$USERS" --spawn-rate 1000 \
    --run-time "${DURATION}s" --quiet --json "$OUT/r.json" > "$OUT/summary.txt" &
RUN=$!
printf '%6s %10s %6s\n' "t (s)" "RSS (MiB)" "fds"
: > "$OUT/samples"
for t in $(seq 10 10 "$DURATION"); do
    sleep 10
    kill -0 $RUN 2>/dev/null || break
    rss=$(awk '/VmRSS/ {print $2}' /proc/$RUN/status)
    fds=$(ls /proc/$RUN/fd | wc -l)
    printf '%6d %10.1f %6d\n' "$t" "$(awk "BEGIN { print $rss / 1024 }")" "$fds"
    echo "$t $rss $fds" >> "$OUT/samples"
done
wait $RUN || true
grep -E "^Ran|requests" "$OUT/summary.txt" | head -2
python3 - "$OUT/samples" "$WARMUP" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
after = [r for r in rows if r[0] > float(sys.argv[2])]
ok = True
for i, name in [(1, "RSS"), (2, "fds")]:
    vals = [r[i] for r in after]
    if not vals:
        print(f"{name}: no samples after warm-up"); ok = False; continue
    med = statistics.median(vals)
    spread = max(abs(v - med) / med for v in vals) * 100
    flat = spread <= 5
    ok &= flat
    print(f"{name}: median {med:.0f}, min {min(vals):.0f}, max {max(vals):.0f}, "
          f"largest deviation {spread:.1f}% -> {'flat' if flat else 'NOT FLAT'}")
sys.exit(0 if ok else 1)
PY
