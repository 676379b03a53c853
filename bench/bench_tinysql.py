"""Benchmark `tinysql-gen`: examples/s, against the original TinySQL generator, per stage and per level.

    python bench/bench_tinysql.py --compare-original /tmp/tinysql-orig   # the original vs ours, 20k and 200k
    python bench/bench_tinysql.py --compare-original                     # no checkout: our own figures only
    python bench/bench_tinysql.py --compare-original PATH --counts 20000 --repeat 3   # median of 3 pairs
    python bench/bench_tinysql.py --profile 10000                        # where the time goes (cProfile, 1 process)
    python bench/bench_tinysql.py --floor 10000                          # CPU ms/item: checks, spans, the rest
    python bench/bench_tinysql.py --levels 3 -n 100000                   # validated vs unvalidated, per level

Every timed run is a whole process in a subprocess (start-up, generation and writing parquet), and its peak
RSS is that process's own (with its workers). `--compare-original PATH` runs, back to back for each count,
the original's CS3 pipeline (PATH is a checkout of withmartian/TinySQL: `generate_cs3(n)`, its
`batchitem_to_dict`, a pandas frame, `datasets.Dataset` with its two `train_test_split`s, then each split
written to parquet instead of pushed to the Hub; no validation, one process) and
`tinysql-gen --level 3 -n N --num-proc 2` (every label validated). The original's top-level package
`__init__` imports its training code (torch, trl, wandb); the run loads `TinySQL.training_data` without it,
which only spares the original start-up time. Prints markdown tables; the machine's load (`uptime`) goes
with them, since only ratios measured back to back on a quiet machine mean much.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ORIGINAL = """
import random, sys, types
from pathlib import Path
path, count, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
package = types.ModuleType("TinySQL")  # the package without its __init__ (training code: torch, trl, wandb)
package.__path__ = [str(path / "TinySQL")]
sys.modules["TinySQL"] = package
sys.path.insert(0, str(path))
import pandas as pd
from datasets import Dataset
from TinySQL.training_data.generate_cs3 import generate_cs3
from TinySQL.training_data.generate_datasets import batchitem_to_dict
random.seed(0)
frame = pd.DataFrame([batchitem_to_dict(item) for item in generate_cs3(count)])
splits = Dataset.from_pandas(frame).train_test_split(test_size=0.1, seed=420)
rest = splits["train"].train_test_split(test_size=0.15, seed=420)
out.mkdir()
for name, split in (("train", rest["train"]), ("validation", rest["test"]), ("test", splits["test"])):
    split.to_parquet(str(out / f"{name}.parquet"))
"""


class Run(NamedTuple):
    seconds: float  # wall clock
    cpu: float  # user + system seconds of the process and the workers it waited for
    rss: float  # peak resident memory in MiB of the process or one of its workers


def timed(command: list[str]) -> Run:
    """Wall clock, CPU time and peak RSS of one command."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{process.stderr.read().decode()[-2000:]}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def ours(level: int, count: int, num_proc: int, validate: bool = True) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "tinysql.cli", "--level", str(level), "-n", str(count),
                   "--num-proc", str(num_proc), "--out", str(Path(tmp) / "out")]
        return timed(command + ([] if validate else ["--no-validate"]))


