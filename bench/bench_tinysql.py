"""Benchmark `tinysql-gen`: examples/s per level with and without validation, and peak memory as -n grows.

    python bench/bench_tinysql.py                      # every level, 5,000 examples each, 2 workers
    python bench/bench_tinysql.py --levels 3 -n 100000 # the headline target: level 3, 100,000 examples

Each measurement is a real `tinysql-gen` run in a subprocess (so peak RSS is that run's own), writing
to a temporary folder. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(level: int, count: int, num_proc: int, validate: bool) -> tuple[float, float]:
    """(seconds, peak RSS of the main process and its workers in MiB) of one generation run."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "tinysql.cli", "--level", str(level), "-n", str(count),
                   "--num-proc", str(num_proc), "--out", str(Path(tmp) / "out")]
        if not validate:
            command.append("--no-validate")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,2,3,4,5,6,7,8")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--memory", action="store_true", help="also measure peak RSS at level 3 for growing -n")
    args = parser.parse_args()

    print(f"| level | n | num-proc | validated ex/s | unvalidated ex/s | validated s | validation share |")
    print("|---|---|---|---|---|---|---|")
    for level in map(int, args.levels.split(",")):
        with_checks, _ = measure(level, args.n, args.num_proc, True)
        without, _ = measure(level, args.n, args.num_proc, False)
        share = max(0.0, (with_checks - without) / with_checks)
        print(f"| {level} | {args.n} | {args.num_proc} | {args.n / with_checks:,.0f} | {args.n / without:,.0f} "
              f"| {with_checks:.1f} | {share:.0%} |", flush=True)
    if args.memory:
        print("\n| n (level 3) | seconds | peak RSS of one run (MiB) |\n|---|---|---|")
        for count in (10_000, 50_000, 200_000):
            seconds, peak = measure(3, count, 1, True)
            print(f"| {count} | {seconds:.1f} | {peak:.0f} |", flush=True)


if __name__ == "__main__":
    main()
