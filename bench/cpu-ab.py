#!/usr/bin/env python3
"""CPU per request of two (or more) stampede binaries, interleaved and paired.

    bench/cpu-ab.py OLD NEW [--workload w1] [--reps 40] [--requests 100000]

Starts the shared rig's nginx on 127.0.0.1:8089 pinned to CPU 0 (loopback only), then
runs each binary in turn, pinned to CPU 1: `-u USERS --workers 1 -i N` of bench/<workload>.rhai
(10 users unless `--users`).
CPU is the child's user + system time (getrusage), over requests. The order alternates
each round, and each round's NEW/OLD ratio is taken within the round, so the slow and fast
spells of a shared VM fall on both alike; the median of those ratios is the answer.

Why not `bench/peers.sh`: its 3-5 runs per tool resolve about 10 %; a budget of a few per
cent needs tens of paired runs.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONF = os.path.join(ROOT, "..", "shared", "bench", "nginx.conf")


def start_nginx(prefix):
    for d in ("logs", "tmp"):
        os.makedirs(os.path.join(prefix, d), exist_ok=True)
    subprocess.run(["taskset", "-c", "0", "nginx", "-p", prefix, "-c", CONF], check=True)
    for _ in range(100):
        try:
            subprocess.run(["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:8089/json"], check=True)
            return
        except subprocess.CalledProcessError:
            time.sleep(0.05)
    sys.exit("nginx did not answer on 127.0.0.1:8089")


def cpu_per_request(binary, workload, requests, users):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        ["taskset", "-c", "1", binary, "run", os.path.join(ROOT, "bench", f"{workload}.rhai"),
         "--host", "http://127.0.0.1:8089", "-u", str(users), "--workers", "1",
         "-i", str(requests), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user = (after.ru_utime - before.ru_utime) * 1e6 / requests
    system = (after.ru_stime - before.ru_stime) * 1e6 / requests
    return user + system, user, system


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binaries", nargs="+")
    p.add_argument("--workload", default="w1")
    p.add_argument("--reps", type=int, default=40)
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--users", type=int, default=10)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as prefix:
        start_nginx(prefix)
        try:
            runs = {b: [] for b in a.binaries}
            for r in range(a.reps):
                order = a.binaries if r % 2 == 0 else a.binaries[::-1]
                for b in order:
                    runs[b].append(cpu_per_request(b, a.workload, a.requests, a.users))
        finally:
            subprocess.run(["nginx", "-p", prefix, "-c", CONF, "-s", "quit"], check=False)
    base = a.binaries[0]
    print(f"{a.workload.upper()}, {a.users} users, {a.reps} interleaved rounds of {a.requests} requests, CPU µs per request")
    print("| binary | total | user | system | paired ratio to the first (q1–q3) |")
    print("|---|---:|---:|---:|---:|")
    for b in a.binaries:
        med = [statistics.median(x[i] for x in runs[b]) for i in range(3)]
        ratios = sorted(x[0] / y[0] for x, y in zip(runs[b], runs[base]))
        q = lambda f: ratios[int(f * (len(ratios) - 1))]
        print(f"| {b} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.2f} | "
              f"{statistics.median(ratios):.3f} ({q(0.25):.3f}–{q(0.75):.3f}) |")


if __name__ == "__main__":
    main()
