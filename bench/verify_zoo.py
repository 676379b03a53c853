"""Check the shipped tier the way a user would: for each shipped registry entry (or the names given),
`zoo download NAME` (offline: the shipped copy, sha256-checked), `AutoModelForCausalLM.from_pretrained`
on the folder it prints, and `zoo-eval` on the records the registry measured (the first `n` of the split
it names: a twin's release is measured on fewer); then a table of the registry's metric against the
re-measured one.

    python bench/verify_zoo.py                                   # every shipped entry
    python bench/verify_zoo.py multmath-3x3-aux-nano --build-dir zoo-build

The corpora are taken from --build-dir (as `zoo build` left them) when they are there with the
registry's command, else generated with that command into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cards import zoo  # noqa: E402
from cards.build import without_out  # noqa: E402
from cards.card import read_corpus_metadata  # noqa: E402
from cards.recipe import option_value  # noqa: E402


def corpus_for(entry: dict, build_dir: Path, scratch: Path) -> Path:
    command = entry["corpus"]["command"]
    name = option_value(command, "--out")
    kept = build_dir / "corpora" / name
    if kept.is_dir() and without_out(read_corpus_metadata(kept).command) == without_out(command):
        return kept
    folder = scratch / name
    if not folder.exists():
        subprocess.run([*without_out(command), "--out", str(folder), "--num-proc", str(os.cpu_count() or 1)],
                       check=True, capture_output=True)
    return folder


def verify(entry: dict, build_dir: Path, scratch: Path) -> list:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    got = subprocess.run([sys.executable, "-m", "cards.zoo", "download", entry["name"]], capture_output=True,
                         text=True, env=env, check=True).stdout.strip()
    subprocess.run([sys.executable, "-c", "import sys; from transformers import AutoModelForCausalLM as M; "
                    "M.from_pretrained(sys.argv[1])", got], check=True, capture_output=True, env=env)
    corpus = corpus_for(entry, build_dir, scratch)
    began = time.time()
    out = subprocess.run(["zoo-eval", "--model", got, "--data", str(corpus), "--config", entry["level"],
                          "--split", entry["metrics"]["split"], "--samples", str(entry["metrics"]["n"]),
                          "--no-progress"], capture_output=True, text=True, env=env, check=True).stdout
    measured = json.loads(out)
    key = "exact_match"
    return [entry["name"], entry["metrics"]["n"], measured["n"], f"{entry['metrics'][key]:.4f}",
            f"{measured[key]:.4f}", "yes" if round(measured[key], 4) == entry["metrics"][key] else "NO",
            f"{time.time() - began:.0f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="entries to check (default: every shipped one)")
    parser.add_argument("--build-dir", type=Path, default=Path("zoo-build"), help="where zoo build kept corpora")
    args = parser.parse_args()
    entries = [e for e in zoo.read_registry() if e["shipped"] and (not args.names or e["name"] in args.names)]
    print("| checkpoint | registry n | zoo-eval n | registry exact | zoo-eval exact | same | eval seconds |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for entry in entries:
            print("| " + " | ".join(map(str, verify(entry, args.build_dir, Path(scratch)))) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
