"""Reads the peer rig's output on stdin and prints each tool's CPU per request as a ratio
to wrk's (or $REFERENCE's) for the same workload, measured in the same interleaved round.

    bench/peers.sh ... | python3 bench/ratios.py     (bench/peers.sh does this itself)
"""

import os
import re
import sys

CPU_COLUMN = "tool CPU µs/req (steady)"


def median_of(cell: str) -> float:
    """`8.4 (7.9–9.9)` → 8.4"""
    return float(re.match(r"\s*([\d.]+)", cell).group(1))


def main() -> None:
    header, rows = None, []
    for line in sys.stdin:
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if CPU_COLUMN in cells:
            header = cells
        elif header and not set(cells[0]) <= set("-: "):
            row = dict(zip(header, cells))
            if re.match(r"\s*[\d.]+", row.get(CPU_COLUMN, "")):
                rows.append(row)
    if not rows:
        sys.exit("no result table found in the input")
    reference = os.environ.get("REFERENCE", "wrk")
    wrk = {
        r["W"]: median_of(r[CPU_COLUMN])
        for r in rows
        if r["tool"] == reference or r["tool"].startswith(reference + " ")
    }
    print()
    print(f"| tool | W | CPU µs/request (median) | × {reference} |")
    print("|---|---|---:|---:|")
    for r in sorted(rows, key=lambda r: (r["W"], median_of(r[CPU_COLUMN]))):
        us = median_of(r[CPU_COLUMN])
        ratio = f"{us / wrk[r['W']]:.2f}" if r["W"] in wrk else "—"
        print(f"| {r['tool']} | {r['W']} | {us} | {ratio} |")


if __name__ == "__main__":
    main()
