"""Learning curves of zoo-train runs: the periodic validation evaluations of each run's log.jsonl as a
markdown table (step, exact match, digit or label accuracy, and accuracy per answer digit where the
corpus has digits), so that runs of different objectives can be compared step by step.

    python bench/curves.py zoo-build/runs/multmath-3x3-aux-nano zoo-build/runs/multmath-3x3-nocot-nano

The folders are runs that `zoo build` (or zoo-train) wrote, read from their log.jsonl, or releases
(the shipped `zoo/NAME`), read from the curve.json that a run keeps beside its weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.loop import read_log  # noqa: E402
from train.output import read_curve, validation_curve  # noqa: E402


def evaluations(run: Path) -> list[dict]:
    return validation_curve(read_log(run)) if (run / "log.jsonl").is_file() else read_curve(run)


def row(run: Path, e: dict) -> str:
    score = e.get("digit_accuracy", e.get("label_accuracy", e.get("normalized_match")))
    digits = " ".join(f"{x:.2f}" for x in e.get("digit_accuracy_by_position", []))
    return f"| {run.name} | {e['step']:,} | {e.get('exact_match', 0):.3f} | {score if score is None else f'{score:.3f}'} | {digits} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path,
                        help="zoo-train run folders or releases (log.jsonl or curve.json)")
    args = parser.parse_args(argv)
    missing = next((run for run in args.runs
                    if not any((run / name).is_file() for name in ("log.jsonl", "curve.json"))), None)
    if missing is not None:  # checked before printing, so a bad folder leaves no half table
        print(f"curves: {missing} has neither log.jsonl nor curve.json", file=sys.stderr)
        return 2
    print("| run | step | exact match | digit / label accuracy | per digit c0 (lowest) .. |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        for e in evaluations(run):
            print(row(run, e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
