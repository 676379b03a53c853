"""`tinysql-gen`: write a TinySQL corpus as a Hub-ready dataset folder."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from cards.card import command_line, dataset_card
from cards.cli import Parser, parse_levels, positive_int, run
from cards.corpus import build, summary
from tinysql import vocabulary
from tinysql.generate import DIALECTS, FORMATS, LEVELS, Options, corpus_configs, description, schema

EPILOG = "levels:\n" + "\n".join(f"  {n}  {text.replace('`', '')}" for n, text in LEVELS.items()) + """

examples:
  tinysql-gen --level 3                       # 10,000 level-3 items into ./tinysql-level3
  tinysql-gen --level 1-8 -n 5000 --synonyms  # one config per level
  tinysql-gen --level 5 --dialect postgres --format chat --out /tmp/l5
Load the result with datasets.load_dataset("<out>") or load_dataset("<out>", "level5")."""


def parser() -> Parser:
    p = Parser(prog="tinysql-gen", description="Generate a progressively harder text-to-SQL corpus whose labels "
               "are parsed, executed and checked against the request before they are kept.", epilog=EPILOG)
    p.add_argument("--level", default="1", help="level 1-8, a range like 1-4, or a list like 1,3 (default 1); "
                   "several levels give one config each")
    p.add_argument("-n", "--num-examples", type=positive_int, default=10_000,
                   help="examples per level, split 80/10/10 into train/validation/test (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed and options, same bytes (default 0)")
    p.add_argument("--out", help="output folder (default ./tinysql-level<L>)")
    p.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    p.add_argument("--synonyms", action="store_true",
                   help="name tables (80%% of the time) and columns (50%%) by English synonyms in the request")
    p.add_argument("--format", choices=FORMATS, default="alpaca",
                   help="alpaca: prompt/completion columns in the TinySQL one-line format; chat: a messages "
                        "column; both (default alpaca)")
    p.add_argument("--dialect", choices=DIALECTS, default="sqlite",
                   help="SQL dialect of the labels and contexts, transpiled with sqlglot (default sqlite)")
    p.add_argument("--num-proc", type=positive_int, default=1, help="worker processes (default 1); the output "
                   "does not depend on it")
    p.add_argument("--no-validate", action="store_true", help=argparse.SUPPRESS)  # for bench/ only
    return p


def generate(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    levels = parse_levels(args.level, 1, max(LEVELS))
    out = args.out or f"tinysql-level{args.level.replace(',', '_')}"
    options = Options(seed=args.seed, synonyms=args.synonyms, dialect=args.dialect, format=args.format,
                      validate=not args.no_validate)
    if args.num_proc > 1:
        vocabulary.pools()  # once, before the workers fork, instead of once per worker
    command = command_line("tinysql-gen", list(argv) if argv is not None else None)
    reports = build(out, corpus_configs(levels, args.num_examples, options), schema(args.format),
                    lambda reports: dataset_card(description(options, levels), reports, command),
                    num_proc=args.num_proc, overwrite=args.overwrite)
    print(summary(reports, out), file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run("tinysql-gen", generate, argv)


if __name__ == "__main__":
    sys.exit(main())
