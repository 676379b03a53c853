"""Same seed, same bytes: every generator writes identical folders whatever the hash seed and worker count.

Each command runs twice in separate processes, under PYTHONHASHSEED=1 with one worker and under
PYTHONHASHSEED=2 with two, so any choice that follows the iteration order of a set or dict of
strings, or the worker that made an item, shows up as a differing file.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COMMANDS = [
    "tinysql.cli --level 1-8 -n 120 --seed 3",
    "tinysql.cli --level 5,7 -n 120 --seed 1 --synonyms --format both --dialect postgres",
    "multmath.cli --digits 3x3 -n 300 --num-valid 30 --num-test 30 --seed 1",
    "multmath.cli --level 2-3 -n 200 --num-valid 20 --num-test 20 --seed 2 --format plain --cot none",
    "mcq.cli --level 1-4 -n 150 --seed 2",
]


def files_of(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", COMMANDS)
def test_same_bytes_under_other_hash_seed_and_worker_count(command, tmp_path):
    module, *args = command.split()
    runs = {}
    for hash_seed, num_proc in (("1", "1"), ("2", "2")):  # both at once: two processes, two cores
        cwd = tmp_path / f"hash{hash_seed}"  # the same relative --out, so the cards match too
        cwd.mkdir()
        runs[cwd / "out"] = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--num-proc", num_proc, "--out", "out"], cwd=cwd,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed, "HF_HUB_OFFLINE": "1"})
    for process in runs.values():
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    first, second = (files_of(out) for out in runs)
    assert any(name.endswith(".parquet") for name in first)
    # a shard's name carries a hash of its bytes: differing bytes show as names found in one folder only
    differing = sorted(set(first) ^ set(second)) + [n for n in first if n in second and first[n] != second[n]]
    assert not differing, f"{command}: bytes depend on the hash seed or worker count: {differing}"
