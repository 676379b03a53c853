"""Interrupt a parallel `tinysql-gen` at random moments and count how each run ended.

Each trial starts `tinysql-gen --level 4 -n 1000000 --num-proc 8 --out TMP` in its own process group, waits
for its first worker, sleeps a random delay (0 to 0.5 s: the early ones land while the pool is forked),
sends SIGINT or SIGTERM, and waits up to --timeout seconds for stderr to close. A clean end is exit 130
with `tinysql-gen: interrupted` last on stderr and no output folder; a hang is a run whose stderr is
still held at the timeout (the main process or an orphaned worker of its group); the group is then killed.

    python bench/interrupts.py --trials 80 --seed 1
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DELAYS = (0, 0, 0.001, 0.005, 0.02, 0.05, 0.2, 0.5)


def has_children(pid: int) -> bool:
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                return True
        except (OSError, IndexError):
            pass
    return False


def trial(rng: random.Random, timeout: float) -> str:
    """How one interrupted run ended: clean, hang or other."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "big"
        process = subprocess.Popen([sys.executable, "-m", "tinysql.cli", "--level", "4", "-n", "1000000",
                                    "--num-proc", "8", "--out", str(out)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        while not has_children(process.pid) and process.poll() is None:
            time.sleep(0.002)
        time.sleep(rng.choice(DELAYS))
        process.send_signal(rng.choice([signal.SIGINT, signal.SIGTERM]))
        try:
            _, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return "hang"
        lines = err.strip().splitlines()
        clean = process.returncode == 130 and lines[-1:] == ["tinysql-gen: interrupted"] and not out.exists()
        return "clean" if clean else "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40, help="interrupted runs (default 40)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the delays and signals (default 1)")
    parser.add_argument("--timeout", type=float, default=20, help="seconds a run may take to end (default 20)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    ends = collections.Counter(trial(rng, args.timeout) for _ in range(args.trials))
    print("| trials | clean | hang | other |\n|---|---|---|---|")
    print(f"| {args.trials} | {ends['clean']} | {ends['hang']} | {ends['other']} |")


if __name__ == "__main__":
    main()
