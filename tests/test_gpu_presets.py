"""The GPU tier starts: the 33m TinySQL recipe row of cards/recipe.json, its own zoo-train options with
only the length, batch and evaluation/checkpoint cadence shrunk, runs 3 optimizer steps on CPU with
finite losses (a 33M-parameter model is quick at batch size 1). `bench/bench_presets.py` does the same
for every GPU-tier shape and projects the full runs' cost."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

from conftest import script
from train import presets

RECIPE = Path(__file__).resolve().parents[1] / "cards" / "recipe.json"
STEPS = 3
DROPPED = {"--epochs", "--max-steps", "--batch-size", "--grad-accum", "--eval-every", "--eval-samples",
           "--eval-limit", "--save-every"}  # each takes a value


def smoke_options(train: str) -> list[str]:
    """The row's options without its length, batch, evaluation and checkpoint settings, plus tiny ones."""
    words, kept = shlex.split(train), []
    while words:
        word = words.pop(0)
        if word in DROPPED:
            words.pop(0)
        elif word != "--no-eval":
            kept.append(word)
    return kept + ["--max-steps", str(STEPS), "--batch-size", "1", "--grad-accum", "1", "--no-eval",
                   "--log-every", "1", "--no-progress"]


def test_33m_tinysql_recipe_row_starts(corpora, tmp_path):
    recipe = json.loads(RECIPE.read_text())
    row = next(r for r in recipe["checkpoints"] if r["tier"] == "gpu" and "--preset 33m" in r["train"]
               and recipe["corpora"][r["corpus"]].startswith("tinysql-gen"))
    options = smoke_options(row["train"])
    assert options[options.index("--config") + 1] == "level1"  # the corpus fixture is TinySQL level 1
    out = tmp_path / row["name"]
    done = script("train.cli", "--data", corpora / "sql", *options, "--out", out, env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
    assert [e["step"] for e in log] == [1, 2, 3]
    assert all(math.isfinite(e["loss"]) and math.isfinite(e["grad_norm"]) for e in log), log
    manifest = json.loads((out / "training_args.json").read_text())
    assert manifest["steps"] == STEPS and manifest["config"]["preset"] == "33m"
    assert manifest["architecture"] == "gpt_neo"
    assert manifest["parameters"] == presets.meta_counts("33m", vocab_size=manifest["vocab_size"])
    assert (out / "model.safetensors").is_file() and not (out / "checkpoints").exists()
