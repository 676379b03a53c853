"""The multmath generator: its options, sizes, card facts and training view (`cards.generator`).

A "level" here is a size `(digits of a, digits of b)`, named `AxB`; `--level L` is the L×L size
and `--digits AxB[,CxD...]` any sizes of 1 to 40 digits per operand. The counts are per split
(`-n/--num-train`, `--num-valid`, `--num-test`), the published ICoT 808,000/1,000/1,000 by default.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

import pyarrow as pa

from cards.card import example_record, package_template
from cards.cli import non_negative_int, parse_levels
from cards.errors import UsageError
from cards.generator import CardFacts, Generator, TrainingView, validate_choice, validate_seed
from multmath import attribution as spans
from multmath import exclude as exclusion
from multmath import generate as items
from multmath.check import described
from multmath.problems import COT_MODES, FORMATS, problem

LEVELS = range(2, 21)  # level L is the L×L-digit problem
EXAMPLE = (3719, 3349)  # the card's example problem


@dataclass(frozen=True)
class Options:
    seed: int = 0
    format: str = "icot"
    cot: str = "explicit"
    commutative: bool = True  # a×b and b×a are one leakage group (and one problem, for a square size)
    validate: bool = True  # off only in bench/, to measure what the check costs
    exclude: tuple[str, ...] = ()  # ICoT-format files whose problems (and their swaps) are kept out

    def __post_init__(self):
        validate_seed(self.seed)
        validate_choice("format", self.format, FORMATS)
        validate_choice("cot", self.cot, COT_MODES)
        if not isinstance(self.exclude, (tuple, list)) or not all(isinstance(p, str) for p in self.exclude):
            raise UsageError(f"exclude: expected a list of file paths, got {self.exclude!r}")
        object.__setattr__(self, "exclude", tuple(self.exclude))


class MultmathView(TrainingView):
    """`A * B ||`, ` COT` and ` #### C`; exact match and per-digit accuracy read the digits after `####`."""

    columns = ("prompt", "cot", "answer", "answer_digits", "running_sums")
    chain_of_thought = True
    answer_prefix = " ####"
    digit_tokenizer = True

    def pieces(self, record: dict) -> tuple[str, str, str]:
        cot = f" {record['cot']}" if record["cot"] else ""
        return f"{record['prompt']} ||", cot, f"{self.answer_prefix} {record['answer']}"

    def gold(self, record: dict) -> str:
        return record["answer"].replace(" ", "")

    def answer(self, output: str) -> str:
        """The digits after the last `####` ('' if there is none): a model that still writes part of
        its chain of thought is scored on its answer, like the ICoT scorer."""
        marker = self.answer_prefix.strip()
        if marker not in output:
            return ""
        return "".join(ch for ch in output.rsplit(marker, 1)[1] if ch.isdigit())

    def metrics(self, records: list[dict], outputs: list[str]) -> dict:
        """`digit_accuracy`: the share of answer digits right in place; `digit_accuracy_by_position`:
        the same per digit c_0, c_1, ..."""
        if not records:
            return {}
        width = max(len(r["answer_digits"]) for r in records)
        right, total = [0] * width, [0] * width
        for record, output in zip(records, outputs):
            expected, got = self.gold(record), self.answer(output)
            for k, digit in enumerate(expected):
                total[k] += 1
                right[k] += k < len(got) and got[k] == digit
        return {"digit_accuracy": sum(right) / sum(total),
                "digit_accuracy_by_position": [r / t for r, t in zip(right, total) if t]}

    def running_sums(self, record: dict) -> list[int]:
        return list(record["running_sums"])


class Multmath(Generator):
    name = "multmath"
    task = "multi-digit multiplication"
    description = """\
Generate multi-digit multiplication problems a × b with a verified chain of thought, as a
Hub-ready dataset folder (parquet + README.md card; with --format icot also the train.txt,
valid.txt and test_bigbench.txt files of the implicit-CoT layout under icot/<A>_by_<B>_mult/).
"""
    examples = """\
  multmath-gen --digits 4x4 --format icot --seed 0   # the published ICoT 4×4 setup: 808,000/1,000/1,000
  multmath-gen --level 4-9 -n 100000 --num-proc 4    # 4x4 .. 9x9, one config each
  multmath-gen --digits 3x7 --format plain --cot none -n 5000 --out /tmp/m37
