"""The `multmath-gen` command: parse and check the arguments, then build the corpus folder.

Every argument problem (bad size, level out of range, negative count, too many problems asked
for, existing output folder) is found before any work and reported as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Sequence

from cards.card import command_line, dataset_card
from cards.cli import Parser, UsageError, non_negative_int, parse_levels, positive_int, run
from cards.corpus import build, summary
from multmath.generate import (
    LEVELS,
    MAX_DIGITS,
    SCHEMA,
    Spec,
    config,
    description,
    split_sizes,
    write_icot_files,
)
from multmath.problems import COT_MODES, FORMATS

PROG = "multmath-gen"
DESCRIPTION = """\
Generate multi-digit multiplication problems a × b with a verified chain of thought, as a
Hub-ready dataset folder (parquet + README.md card; with --format icot also the train.txt,
valid.txt and test_bigbench.txt files of the implicit-CoT layout under icot/<A>_by_<B>_mult/).
"""
EPILOG = f"""\
levels:
  --level L is the L×L-digit configuration, L = {LEVELS[0]} .. {LEVELS[-1]} ({LEVELS[0]}x{LEVELS[0]} .. {LEVELS[-1]}x{LEVELS[-1]})

examples:
  multmath-gen --digits 4x4 --format icot --seed 0   # the published ICoT 4×4 setup: 808,000/1,000/1,000
  multmath-gen --level 4-9 -n 100000 --num-proc 4    # 4x4 .. 9x9, one config each
  multmath-gen --digits 3x7 --format plain --cot none -n 5000 --out /tmp/m37
Load the result with datasets.load_dataset("<out>") or load_dataset("<out>", "5x5")."""


def parser() -> Parser:
    p = Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--digits", metavar="AxB[,CxD...]",
                      help=f"operand sizes in digits, e.g. 4x4 or 3x7 or 4x4,5x5 (1 to {MAX_DIGITS} digits "
                      "each); one configuration per size (default: 4x4)")
    size.add_argument("--level", metavar="N",
                      help=f"level L means L×L digits, {LEVELS[0]} to {LEVELS[-1]}; a range 2-5 or list 4,6 "
                      "gives several configurations")
    p.add_argument("--format", choices=FORMATS, default="icot",
                   help="icot: the implicit-CoT data-file line (digits reversed, space-separated); "
                   "plain: human order '3719 * 3349 = 12454931' (default: icot)")
    p.add_argument("--cot", choices=COT_MODES, default="explicit",
                   help="explicit: full chain of thought (partial products and running sums); "
                   "none: answer only (default: explicit)")
    p.add_argument("-n", "--num-train", type=non_negative_int, default=808_000,
                   help="training examples per configuration (default: 808000)")
    p.add_argument("--num-valid", type=non_negative_int, default=1_000,
                   help="validation examples per configuration (default: 1000)")
    p.add_argument("--num-test", type=non_negative_int, default=1_000,
                   help="test examples per configuration (default: 1000)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed; same seed and options, same bytes (default: 0)")
    p.add_argument("--out", help="output folder (default: multmath-<sizes>-<format>[-nocot])")
    p.add_argument("--num-proc", type=positive_int, default=1,
                   help="worker processes (default: 1); the output does not depend on it")
    p.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    p.add_argument("--no-commutative-leakage", dest="commutative", action="store_false",
                   help="treat a×b and b×a as different problems when keeping problems out of two splits "
                   "(by default they count as one, and sit in the same split)")
    p.add_argument("--no-validate", action="store_true", help=argparse.SUPPRESS)  # for bench/ only
    return p


def parse_digits(text: str) -> list[tuple[int, int]]:
    """'4x4,3x7' -> [(4, 4), (3, 7)]; raises UsageError for anything else."""
    sizes = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", part)
        if not match:
            raise UsageError(f"--digits: expected sizes like 4x4 or 3x7,5x5; got {text!r}")
        n, m = int(match[1]), int(match[2])
        if not (1 <= n <= MAX_DIGITS and 1 <= m <= MAX_DIGITS):
            raise UsageError(f"--digits: {part.strip()}: each operand needs 1 to {MAX_DIGITS} digits")
        if (n, m) not in sizes:
            sizes.append((n, m))
    return sizes


def specs_from(args) -> list[Spec]:
    if args.level is not None:
        sizes = [(level, level) for level in parse_levels(args.level, LEVELS[0], LEVELS[-1])]
    else:
        sizes = parse_digits(args.digits or "4x4")
    return [Spec(args.seed, n, m, args.format, args.cot, args.commutative, validate=not args.no_validate)
            for n, m in sizes]


def check_counts(specs: list[Spec], sizes: dict[str, int]) -> None:
    total = sum(sizes.values())
    if total == 0:
        raise UsageError("nothing to generate: --num-train, --num-valid and --num-test are all 0")
    for spec in specs:
        if total > spec.distinct_count:
            how = " (a×b and b×a count as one; --no-commutative-leakage allows " \
                  f"{spec.ordered_count:,})" if spec.distinct_count < spec.ordered_count else ""
            raise UsageError(f"{spec.name}: {total:,} examples asked for but only {spec.distinct_count:,} "
                             f"distinct problems exist{how}; ask for fewer")


def default_out(specs: list[Spec]) -> str:
    first = specs[0]
    suffix = "-nocot" if first.cot == "none" else ""
    return f"multmath-{'_'.join(spec.name for spec in specs)}-{first.format}{suffix}"


def generate(argv: Sequence[str] | None = None) -> int:
    """The command itself; raises UsageError for bad input."""
    args = parser().parse_args(argv)
    specs = specs_from(args)
    sizes = split_sizes(args.num_train, args.num_valid, args.num_test)
    check_counts(specs, sizes)
    out = args.out or default_out(specs)
    command = command_line(PROG, None if argv is None else list(argv))

    def render(reports):
        return dataset_card(description(specs, reports, args.seed), reports, command)

    def extra_files(folder, reports):
        if args.format == "icot":
            write_icot_files(folder, specs)

    reports = build(out, [config(spec, sizes) for spec in specs], SCHEMA, render,
                    num_proc=args.num_proc, overwrite=args.overwrite, extra_files=extra_files)
    print(summary(reports, out), file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: bad input is one line on stderr and exit status 2."""
    return run(PROG, generate, argv)


if __name__ == "__main__":
    sys.exit(main())
