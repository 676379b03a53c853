"""Direct logit attribution against the logits, on zoo checkpoints and their LayerNorm-free twins.

    python bench/dla.py tinysql-l1-nano tinysql-l1-nano-lnfree          # zoo names or checkpoint folders
    python bench/dla.py tinysql-l1-nano ~/runs/twin --data tinysql-l1 -n 16 --top 6

Each checkpoint is loaded with `cards.zoo.load_hooked` (a twin with normalisation off) and run on the
first N prompts of a corpus's test split (--data, else a 200-record corpus made with the first zoo name's
registry command). Prints two markdown tables: per checkpoint, the largest |sum of all components' direct
logit attributions - logit| over every position and vocabulary entry of those prompts, beside the largest
|logit| (the sum is exact for a twin, not for a model with real normalisation: `cards.dla`); then, per
checkpoint, the components with the largest mean attribution to the token each prompt predicts next.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cards import dla, zoo  # noqa: E402
from cards.build import console_script, without_out  # noqa: E402
from cards.cli import run  # noqa: E402
from cards.errors import ExternalError, UsageError  # noqa: E402


def measure(name: str, prompts: list[str]) -> tuple[float, float, dict[str, float]]:
    """(max |sum of DLA - logit|, max |logit|, {component: mean DLA to the predicted next token})."""
    model = zoo.load_hooked(name)
    error = size = 0.0
    totals: dict[str, float] = {}
    for prompt in prompts:
        labels, attribution, logits = dla.attribution(model, model.to_tokens(prompt))
        error = max(error, float((attribution.sum(0) - logits).abs().max()))
        size = max(size, float(logits.abs().max()))
        predicted = int(logits[0, -1].argmax())
        for label, value in zip(labels, attribution[:, 0, -1, predicted].tolist()):
            totals[label] = totals.get(label, 0.0) + value / len(prompts)
    return error, size, totals


def test_prompts(data: str, count: int) -> list[str]:
    from train.data import open_corpus

    corpus = open_corpus(data)
    split = corpus.splits["test"] if "test" in corpus.splits else next(iter(corpus.splits.values()))
    return [corpus.view.pieces(record)[0] for record in split.select(range(min(count, len(split))))]


def small_corpus(name: str, folder: Path) -> Path:
    """A 200-record corpus made by the registry command of zoo checkpoint `name` (UsageError if none)."""
    entry = zoo.find(name)
    if not entry or not entry.get("corpus", {}).get("command"):
        raise UsageError(f"{name}: not a zoo checkpoint with a corpus command; give --data CORPUS")
    words = without_out(entry["corpus"]["command"])
    if "-n" in words[:-1]:
        words[words.index("-n") + 1] = "200"
    with contextlib.redirect_stdout(sys.stderr):  # its report, kept off the tables
        status = console_script(words[0])([*words[1:], "--out", str(folder)])
    if status:
        raise ExternalError(f"making prompts failed (above): {shlex.join(words)}")
    return folder


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(row) + " |" for row in lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="zoo names or checkpoint folders")
    parser.add_argument("--data", help="corpus folder whose test prompts to use (default: made from the registry)")
    parser.add_argument("-n", type=int, default=8, help="prompts (default 8)")
    parser.add_argument("--top", type=int, default=5, help="components listed per checkpoint (default 5)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.top < 1:
        raise UsageError("-n and --top must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or str(small_corpus(args.models[0], Path(tmp) / "corpus"))
        prompts = test_prompts(data, args.n)
        results = {name: measure(name, prompts) for name in args.models}
    sizes = [[name, str(len(prompts)), f"{size:.3g}", f"{error:.2g}"] for name, (error, size, _) in results.items()]
    print(table(["checkpoint", "prompts", "max abs logit", "max abs(sum of DLA - logit)"], sizes))
    rows = []
    for name, (_, _, totals) in results.items():
        top = sorted(totals.items(), key=lambda item: -abs(item[1]))[:args.top]
        rows += [[name, label, f"{value:+.3f}"] for label, value in top]
    print("\nmean DLA to the predicted next token (last prompt position)\n")
    print(table(["checkpoint", "component", "DLA"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(run("bench/dla.py", main, None))
