"""The sha256 of every data file a fixed set of generator commands writes: the "same seed, same bytes" ledger.

    python bench/shard_hashes.py > before.tsv     # on one commit
    python bench/shard_hashes.py > after.tsv      # on another
    diff before.tsv after.tsv                     # empty: nothing a generator writes has changed
    python bench/shard_hashes.py | diff bench/shard_hashes.tsv -   # against the ledger kept in the repo

Each command runs in its own process, once with `--num-proc 1` under PYTHONHASHSEED=1 and once with
`--num-proc 2` under PYTHONHASHSEED=2; a file whose bytes differ between the two is flagged
`UNSTABLE`. Parquet shards are listed without the content fingerprint in their names (it is a hash of
the same bytes), so a renamed-but-identical shard does not show as a change. The dataset card
(README.md) is left out: it records versions and prose, not data.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

COMMANDS = [
    "tinysql-gen --level 1-8 -n 300 --seed 3",
    "tinysql-gen --level 2,5,7 -n 200 --seed 1 --synonyms --format both --dialect postgres",
    "multmath-gen --digits 3x3,2x5 -n 600 --num-valid 50 --num-test 50 --seed 1",
    "multmath-gen --level 2-3 -n 300 --num-valid 20 --num-test 20 --seed 2 --format plain --cot none",
    "multmath-gen --digits 2x2 -n 300 --num-valid 20 --num-test 20 --no-commutative-leakage",
    "mcq-gen --level 1-4 -n 300 --seed 2",
    "mcq-gen --level 3 -n 200 --seed 5 --counterfactual swap --labels numbers,lower --style paren",
    "mcq-gen --level 4 -n 200 --seed 6 --counterfactual labels --sources order,multiplication --distractors far",
]
PROGRAMS = {"tinysql-gen": "tinysql.cli", "multmath-gen": "multmath.cli", "mcq-gen": "mcq.cli"}


def hashes(folder: Path) -> dict[str, str]:
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "README.md":
            name = re.sub(r"-[0-9a-f]{10}-(\d+-of-\d+\.parquet)$", r"-\1", str(path.relative_to(folder)))
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run(command: str, num_proc: int, hash_seed: str, tmp: Path) -> dict[str, str]:
    prog, *args = command.split()
    out = tmp / f"{abs(hash(command))}-{num_proc}"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run([sys.executable, "-m", PROGRAMS[prog], *args, "--num-proc", str(num_proc), "--out", str(out)],
                   check=True, capture_output=True, env=env)
    return hashes(out)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        jobs = [(command, pool.submit(run, command, 1, "1", Path(tmp)), pool.submit(run, command, 2, "2", Path(tmp)))
                for command in COMMANDS]
        print("command\tfile\tsha256")
        for command, one, two in jobs:
            first, second = one.result(), two.result()
            for name in sorted(set(first) | set(second)):
                same = first.get(name) == second.get(name)
                print(f"{command}\t{name}\t{first.get(name)}" + ("" if same else f"\tUNSTABLE {second.get(name)}"))


if __name__ == "__main__":
    main()
