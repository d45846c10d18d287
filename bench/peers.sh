#!/usr/bin/env bash
# stampede against its peers, in one command: builds stampede (release), installs wrk, nginx
# and Locust if missing, and runs the shared peer rig (../shared/bench/run-peers.sh) with
# stampede's W1, W2 and W3 scripts added to the same interleaved, pinned runs. Prints the
# rig's markdown table (requests/s, CPU µs per request, peak RSS) and then each tool's CPU
# per request as a ratio to wrk's in the same round (bench/ratios.py).
#
#   bench/peers.sh                          # wrk, Locust (FastHttpUser and HttpUser), stampede
#   TOOLS=wrk,goose,locust-fast bench/peers.sh --reps 3
#   TOOLS=wrk,k6,locust-fast bench/peers.sh --workloads W3 --reps 3
#   bench/peers.sh --reps 1 --duration 5    # quicker, noisier
#   bench/peers.sh --selfcheck-w3           # W3 against a wrong body: does every check fail?
#
# W3 (POST a small JSON body, parse a 2 KB JSON answer with a list of 20 items, check two
# fields) is this project's workload, not the shared rig's: the rig is copied to a scratch
# folder, W3's endpoints are added to the copy's nginx.conf (bench/w3/add-endpoints.py), and
# each tool's W3 script (bench/w3/) is passed as an extra case. The peers' W3 cases run when
# their tool is in TOOLS (wrk, k6, locust-fast). stampede-select is W3 written with GJSON
# selectors (`r.json("items.#")`, as k6's `r.json(selector)`): only what is checked is
# converted.
#
# Only loopback traffic: the rig runs everything in a network namespace with just `lo`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RIG_SRC="${BENCH_RIG:-$ROOT/../shared/bench/run-peers.sh}"
[ -x "$RIG_SRC" ] || { echo "peer rig not found at $RIG_SRC (set BENCH_RIG)" >&2; exit 1; }

cargo build --release --quiet
BIN="$ROOT/target/release/stampede"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
command -v locust >/dev/null || python3 -m pip install -q "locust==${LOCUST_VERSION:-2.47.0}"

RIG_DIR=$(mktemp -d)
OUT=$(mktemp)
trap 'rm -rf "$OUT" "$RIG_DIR"' EXIT
cp -r "$(dirname "$RIG_SRC")"/. "$RIG_DIR"/
python3 "$ROOT/bench/w3/add-endpoints.py" "$RIG_DIR/nginx.conf" "$ROOT/bench/w3/body.json"
export W2_LUA="$RIG_DIR/workloads/wrk-w2.lua"   # wrk's W3 reuses the rig's JSON decoder

args=("$@")
if [ "${1:-}" = "--selfcheck-w3" ]; then
    export W3_PATH=/w3_bad
    args=(--workloads W3 --reps 1 --duration 3)
fi
TOOLS="${TOOLS:-wrk,locust-fast,locust-http}"
has() { [[ ",$TOOLS," == *",$1,"* ]]; }
run() { echo "$BIN run $ROOT/bench/$1.rhai --host {base} --users {users} --spawn-rate 1000 --run-time {duration}s --workers {threads} --quiet --bench-line"; }
cases=(--extra "stampede|W1|$(run w1)" --extra "stampede|W2|$(run w2)" --extra "stampede|W3|$(run w3)"
       --extra "stampede-select|W3|$(run w3-select)")
has wrk && cases+=(--extra "wrk|W3|wrk -t{threads} -c{users} -d{duration}s -s $ROOT/bench/w3/wrk-w3.lua {base}${W3_PATH:-/w3}")
k6w3() { echo "k6 run --quiet --vus {users} --duration {duration}s -e BASE={base} $ROOT/bench/w3/$1.js"; }
has k6 && cases+=(--extra "k6|W3|$(k6w3 k6-w3)" --extra "k6-select|W3|$(k6w3 k6-w3-select)")
has locust-fast && cases+=(--extra "locust-fast|W3|locust -f $ROOT/bench/w3/locust-w3.py --headless -u {users} -r {users} -t {duration}s -H {base} --only-summary --loglevel WARNING --stop-timeout 0 --exit-code-on-error 0 W3Fast")
export K6_NO_USAGE_REPORT=true

BENCH_NO_INSTALL=1 "$RIG_DIR/run-peers.sh" --tools "$TOOLS" --workloads "${WORKLOADS:-W1,W2,W3}" \
    "${cases[@]}" "${args[@]}" | tee "$OUT"
python3 "$ROOT/bench/ratios.py" < "$OUT"
