#!/usr/bin/env bash
# The kernel's share of receive stamps: CPU per read (and per send) on loopback TCP with
# plain recv, recvmsg, and recvmsg with SO_TIMESTAMPNS, interleaved, medians of ROUNDS
# (default 7). See bench/latency/stamp-cost.c. Needs gcc. Loopback only.
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${ROUNDS:-7}
BIN=$(mktemp)
OUT=$(mktemp)
trap 'rm -f "$BIN" "$OUT"' EXIT
gcc -O2 -pthread -o "$BIN" latency/stamp-cost.c
for _ in $(seq "$ROUNDS"); do
  for mode in 0 1 2 3; do "$BIN" "$mode" >> "$OUT"; done
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, read, send, reads, stamps = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((float(read), float(send), int(stamps) == int(reads)))
base = statistics.median(r[0] for r in rows["recv"])
print(f"medians of {sys.argv[2]} rounds, ns of thread CPU")
print("| read with | per read | over recv | per send (the sender's side) | every read stamped |")
print("|---|---:|---:|---:|---|")
for name, r in rows.items():
    read = statistics.median(x[0] for x in r)
    send = statistics.median(x[1] for x in r)
    print(f"| {name} | {read:.0f} | {read - base:+.0f} | {send:.0f} | {'yes' if all(x[2] for x in r) else 'no'} |")
PY
