"""The mcq generator: its options, levels, card facts and training view (`cards.generator`).

A level is a recipe (`mcq.generate.LEVELS`: option counts, label schemes and styles, sources,
distractor closeness); the options `--options`, `--labels`, `--style`, `--sources` and
`--distractors` override a level's choices. The card's statistics are read back from the written
parquet files (`mcq.card`).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import pyarrow as pa

from cards.card import example_record, levels_name, package_template
from cards.cli import parse_levels
from cards.errors import UsageError
from cards.generator import CardFacts, Generator, TrainingView, validate_choice, validate_seed
from mcq import card as facts
from mcq import generate as items
from mcq.labels import MAX_OPTIONS, SCHEMES, STYLES, continuation
from mcq.sources import SOURCES
from tinysql import vocabulary

CHOICES = {  # Options field: what its names are, and the names allowed
    "schemes": ("label scheme", SCHEMES),
    "styles": ("label style", STYLES),
    "sources": ("source", SOURCES),
}


def unknown_name(names, what: str, allowed) -> str | None:
    """Why `names` are not a choice among `allowed` (none given, or the first unknown one), or None."""
    bad = next((name for name in names if name not in allowed), None)
    if bad is None:
        return None if names else f"expected at least one {what}"
    return f"unknown {what} {bad!r} (choose from {', '.join(allowed)})"


def counts_message(got) -> str:
    return f"expected a count 2-{MAX_OPTIONS}, a range like 2-{MAX_OPTIONS} or a list like 2,4; got {got!r}"


@dataclass(frozen=True)
class Options:
    """Generation settings; a field left None takes the level's value."""

    seed: int = 0
    options: tuple[int, ...] | None = None
    schemes: tuple[str, ...] | None = None
    styles: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    near: bool | None = None
    counterfactual: str | None = None
    tokenizer: str | None = None

    def __post_init__(self):
        validate_seed(self.seed)
        for name in ("options", *CHOICES):  # any sequence, or one value alone, becomes a tuple
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, (value,) if isinstance(value, (str, int)) else tuple(value))
        if self.options is not None and not (self.options and all(
                isinstance(k, int) and 2 <= k <= MAX_OPTIONS for k in self.options)):
            raise UsageError(f"options: {counts_message(self.options)}")
        for name, (what, allowed) in CHOICES.items():
            problem = getattr(self, name) is not None and unknown_name(getattr(self, name), what, allowed)
            if problem:
                raise UsageError(f"{name}: {problem}")
        if self.counterfactual is not None:
            validate_choice("counterfactual", self.counterfactual, tuple(items.COUNTERFACTUALS))


class MCQView(TrainingView):
    """The MMLU prompt and the continuation ` L` of the gold label; the options' labels are scored by likelihood."""

    columns = ("prompt", "choices", "labels", "answer", "answer_label")

    def pieces(self, record: dict) -> tuple[str, str, str]:
        return record["prompt"], "", continuation(record["answer_label"])

    def gold(self, record: dict) -> str:
        return record["answer_label"]

    def choices(self, record: dict) -> tuple[list[str], int]:
        return [continuation(label) for label in record["labels"]], record["answer"]


