#!/usr/bin/env bash
# stampede against its peers, in one command: builds stampede (release), installs wrk, nginx
# and Locust if missing, and runs the shared peer rig (../shared/bench/run-peers.sh) with
# stampede's W1 and W2 scripts added to the same interleaved, pinned runs. Prints the rig's
# markdown table (requests/s, CPU µs per request, peak RSS) and then each tool's CPU per
# request as a ratio to wrk's in the same round (bench/ratios.py).
#
#   bench/peers.sh                          # wrk, Locust (FastHttpUser and HttpUser), stampede
#   TOOLS=wrk,goose,locust-fast bench/peers.sh --reps 3
#   bench/peers.sh --reps 1 --duration 5    # quicker, noisier
#
# Only loopback traffic: the rig runs everything in a network namespace with just `lo`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RIG="${BENCH_RIG:-$ROOT/../shared/bench/run-peers.sh}"
[ -x "$RIG" ] || { echo "peer rig not found at $RIG (set BENCH_RIG)" >&2; exit 1; }

cargo build --release --quiet
BIN="$ROOT/target/release/stampede"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
command -v locust >/dev/null || python3 -m pip install -q "locust==${LOCUST_VERSION:-2.47.0}"

run() { echo "$BIN run $ROOT/bench/$1.rhai --host {base} --users {users} --spawn-rate 1000 --run-time {duration}s --workers {threads} --quiet --bench-line"; }
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
BENCH_NO_INSTALL=1 "$RIG" --tools "${TOOLS:-wrk,locust-fast,locust-http}" \
    --extra "stampede|W1|$(run w1)" \
    --extra "stampede|W2|$(run w2)" \
    "$@" | tee "$OUT"
python3 "$ROOT/bench/ratios.py" < "$OUT"
