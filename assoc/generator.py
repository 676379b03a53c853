"""The assoc generator: options, levels, card facts and training view (`cards.generator`).

A level is a recipe (`assoc.levels.LEVELS`); `--kinds` picks which kinds of item a corpus holds (all by
default). Analogies read the facts knowledge base (`facts.kb.knowledge_base(--kb-seed, --kb-people,
--kb-cities)`), loaded once before the workers fork.
"""

from __future__ import annotations

import argparse
import collections
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from assoc import generate as items
from assoc.levels import KIND_NOTES, KINDS, LEVELS, describe
from cards.card import example_record, levels_name, package_template
from cards.errors import UsageError
from cards.generator import CardFacts, Generator, TrainingView, validate_seed

PIECES = re.compile(r"[0-9]|[^\s0-9]+")  # words, with every digit apart (as the corpus tokenizer reads them)


@dataclass(frozen=True)
class Options:
    seed: int = 0
    kinds: tuple[str, ...] | None = None  # None: every kind
    kb_seed: int = 0
    kb_people: int = 1000
    kb_cities: int = 50

    def __post_init__(self):
        validate_seed(self.seed)
        if self.kinds is not None:
            chosen = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
            bad = [k for k in chosen if k not in KINDS]
            if bad or not chosen or len(set(chosen)) != len(chosen):
                raise UsageError(f"kinds: expected distinct names among {', '.join(KINDS)}; got {self.kinds!r}")
            object.__setattr__(self, "kinds", tuple(k for k in KINDS if k in chosen))  # canonical order
        for name in ("kb_seed", "kb_people", "kb_cities"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or (name != "kb_seed" and value < 2):
                raise UsageError(f"{name}: expected an integer{' >= 2' if name != 'kb_seed' else ''}, got {value!r}")

    def knowledge_base(self):
        if "analogy" not in (self.kinds or KINDS):
            return None
        from facts.kb import knowledge_base
        return knowledge_base(self.kb_seed, self.kb_people, self.kb_cities)


def normal(text: str) -> str:
    """Words and single digits separated by one space: ' 92' and '9 2' read the same."""
    return " ".join(PIECES.findall(text))


class AssocView(TrainingView):
    """Prompt and completion; exact match compares words and digits, whatever the spacing of digits."""

    columns = ("prompt", "completion", "kind", "concept")
    digit_tokenizer = True

    def gold(self, record: dict) -> str:
        return normal(record["completion"])

    def answer(self, output: str) -> str:
        return normal(output)

    def metrics(self, records: list[dict], outputs: list[str]) -> dict:
        """`exact_match_KIND`: exact match per kind of item."""
        right, total = collections.Counter(), collections.Counter()
        for record, output in zip(records, outputs):
            total[record["kind"]] += 1
            right[record["kind"]] += self.answer(output) == self.gold(record)
        return {f"exact_match_{kind}": right[kind] / total[kind] for kind in KINDS if total[kind]}


class Assoc(Generator):
    name = "assoc"
    task = "in-context association and pattern completion"
    description = ("Generate completion-style association and pattern corpora (key-value recall, repeating "
                   "motifs, bracket matching, copying, induction, analogies over the facts knowledge base) whose "
                   "answers are re-derived from the prompt text, with concept labels and attribution spans.")
    levels = {level: describe(level) for level in LEVELS}
    Options = Options
    view = AssocView()
    examples = """\
  assoc-gen --level 1 -n 20000 --seed 0 --out a1      # every kind, level 1
  assoc-gen --level 1-4 --kinds kv,induction          # one config per level, two kinds
Load the result with datasets.load_dataset("<out>") or load_dataset("<out>", "level2")."""

    def make_item(self, options: Options, level: int, index: int):
        return items.make_item(options, level, index, options.knowledge_base())

    def schema(self, options: Options) -> pa.Schema:
        return items.SCHEMA

    def prepare(self, options: Options, levels: list, num_proc: int) -> None:
        options.knowledge_base()  # built (or refused) once, before the workers fork

    def check(self, options: Options, levels: list, sizes: dict[str, int]) -> None:
        for level in levels:
            if level not in LEVELS:
                raise UsageError(f"--level: level {level} does not exist (levels are {min(LEVELS)} to {max(LEVELS)})")

    def card(self, options: Options, levels: list, reports, folder) -> CardFacts:
        kb = options.knowledge_base()
        return CardFacts(
            pretty_name="assoc: association and pattern completion, " + levels_name(levels),
            checks=checks(options),
            config_notes={f"level{level}": self.levels[level] for level in levels},
            fields=items.FIELDS,
            leakage_group="per kind: " + "; ".join(f"{k}: {items.GROUPS[k]}" for k in options.kinds or KINDS),
            tags=["synthetic", "interpretability", "in-context-learning", "induction", "attribution"],
            packages=["pyarrow", "datasets"] + (["faker"] if kb else []),
            template=package_template("assoc", "card.md"),
            context={"kinds": {k: KIND_NOTES[k] for k in options.kinds or KINDS}, "groups": items.GROUPS,
                     "ladder": self.levels,
                     "mix": mix_rows(folder, reports), "kb": kb.summary() if kb else None, "options": options,
                     "example": example_record(folder, reports)},
        )

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--kinds", type=kind_names, metavar="KIND[,KIND]",
                       help=f"the kinds of item, drawn in turn: {', '.join(KINDS)} (default: all)")
        p.add_argument("--kb-seed", type=int, default=0, help="seed of the facts knowledge base (analogies; default 0)")
        p.add_argument("--kb-people", type=int, default=1000, help="people in the knowledge base (default 1000)")
        p.add_argument("--kb-cities", type=int, default=50, help="cities in the knowledge base (default 50)")

    def options_from(self, args: argparse.Namespace) -> Options:
        return Options(seed=args.seed, kinds=args.kinds, kb_seed=args.kb_seed, kb_people=args.kb_people,
                       kb_cities=args.kb_cities)