Load the result with datasets.load_dataset("<out>") or load_dataset("<out>", "5x5")."""

    def levels_help(self) -> str:
        return f"""\
  --level L is the L×L-digit configuration, L = {LEVELS[0]} .. {LEVELS[-1]} ({LEVELS[0]}x{LEVELS[0]} .. \
{LEVELS[-1]}x{LEVELS[-1]})"""
    levels = {level: f"{level}-digit × {level}-digit problems ({level}x{level})" for level in LEVELS}
    Options = Options
    view = MultmathView()
    chunk = items.CHUNK

    # -- the corpus --
    def make_item(self, options: Options, level, index: int):
        return items.make_item(options, size(level), index)

    def schema(self, options: Options) -> pa.Schema:
        return items.SCHEMA

    def config_name(self, level) -> str:
        return items.size_name(*size(level))

    def default_levels(self) -> list:
        return [(4, 4)]

    def check(self, options: Options, levels: list, sizes: dict[str, int]) -> None:
        exclusion.load(options.exclude)  # every --exclude file read (and refused if bad) before any work
        for n, m in map(size, levels):
            if not (1 <= n <= items.MAX_DIGITS and 1 <= m <= items.MAX_DIGITS):
                raise UsageError(f"--digits: {n}x{m}: each operand needs 1 to {items.MAX_DIGITS} digits")
        total = sum(sizes.values())
        if total == 0:
            raise UsageError("nothing to generate: --num-train, --num-valid and --num-test are all 0")
        for n, m in map(size, levels):
            distinct, ordered = items.distinct_count(n, m, options.commutative), items.ordered_count(n, m)
            if total > distinct:
                how = f" (a×b and b×a count as one; --no-commutative-leakage allows {ordered:,})" \
                    if distinct < ordered else ""
                raise UsageError(f"{n}x{m}: {total:,} examples asked for but only {distinct:,} "
                                 f"distinct problems exist{how}; ask for fewer")

    def write_files(self, folder, options: Options, levels: list, reports) -> None:
        if options.format == "icot":
            items.write_icot_files(folder, [size(level) for level in levels])

    def card(self, options: Options, levels: list, reports, folder) -> CardFacts:
        sizes = [size(level) for level in levels]
        example = problem(*EXAMPLE)
        return CardFacts(
            pretty_name="multmath: multi-digit multiplication with a verified chain of thought",
            checks=described(options.format, options.cot) + [spans.CHECKED] if options.validate else [],
            config_notes={items.size_name(n, m): f"{n}-digit × {m}-digit problems ({items.ordered_count(n, m):,} "
                          f"ordered problems exist; at most {items.distinct_count(n, m, options.commutative):,} "
                          "can be asked for)" for n, m in sizes},
            fields=items.FIELDS,
            leakage_group="a × b and b × a, unless `--no-commutative-leakage`",
            tags=["arithmetic", "multiplication", "chain-of-thought", "implicit-chain-of-thought",
                  "interpretability", "synthetic"],
            packages=["pyarrow", "datasets"],
            template=package_template("multmath", "card.md"),
            context={
                "options": options,
                "example": {"icot": example.icot_line(), "plain_cot": example.plain_line(cot=True)},
                "icot_folders": {items.size_name(*s): items.icot_folder(*s) for s in sizes},
                "reports": reports,
                "levels": (LEVELS[0], LEVELS[-1]),
                "max_digits": items.MAX_DIGITS,
                "first": example_record(folder, reports),
                "outcomes": [outcome(r) for r in reports],
                "excluded": [exclusion.read_file(path) for path in options.exclude],
            },
        )

    # -- the command line --
    def add_size_arguments(self, p: argparse.ArgumentParser) -> None:
        chosen = p.add_mutually_exclusive_group()
        chosen.add_argument("--digits", metavar="AxB[,CxD...]",
                            help=f"operand sizes in digits, e.g. 4x4 or 3x7 or 4x4,5x5 (1 to {items.MAX_DIGITS} "
                                 "digits each); one configuration per size (default: 4x4)")
        chosen.add_argument("--level", metavar="N",
                            help=f"level L means L×L digits, {LEVELS[0]} to {LEVELS[-1]}; a range 2-5 or list 4,6 "
                                 "gives several configurations")
        p.add_argument("-n", "--num-train", type=non_negative_int, default=808_000, metavar="N",
                       help="train examples per configuration: the train split alone, unlike -n of tinysql-gen "
                            f"and mcq-gen (default: 808000; in all at most {self.max_examples:,} and the distinct "
                            "problems of the size)")
        p.add_argument("--num-valid", type=non_negative_int, default=1_000, metavar="N",
                       help="validation examples per configuration (default: 1000)")
        p.add_argument("--num-test", type=non_negative_int, default=1_000, metavar="N",
                       help="test examples per configuration (default: 1000)")

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=FORMATS, default="icot",
                       help="icot: the implicit-CoT data-file line (digits reversed, space-separated); "
                            "plain: human order '3719 * 3349 = 12454931' (default: icot)")
        p.add_argument("--cot", choices=COT_MODES, default="explicit",
                       help="explicit: full chain of thought (partial products and running sums); "
                            "none: answer only (default: explicit)")
        p.add_argument("--no-commutative-leakage", dest="commutative", action="store_false",
                       help="treat a×b and b×a as different problems when keeping problems out of two splits "
                            "(by default they count as one, and sit in the same split)")
        p.add_argument("--exclude", nargs="+", action="extend", default=[], metavar="FILE",
                       help="ICoT-format files (train.txt, test_bigbench.txt, ... as multmath writes them): every "
                            "problem they list, and its swap b×a, is kept out of every split (e.g. a published "
                            "evaluation set); the card counts what was dropped")
        p.add_argument("--no-validate", action="store_true", help=argparse.SUPPRESS)  # for bench/ only

    def options_from(self, args: argparse.Namespace) -> Options:
        return Options(seed=args.seed, format=args.format, cot=args.cot, commutative=args.commutative,
                       validate=not args.no_validate, exclude=tuple(args.exclude))

    def levels_from(self, args: argparse.Namespace) -> list:
        if args.level is not None:
            return [(level, level) for level in parse_levels(args.level, LEVELS[0], LEVELS[-1])]
        return parse_digits("4x4" if args.digits is None else args.digits)

    def sizes_from(self, args: argparse.Namespace) -> dict[str, int]:
        return {"train": args.num_train, "validation": args.num_valid, "test": args.num_test}

    def default_out(self, args: argparse.Namespace, levels: list) -> str:
        names = "_".join(self.config_name(level) for level in levels)
        return f"multmath-{names}-{args.format}" + ("-nocot" if args.cot == "none" else "")


def outcome(report) -> dict:
    """A configuration's candidates for the card: those dropped as listed in --exclude files apart from the
    ones the check rejected."""
    rejected = {reason: n for reason, n in sorted(report.rejected.items()) if reason != exclusion.REASON}
    dropped = report.rejected.get(exclusion.REASON, 0)
    return {"name": report.name, "checked": report.candidates - dropped, "kept": report.kept, "rejected": rejected,
            "dropped": dropped}


def size(level) -> tuple[int, int]:
    """A level as a size (digits of a, digits of b): L is (L, L), `"3x7"` is (3, 7), a pair stays a pair."""
    if isinstance(level, int):
        return level, level
    if isinstance(level, str):
        return parse_digits(level)[0]
    if isinstance(level, (tuple, list)) and len(level) == 2 and all(isinstance(d, int) for d in level):
        return tuple(level)
    raise UsageError(f"multmath: {level!r} is not a size (a level L, 'AxB' or a pair of digit counts)")


def parse_digits(text: str) -> list[tuple[int, int]]:
    """'4x4,3x7' -> [(4, 4), (3, 7)]; UsageError for anything else (the sizes are checked by `check`)."""
    sizes = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", part)
        if not match:
            raise UsageError(f"--digits: expected sizes like 4x4 or 3x7,5x5; got {text!r}")
        if (int(match[1]), int(match[2])) not in sizes:
            sizes.append((int(match[1]), int(match[2])))
    return sizes


GENERATOR = Multmath()