def original(path: Path, count: int) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        return timed([sys.executable, "-c", ORIGINAL, str(path), str(count), str(Path(tmp) / "out")])


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def median_run(runs: list[Run]) -> Run:
    """The run of median wall-clock time."""
    return sorted(runs)[len(runs) // 2]


def compare(path: Path | None, counts: list[int], num_proc: int, repeat: int = 1) -> None:
    """For each count, `repeat` back-to-back pairs (the original, then ours); the median run of each is shown,
    with the CPU milliseconds per item (every process and worker) that bound the ratio on this many cores."""
    print(f"load average (1, 5, 15 min) before: {load()}; {os.cpu_count()} CPUs; median of {repeat} run(s) each\n")
    if path is None:
        print("| n | ours ex/s (validated) | seconds | CPU s | CPU ms/item | peak RSS MiB |\n|---|---|---|---|---|---|")
    else:
        print("| n | original ex/s (unvalidated) | ours ex/s (validated) | ours / original | original s (CPU s) "
              "| ours s (CPU s) | CPU ms/item original / ours | original RSS MiB | ours RSS MiB |"
              "\n|---|---|---|---|---|---|---|---|---|")
    for count in counts:
        theirs_runs, mine_runs = [], []
        for _ in range(repeat):
            if path is not None:
                theirs_runs.append(original(path, count))
            mine_runs.append(ours(3, count, num_proc))
        mine = median_run(mine_runs)
        if path is None:
            print(f"| {count:,} | {count / mine.seconds:,.0f} | {mine.seconds:.1f} | {mine.cpu:.1f} | "
                  f"{1000 * mine.cpu / count:.3f} | {mine.rss:.0f} |", flush=True)
            continue
        theirs = median_run(theirs_runs)
        print(f"| {count:,} | {count / theirs.seconds:,.0f} | {count / mine.seconds:,.0f} | "
              f"{theirs.seconds / mine.seconds:.2f}x | {theirs.seconds:.1f} ({theirs.cpu:.1f}) | {mine.seconds:.1f} "
              f"({mine.cpu:.1f}) | {1000 * theirs.cpu / count:.3f} / {1000 * mine.cpu / count:.3f} | "
              f"{theirs.rss:.0f} | {mine.rss:.0f} |", flush=True)
    print(f"\nload average after: {load()}; ours: tinysql-gen --level 3 -n N --num-proc {num_proc}")


def floor(count: int) -> None:
    """CPU milliseconds per level-3 item, timed directly in one process (no profiler): the label checks and the
    attribution spans, which every kept item pays, and the rest of making it (sampling, English, SQL, record)."""
    from tinysql import generate, validate
    from tinysql.generator import Options

    spent = collections.Counter()
    wrapped = [(validate, "parse"), (validate, "execute"), (validate, "validate"), (generate, "with_targets")]
    originals = [getattr(module, name) for module, name in wrapped]

    def clocked(name, function):
        def run(*args, **kwargs):
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - start
        return run

    options = Options()
    for index in range(500):  # pools, caches and the SQLite connection warmed first
        generate.make_record(options, 3, 10**8 + index)
    for (module, name), function in zip(wrapped, originals):
        setattr(module, name, clocked(name, function))
    try:
        start = time.process_time()
        for index in range(count):
            generate.make_record(options, 3, index)
        total = time.process_time() - start
    finally:
        for (module, name), function in zip(wrapped, originals):
            setattr(module, name, function)
    rows = {"checks: parse (sqlglot)": spent["parse"], "checks: execute (SQLite)": spent["execute"],
            "checks: names, aggregates, mentions": spent["validate"] - spent["parse"] - spent["execute"],
            "attribution spans": spent["with_targets"],
            "the rest (sampling, English, SQL, record)": total - spent["validate"] - spent["with_targets"]}
    print(f"CPU per level-3 item, {count:,} items in one process; load average {load()}\n")
    print("| part | ms/item | share |\n|---|---|---|")
    for part, seconds in rows.items():
        print(f"| {part} | {1000 * seconds / count:.3f} | {seconds / total:.0%} |")
    print(f"| make_record | {1000 * total / count:.3f} | 100% |")
    checks = (total - rows["the rest (sampling, English, SQL, record)"]) / count
    cores = os.cpu_count() or 1
    print(f"\nchecks + spans alone: {1000 * checks:.3f} ms/item, so at most {cores / checks:,.0f} items/s on {cores} "
          f"cores even if sampling, writing and start-up cost nothing; all of make_record: at most "
          f"{cores * count / total:,.0f} items/s.")


STAGES = {  # stage -> the functions whose cumulative time it is (module file suffix, function name)
    "sample query + context (query.py)": [("tinysql/query.py", "sample_spec")],
    "  of which sample rows (value pools)": [("tinysql/query.py", "sample_rows")],
    "English request (english.py)": [("tinysql/english.py", "choose_names"), ("tinysql/english.py", "describe")],
    "SQL text (query.py)": [("tinysql/query.py", "to_sql"), ("tinysql/query.py", "create_sql")],
    "validation (validate.py)": [("tinysql/validate.py", "validate")],
    "  parse (sqlglot)": [("tinysql/validate.py", "parse")],
    "  names + aggregates": [("tinysql/validate.py", "check_names"), ("tinysql/validate.py", "check_aggregates")],
    "  execute (SQLite)": [("tinysql/validate.py", "execute")],
    "  mentions": [("tinysql/validate.py", "check_mentions")],
    "JSON of record fields": [("json/__init__.py", "dumps"), ("tinysql/generate.py", "_label_key")],
    "attribution spans (attribution.py)": [("tinysql/attribution.py", "with_targets")],
    "keys (stable_hash)": [("cards/corpus.py", "stable_hash")],
    "write parquet": [("cards/dataset_folder.py", "add"), ("cards/dataset_folder.py", "close")],
    "dataset card": [("cards/generator.py", "finish")],
}
OWN = {"records -> Arrow (_run_chunk's own time)": ("cards/corpus.py", "_run_chunk")}  # self time, not cumulative


def profile(count: int) -> None:
    """cProfile of one in-process `tinysql-gen --level 3 -n count --num-proc 1`: seconds per stage."""
    import cProfile
    import pstats

    start = time.perf_counter()
    from tinysql.cli import main as tinysql_main
    imports = time.perf_counter() - start
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory() as tmp:
        profiler.runcall(tinysql_main, ["--level", "3", "-n", str(count), "--num-proc", "1", "--out",
                                        str(Path(tmp) / "out")])
    stats = pstats.Stats(profiler).stats
    total = max(entry[3] for entry in stats.values())
    print(f"cProfile of tinysql-gen --level 3 -n {count} --num-proc 1 (imports before it: {imports:.2f} s); "
          f"load average {load()}\n")
    print("| stage | seconds | share |\n|---|---|---|")
    for stage, functions in [*STAGES.items(), *((stage, [f]) for stage, f in OWN.items())]:
        column = 2 if stage in OWN else 3
        seconds = sum(entry[column] for (file, _, name), entry in stats.items()
                      if any(file.endswith(f) and name == n for f, n in functions))
        print(f"| {stage} | {seconds:.2f} | {seconds / total:.0%} |")
    print(f"| total (profiled) | {total:.2f} | 100% |")


def levels_table(levels: list[int], count: int, num_proc: int) -> None:
    print("| level | n | num-proc | validated ex/s | unvalidated ex/s | validated s | validation share |")
    print("|---|---|---|---|---|---|---|")
    for level in levels:
        with_checks = ours(level, count, num_proc, True).seconds
        without = ours(level, count, num_proc, False).seconds
        share = max(0.0, (with_checks - without) / with_checks)
        print(f"| {level} | {count} | {num_proc} | {count / with_checks:,.0f} | {count / without:,.0f} "
              f"| {with_checks:.1f} | {share:.0%} |", flush=True)


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare-original", nargs="?", const="", metavar="PATH",
                        help="a checkout of withmartian/TinySQL (without one: our own figures)")
    parser.add_argument("--counts", default="20000,200000", help="-n of the comparison runs (default 20000,200000)")
    parser.add_argument("--repeat", type=positive, default=1,
                        help="comparison runs per count; the median is shown (default 1)")
    parser.add_argument("--profile", type=int, metavar="N", help="cProfile N level-3 items in one process")
    parser.add_argument("--floor", type=positive, metavar="N", help="CPU ms per item of the checks, the spans and the rest "
                                                               "(N level-3 items, one process, timed directly)")
    parser.add_argument("--levels", default="1,2,3,4,5,6,7,8")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--memory", action="store_true", help="also measure peak RSS at level 3 for growing -n")
    args = parser.parse_args()

    if args.profile:
        return profile(args.profile)
    if args.floor:
        return floor(args.floor)
    if args.compare_original is not None:
        path = Path(args.compare_original) if args.compare_original else None
        if path is not None and not (path / "TinySQL" / "training_data" / "generate_cs3.py").is_file():
            print(f"{path} holds no TinySQL/training_data/generate_cs3.py: our own figures only\n")
            path = None
        return compare(path, [int(c) for c in args.counts.split(",")], args.num_proc, args.repeat)
    levels_table([int(level) for level in args.levels.split(",")], args.n, args.num_proc)
    if args.memory:
        print("\n| n (level 3) | seconds | peak RSS of one run (MiB) |\n|---|---|---|")
        for count in (10_000, 50_000, 200_000):
            run = ours(3, count, 1)
            print(f"| {count} | {run.seconds:.1f} | {run.rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