def kind_names(text: str) -> tuple[str, ...]:
    """argparse type: 'kv,copy' -> ('kv', 'copy')."""
    chosen = tuple(part.strip() for part in text.split(","))
    bad = [k for k in chosen if k not in KINDS]
    if bad or len(set(chosen)) != len(chosen):
        raise argparse.ArgumentTypeError(f"expected distinct kinds among {', '.join(KINDS)}; got {text!r}")
    return chosen


def checks(options: Options) -> list[str]:
    found = [
        "the answer was re-derived from the rendered prompt alone (split at spaces) by a checker apart from the "
        "maker, and equals the completion: kv parses the `KEY = VALUE` pairs and looks the queried key up (keys "
        "unique); repeat finds the smallest period shown twice in full; brackets runs a stack over the prompt (every "
        "closer matches) and closes what is open; copy copies or reverses the words before `->`/`<-`; induction "
        "finds the one earlier occurrence of the last word and reads the word after it",
        "attribution spans lie inside their texts and hold what they claim: a kv target's sources are the queried "
        "key and the value after its `=`, which is the answer; a repeated or copied word's sources are that word; "
        "a closing bracket's source is its opening bracket; an induction target's sources are the last word's "
        "earlier occurrence and the answer after it",
    ]
    if "analogy" in (options.kinds or KINDS):
        found.append("analogy: X, a and Y are parsed from `X : a :: Y :`; every relation of X (all relations of "
                     "the knowledge base, not only the level's) whose value is a is looked up for Y in the knowledge "
                     "base, and the item is kept only if they all give the completion")
    return found


def mix_rows(folder, reports) -> list[list]:
    """Kept records per config, split and kind."""
    rows = []
    for report in reports:
        for split in report.sizes:
            files = sorted(str(f) for f in (folder / "data" / report.name).glob(f"{split}-*.parquet"))
            counted = collections.Counter(pq.read_table(files, columns=["kind"])["kind"].to_pylist())
            rows.append([report.name, split, *[counted[k] for k in KINDS]])
    return rows


GENERATOR = Assoc()
