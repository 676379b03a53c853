"""Benchmark `multmath-gen`: examples/s per size with and without validation, and the full default 4×4 run.

    python bench/bench_multmath.py                       # sizes table + the full 808,000/1,000/1,000 4x4 run
    python bench/bench_multmath.py --sizes 4x4 --no-full # quick

First table: per size, items/s of `make` in one process (render + check, i.e. the workers' share),
and examples/s of a real `multmath-gen` run of -n examples with --num-proc workers. Second table: the
issue's target, `multmath-gen --digits 4x4 --format icot` with default counts, wall seconds and CPU
seconds of all its processes, validated and not. Every run is a subprocess writing to a
temporary folder. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import functools
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from multmath.generator import GENERATOR, Options


def make_rate(n: int, m: int, count: int, validate: bool) -> float:
    """Items/s of `make` alone, in this process."""
    made = functools.partial(GENERATOR.make_item, Options(validate=validate), (n, m))
    start = time.perf_counter()
    for index in range(count):
        made(index)
    return count / (time.perf_counter() - start)


def run_cli(args: list[str], validate: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all its processes) of one `multmath-gen` run."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "multmath.cli", *args, "--out", str(Path(tmp) / "out")]
        if not validate:
            command.append("--no-validate")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2x2,4x4,3x7,8x8,12x12,20x20")
    parser.add_argument("-n", type=int, default=20_000, help="examples per size in the first table")
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--no-full", action="store_true", help="skip the full default 4x4 run")
    args = parser.parse_args()

    print(f"| size | make ex/s, 1 core, validated | make ex/s, unvalidated | check share | "
          f"multmath-gen ex/s ({args.num_proc} procs), validated | unvalidated |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        n, m = map(int, size.split("x"))
        count = min(args.n, 4_000) if (n, m) == (2, 2) else args.n
        checked, unchecked = make_rate(n, m, count, True), make_rate(n, m, count, False)
        cli = ["--digits", size, "-n", str(count), "--num-valid", "0", "--num-test", "0",
               "--num-proc", str(args.num_proc)]
        wall_checked, _ = run_cli(cli, True)
        wall_unchecked, _ = run_cli(cli, False)
        print(f"| {size} | {checked:,.0f} | {unchecked:,.0f} | {1 - checked / unchecked:.0%} | "
              f"{count / wall_checked:,.0f} | {count / wall_unchecked:,.0f} |", flush=True)

    if not args.no_full:
        print(f"\n| full default 4x4 run (808,000 + 1,000 + 1,000), --num-proc {args.num_proc} | wall s | CPU s "
              "(all processes) | ex/s |\n|---|---|---|---|")
        for validate in (True, False):
            wall, cpu = run_cli(["--digits", "4x4", "--format", "icot", "--num-proc", str(args.num_proc)],
                                   validate)
            print(f"| {'validated' if validate else 'unvalidated'} | {wall:.1f} | {cpu:.1f} | "
                  f"{810_000 / wall:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
