#!/usr/bin/env bash
# What the scripting layer costs per request: `examples/native_w1.rs` (50 concurrent loops
# through stampede's own HTTP client, no script) against `stampede run bench/w1.rhai` (the
# same requests from a Rhai task), one worker thread each, pinned to CPU 1 with nginx on
# CPU 0, interleaved. Prints CPU µs per request for each run and the median difference.
#
#   bench/overhead.sh            # 3 rounds of 8 s
#   bench/overhead.sh 5 10       # 5 rounds of 10 s
#
# Needs nginx (the shared rig's config serves /json on 127.0.0.1:8089); loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-8}
missing=()
command -v nginx >/dev/null || missing+=(nginx)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
cargo build --release --quiet --bin stampede --example native_w1
BIN=$PWD/target/release/stampede
NATIVE=$PWD/target/release/examples/native_w1
CONF=$PWD/../shared/bench/nginx.conf
NGX=$(mktemp -d)
mkdir -p "$NGX/logs" "$NGX/tmp"
taskset -c 0 nginx -p "$NGX" -c "$CONF"
trap 'nginx -p "$NGX" -c "$CONF" -s quit 2>/dev/null || true' EXIT
sleep 0.5

cpu_us() { # command... → CPU µs per request (the command prints its request count)
    local out requests
    out=$( { /usr/bin/time -f 'CPU %U %S' taskset -c 1 "$@" ; } 2>&1 )
    requests=$(grep -oE '([0-9]+) requests' <<<"$out" | head -1 | grep -oE '[0-9]+')
    awk -v r="$requests" '/^CPU/ {printf "%.2f\n", ($2+$3)*1e6/r}' <<<"$out"
}

natives=(); scripts=()
for i in $(seq "$ROUNDS"); do
    n=$(cpu_us "$NATIVE" http://127.0.0.1:8089/json 50 "$SECONDS_PER_RUN")
    s=$(cpu_us "$BIN" run bench/w1.rhai --host http://127.0.0.1:8089 -u 50 -r 1000 \
        -t "${SECONDS_PER_RUN}s" --workers 1 -q)
    echo "round $i: native $n µs, script $s µs"
    natives+=("$n"); scripts+=("$s")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mn=$(median "${natives[@]}"); ms=$(median "${scripts[@]}")
echo
echo "| loop | CPU µs/request (median of $ROUNDS) |"
echo "|---|---:|"
echo "| native (same client, no script) | $mn |"
echo "| stampede run bench/w1.rhai | $ms |"
echo "| scripting overhead | $(awk -v a="$ms" -v b="$mn" 'BEGIN {printf "%.2f", a-b}') |"
