"""`mcq-gen`: write a multiple-choice corpus (verified answers, controlled labels) as a Hub-ready dataset folder."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from cards.card import command_line, dataset_card
from cards.cli import Parser, UsageError, parse_levels, positive_int, run
from cards.corpus import build, summary
from mcq.card import Statistics, description
from mcq.generate import (COUNTERFACTUALS, LEVEL_NOTES, LEVELS, Options, corpus_configs, load_tokenizer, recipe,
                          schema)
from mcq.labels import MAX_OPTIONS, SCHEMES, STYLES
from mcq.sources import SOURCES
from tinysql import vocabulary

EPILOG = "levels:\n" + "\n".join(f"  {n}  {text.replace('`', '')}" for n, text in LEVEL_NOTES.items()) + """

examples:
  mcq-gen --level 2                                   # 10,000 level-2 items into ./mcq-level2
  mcq-gen --level 1-4 -n 5000 --counterfactual swap   # one config per level, each with a partner prompt
  mcq-gen --level 3 --labels numbers --style paren --options 4 --sources context,order
  mcq-gen --level 4 --tokenizer gpt2                  # only labels that are single tokens after the prompt
Load the result with datasets.load_dataset("<out>") or load_dataset("<out>", "level2")."""


def names(allowed, what: str):
    """argparse type: a comma-separated list of names from `allowed`, as a tuple."""
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
        for name in chosen:
            if name not in allowed:
                raise argparse.ArgumentTypeError(f"unknown {what} {name!r} (choose from {', '.join(allowed)})")
        return chosen
    return parse


def option_counts(text: str) -> tuple[int, ...]:
    """argparse type: '4', '2-10' or '2,4,8' -> the option counts, each 2..10."""
    try:
        return tuple(parse_levels(text, 2, MAX_OPTIONS))
    except UsageError:
        raise argparse.ArgumentTypeError(f"expected a count 2-{MAX_OPTIONS}, a range like 2-{MAX_OPTIONS} or a "
                                         f"list like 2,4; got {text!r}") from None


def parser() -> Parser:
    p = Parser(prog="mcq-gen", description="Generate multiple-choice questions in the MMLU prompt layout whose "
               "answers are checked by an independent verifier per source, with controlled labels, balanced gold "
               "positions and optional counterfactual partners.", epilog=EPILOG)
    p.add_argument("--level", default="1", help=f"level 1-{max(LEVELS)}, a range like 1-4, or a list like 1,3 "
                   "(default 1); several levels give one config each")
    p.add_argument("-n", "--num-examples", type=positive_int, default=10_000,
                   help="examples per level, split 80/10/10 into train/validation/test (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed and options, same bytes (default 0)")
    p.add_argument("--out", help="output folder (default ./mcq-level<L>)")
    p.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    p.add_argument("--options", type=option_counts, metavar="K",
                   help=f"options per question: a count, a range like 2-{MAX_OPTIONS} or a list (drawn per record); "
                        "default: the level's")
    p.add_argument("--labels", type=names(SCHEMES, "label scheme"), metavar="SCHEME[,SCHEME]",
                   help=f"label scheme, or several drawn per record: {', '.join(SCHEMES)} (default: the level's)")
    p.add_argument("--style", type=names(STYLES, "label style"), metavar="STYLE[,STYLE]",
                   help="option line style, or several drawn per record: dot 'A. x', paren '(A) x', colon 'A: x' "
                        "(default: the level's)")
    p.add_argument("--sources", type=names(SOURCES, "source"), metavar="SOURCE[,SOURCE]",
                   help=f"question sources drawn per record: {', '.join(SOURCES)} (default: the level's)")
    p.add_argument("--distractors", choices=("near", "far"),
                   help="near-miss or easy distractors (default: near at level 4, far below)")
    p.add_argument("--counterfactual", choices=tuple(COUNTERFACTUALS),
                   help="add a partner prompt of equal length to every record (cf_* fields): swap moves the gold "
                        "text to another option, labels swaps the gold option's label with another's")
    p.add_argument("--tokenizer", metavar="PATH_OR_ID",
                   help="a transformers tokenizer; reject records whose labels ' A' are not single tokens after the "
                        "prompt (and counterfactual partners whose token count differs)")
    p.add_argument("--num-proc", type=positive_int, default=1, help="worker processes (default 1); the output "
                   "does not depend on it")
    return p


def generate(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    levels = parse_levels(args.level, 1, max(LEVELS))
    out = args.out or f"mcq-level{args.level.replace(',', '_')}"
    options = Options(seed=args.seed, options=args.options, schemes=args.labels, styles=args.style,
                      sources=args.sources, near=None if args.distractors is None else args.distractors == "near",
                      counterfactual=args.counterfactual, tokenizer=args.tokenizer)
    if args.tokenizer:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        load_tokenizer(args.tokenizer)  # fail before any work; loaded once before the workers fork
    if args.num_proc > 1 and any("sql" in recipe(options, level).sources for level in levels):
        vocabulary.pools()  # once, before the workers fork, instead of once per worker
    command = command_line("mcq-gen", list(argv) if argv is not None else None)
    stats = Statistics()
    reports = build(out, corpus_configs(levels, args.num_examples, options), schema(args.counterfactual),
                    lambda reports: dataset_card(description(options, levels, stats), reports, command),
                    num_proc=args.num_proc, overwrite=args.overwrite, extra_files=stats.collect)
    print(summary(reports, out), file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run("mcq-gen", generate, argv)


if __name__ == "__main__":
    sys.exit(main())