class MCQ(Generator):
    name = "mcq"
    task = "multiple-choice question answering"
    description = ("Generate multiple-choice questions in the MMLU prompt layout whose answers are checked by an "
                   "independent verifier per source, with controlled labels, balanced gold positions and optional "
                   "counterfactual partners.")
    levels = items.LEVEL_NOTES
    Options = Options
    view = MCQView()

    examples = """\
  mcq-gen --level 2                                   # 10,000 level-2 items into ./mcq-level2
  mcq-gen --level 1-4 -n 5000 --counterfactual swap   # one config per level, each with a partner prompt
  mcq-gen --level 3 --labels numbers --style paren --options 4 --sources context,order
  mcq-gen --level 4 --tokenizer gpt2                  # only labels that are single tokens after the prompt
Load the result with datasets.load_dataset("<out>") or load_dataset("<out>", "level2")."""

    # -- the corpus --
    tokenizer_help = ("; mcq also rejects records whose labels ' A' are not single tokens after the prompt (and "
                      "counterfactual partners whose token count differs)")

    def make_item(self, options: Options, level: int, index: int):
        return items.make_item(options, level, index)

    def schema(self, options: Options) -> pa.Schema:
        return items.schema(options.counterfactual)

    def check(self, options: Options, levels: list, sizes: dict[str, int]) -> None:
        for level in levels:
            if level not in self.levels:
                raise UsageError(f"--level: level {level} does not exist (levels are {min(self.levels)} to "
                                 f"{max(self.levels)})")

    def prepare(self, options: Options, levels: list, num_proc: int) -> None:
        if options.tokenizer:  # fail before any work; loaded once before the workers fork
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            items.load_tokenizer(options.tokenizer)
        if num_proc > 1 and any("sql" in items.recipe(options, level).sources for level in levels):
            vocabulary.pools()  # once, before the workers fork, instead of once per worker

    def card(self, options: Options, levels: list, reports, folder) -> CardFacts:
        return CardFacts(
            pretty_name="Multiple-choice label binding, " + levels_name(levels),
            checks=facts.checks(options),
            config_notes={f"level{level}": self.levels[level] for level in levels},
            fields={k: v for k, v in facts.FIELD_DOCS.items() if options.counterfactual or not k.startswith("cf_")},
            leakage_group="records asking the same question from the same facts, whatever their options or labels",
            task_categories=["multiple-choice", "question-answering"],
            tags=["synthetic", "interpretability", "multiple-choice", "mmlu-format"],
            packages=["sqlglot", "pyarrow"] + (["transformers", "tokenizers"] if options.tokenizer else []),
            template=package_template("mcq", "card.md"),
            context={"positions": list(facts.POSITIONS), "gold": facts.gold_rows(folder, reports),
                     "mix_header": list(facts.MIX.values()), "mix": facts.mix_rows(folder, reports),
                     "ladder": self.levels, "sources": {name: source.about for name, source in SOURCES.items()},
                     "example": example_record(folder, reports)},
        )

    # -- the command line --
    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--options", type=option_counts, metavar="K",
                       help=f"options per question: a count, a range like 2-{MAX_OPTIONS} or a list (drawn per "
                            "record); default: the level's")
        p.add_argument("--labels", type=names("schemes"), metavar="SCHEME[,SCHEME]",
                       help=f"label scheme, or several drawn per record: {', '.join(SCHEMES)} (default: the level's)")
        p.add_argument("--style", type=names("styles"), metavar="STYLE[,STYLE]",
                       help="option line style, or several drawn per record: dot 'A. x', paren '(A) x', colon "
                            "'A: x' (default: the level's)")
        p.add_argument("--sources", type=names("sources"), metavar="SOURCE[,SOURCE]",
                       help=f"question sources drawn per record: {', '.join(SOURCES)} (default: the level's)")
        p.add_argument("--distractors", choices=("near", "far"),
                       help="near-miss or easy distractors (default: near at level 4, far below)")
        p.add_argument("--counterfactual", choices=tuple(items.COUNTERFACTUALS),
                       help="add a partner prompt of equal length to every record (cf_* fields): swap moves the "
                            "gold text to another option, labels swaps the gold option's label with another's")

    def options_from(self, args: argparse.Namespace) -> Options:
        return Options(seed=args.seed, options=args.options, schemes=args.labels, styles=args.style,
                       sources=args.sources, near=None if args.distractors is None else args.distractors == "near",
                       counterfactual=args.counterfactual, tokenizer=args.tokenizer)


def names(field: str):
    """argparse type: a comma-separated list of names allowed for the Options `field`, as a tuple."""
    what, allowed = CHOICES[field]

    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
        problem = unknown_name(chosen, what, allowed)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return chosen

    return parse


def option_counts(text: str) -> tuple[int, ...]:
    """argparse type: '4', '2-10' or '2,4,8' -> the option counts, each 2..10."""
    try:
        return tuple(parse_levels(text, 2, MAX_OPTIONS))
    except UsageError:
        raise argparse.ArgumentTypeError(counts_message(text)) from None


GENERATOR = MCQ()
