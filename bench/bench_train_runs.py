"""The long CPU training runs behind the trainer's speed goals: each prints its exact commands, runs
them, and prints a table from the folders' metrics.json and run manifests (training_args.json).

    python bench/bench_train_runs.py tinysql --out /tmp/runs     # nano, TinySQL level 1, ~14 min on 2 cores
    python bench/bench_train_runs.py multiply --out /tmp/runs    # ICoT, no-CoT and aux on 4x4, ~20 min each
    python bench/bench_train_runs.py multiply --digits 3x3 --out /tmp/runs
    python bench/bench_train_runs.py report /tmp/runs/*          # the table again, for finished folders

Corpora are generated under --out first (seeded: the same corpus every time). `--dry-run` only
prints the commands. On a GPU the same commands run unchanged (bf16 is picked automatically);
the recipe for the published 4x4 table is in RECIPE below.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.manifest import RunManifest  # noqa: E402

TINYSQL = {
    "name": "corpus-tinysql-l1",
    "corpus": ["tinysql-gen", "--level", "1", "-n", "60000", "--seed", "1", "--num-proc", "2"],
    "runs": {"nano-tinysql-l1": ["--preset", "nano", "--batch-size", "32", "--lr", "1e-3", "--max-steps", "4000",
                                 "--schedule", "cosine", "--warmup-steps", "100", "--eval-every", "500",
                                 "--eval-samples", "200"]},
}
# 2-layer, 4-head models like Bai et al.'s, 256 wide, with step budgets of about 20 minutes each on a
# 2-core machine: ICoT sees 20 epochs of 29,000 examples (the 4x4 CoT is gone after 6 of them), no-CoT
# and aux one pass over the 808,000 training examples; all at the same learning rate
SHAPE = ["--preset", "nano", "--arch", "gpt2", "--layers", "2", "--heads", "4", "--batch-size", "32",
         "--eval-every", "2000", "--eval-samples", "200"]
LR = ["--lr", "5e-4", "--schedule", "constant_with_warmup", "--warmup-steps", "100"]


def multiply(digits: str) -> dict:
    return {
        "name": f"corpus-multmath-{digits}",
        "corpus": ["multmath-gen", "--digits", digits, "-n", "808000", "--num-valid", "1000", "--num-test", "1000",
                   "--seed", "1", "--num-proc", "2"],
        "runs": {
            f"icot-{digits}": [*SHAPE, "--objective", "icot", "--train-samples", "29000", "--epochs", "20", *LR],
            f"nocot-{digits}": [*SHAPE, "--objective", "nocot", "--epochs", "1", *LR],
            f"aux-{digits}": [*SHAPE, "--objective", "aux", "--epochs", "1", *LR],
        },
    }


RECIPE = """\
GPU recipe for the published 4x4 table (Bai et al.: 2 layers, 4 heads, width 768; ICoT ~100 %,
standard fine-tuning < 1 %, auxiliary loss ~99 %), one H100/H200 each, bf16 picked automatically:

  multmath-gen --digits 4x4 -n 808000 --num-valid 1000 --num-test 1000 --seed 1 --out m4
  S="--preset tiny --arch gpt2 --layers 2 --heads 4 --hidden 768 --batch-size 32 --eval-every 2000"
  zoo-train --data m4 $S --objective icot  --icot-per-epoch 8 --icot-lambda 4 --lr 5e-5 \\
            --schedule constant --warmup-steps 0 --epochs 15 --out icot-4x4
  zoo-train --data m4 $S --objective nocot --lr 5e-5 --schedule constant --warmup-steps 0 --epochs 15 --out nocot-4x4
  zoo-train --data m4 $S --objective aux   --aux-layer -1 --aux-heads 0,1 --aux-weight 1 \\
            --lr 5e-5 --schedule constant --warmup-steps 0 --epochs 15 --out aux-4x4
"""


def run(command: list[str], dry: bool) -> None:
    print("$ " + shlex.join(command), flush=True)
    if not dry:
        subprocess.run(command, check=True)


def campaign(spec: dict, out: Path, dry: bool) -> list[Path]:
    corpus = out / spec["name"]
    if not corpus.exists():
        run([*spec["corpus"], "--out", str(corpus)], dry)
    folders = []
    for name, args in spec["runs"].items():
        folder = out / name
        if not (folder / "metrics.json").exists():
            run(["zoo-train", "--data", str(corpus), *args, "--out", str(folder), "--overwrite"], dry)
        folders.append(folder)
    return folders


def report(folders: list[Path]) -> None:
    print("\n| run | objective | parameters | steps | minutes | exact match | digit accuracy | other |")
    print("|---|---|---|---|---|---|---|---|")
    for folder in folders:
        if not (folder / "metrics.json").exists():
            print(f"| {folder.name} | (not finished) | | | | | | |")
            continue
        metrics = json.loads((folder / "metrics.json").read_text())
        run = RunManifest.from_folder(folder)
        other = {k: v for k, v in metrics.items() if k in ("normalized_match", "execution_match", "label_accuracy",
                                                            "digit_accuracy_by_position")}
        digit = metrics.get("digit_accuracy")
        print(f"| {folder.name} | {run.config.objective.name} | {run.parameters['total']:,} | {run.steps} | "
              f"{run.seconds / 60:.1f} | {metrics.get('exact_match', 0):.3f} | "
              f"{'' if digit is None else f'{digit:.3f}'} | {_short(other)} |")
        curve = [(e["step"], e["eval"]["exact_match"]) for e in map(json.loads, (folder / "log.jsonl").open())
                 if "eval" in e]
        if curve:
            print(f"|   validation exact match by step: {', '.join(f'{s}: {v:.2f}' for s, v in curve)} |||||||")


def _short(values: dict) -> str:
    return ", ".join(f"{k} {[round(x, 2) for x in v] if isinstance(v, list) else round(v, 3)}"
                     for k, v in values.items())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["tinysql", "multiply", "report", "recipe"])
    p.add_argument("folders", nargs="*", type=Path, help="for report: finished run folders")
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument("--digits", default="4x4", help="multiply: the problem size (default 4x4)")
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args()
    if args.what == "recipe":
        print(RECIPE)
        return
    if args.what == "report":
        report(args.folders)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    folders = campaign(TINYSQL if args.what == "tinysql" else multiply(args.digits), args.out, args.dry_run)
    if not args.dry_run:
        report(folders)
    if args.what == "multiply":
        print("\n" + RECIPE)


if __name__ == "__main__":
    sys.exit(main())
