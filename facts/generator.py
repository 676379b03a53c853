"""The facts generator: its options, levels, sizes check, card facts and training view (`cards.generator`).

Records are completions: the prompt (`Fact: Kendard comes from the country of`) and the answer word after
a space. The view trains a word-level tokenizer from scratch (`digit_tokenizer`), so a name, a value and
every word of a phrasing is one token and partners of equal word count have equal token counts.
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass

import pyarrow as pa

from cards.card import example_record, levels_name, package_template
from cards.cli import positive_int
from cards.corpus import Config
from cards.errors import UsageError
from cards.generator import CardFacts, Generator, TrainingView, validate_seed
from facts import generate as items
from facts.check import CHECKS
from facts.kb import MAX_ENTITIES, RELATIONS, knowledge_base
from facts.phrasings import LEVEL_NOTES, LEVELS, STYLES, held_out, render, trained


@dataclass(frozen=True)
class Options:
    seed: int = 0
    people: int | None = None  # None: the level's default
    cities: int = 50

    def __post_init__(self):
        validate_seed(self.seed)
        for name in ("people", "cities"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not 2 <= value <= MAX_ENTITIES):
                raise UsageError(f"{name}: expected an integer from 2 to {MAX_ENTITIES:,}, got {value!r}")


class FactsView(TrainingView):
    """Prompt and completion (` answer`); a from-scratch model gets a word-level vocabulary. Beyond exact match:
    exact match per relation and per phrasing style."""

    columns = ("prompt", "completion", "relation", "phrasing")
    digit_tokenizer = True

    def metrics(self, records: list[dict], outputs: list[str]) -> dict:
        right = [self.answer(o) == self.gold(r) for r, o in zip(records, outputs)]
        return {f"exact_match_by_{key}": _share_by(records, right, key) for key in ("relation", "phrasing")}


def _share_by(records: list[dict], right: list[bool], key: str) -> dict[str, float]:
    """Exact match among the records of each value of `key`, in sorted order."""
    groups: dict[str, list[bool]] = {}
    for record, ok in zip(records, right):
        groups.setdefault(record[key], []).append(ok)
    return {name: round(sum(oks) / len(oks), 4) for name, oks in sorted(groups.items())}


def _sizes(sizes: dict[str, int]) -> tuple[int, int, int]:
    return sizes.get("train", 0), sizes.get("validation", 0), sizes.get("test", 0)


class Facts(Generator):
    name = "facts"
    task = "factual recall"
    description = ("Generate factual-recall completions over a synthetic knowledge base of invented people and "
                   "cities: every fact in many phrasings, every label looked up again in the knowledge base, "
                   "splits that hold out phrasings (levels 1-2) or two-hop facts (level 3), counterfactual "
                   "partners of equal length and ground-truth attribution spans.")
    levels = LEVEL_NOTES
    Options = Options
    view = FactsView()
    chunk = 512

    examples = """\
  facts-gen --level 1 -n 20000 --seed 0 --out f1     # 2,000 people x 3 relations; one phrasing held out
  facts-gen --level 2 -n 40000 --people 1000         # 8 relations, 8 phrasings, two held out per relation
  facts-gen --level 3 -n 20000                       # two-hop: test asks residence facts never trained
Load the result with datasets.load_dataset("<out>") or load_dataset("<out>", "level1")."""

    def make_item(self, options, level, index):
        """Not used: an item depends on the split sizes too, which `configs` binds (`facts.generate.make_item`)."""
        raise NotImplementedError("facts items need the split sizes: use facts.generate.make_item")

    def configs(self, options, levels, sizes):
        return [Config(self.config_name(level), functools.partial(items.make_item, options, level, _sizes(sizes)),
                       dict(sizes), chunk=self.chunk) for level in levels]

    def schema(self, options) -> pa.Schema:
        return items.SCHEMA

    def check(self, options, levels, sizes) -> None:
        train, valid, test = _sizes(sizes)
        for level in levels:
            if level not in LEVELS:
                raise UsageError(f"--level: level {level} does not exist (levels are 1 to {max(LEVELS)})")
            n_people = items.people(options, level)
            held = items.held_people_count(level, (train, valid, test))
            if held > n_people // 2:
                raise UsageError(f"level {level}: validation and test need the residence facts of {held:,} people, "
                                 f"more than half of the {n_people:,}; ask for fewer or more --people")
            at = items.plan(options, level, (train, valid, test))
            if train < len(at.train):
                raise UsageError(f"level {level}: the train split must show every one of the {len(at.train):,} trained "
                                 f"facts at least once; ask for at least {len(at.train):,} train examples or fewer "
                                 "--people")
            for split, wanted, units in (("train", train, at.train), ("validation and test", valid + test, at.held)):
                most = sum(len(u.styles) for u in units)
                if wanted > most:
                    raise UsageError(f"level {level}: {wanted:,} {split} examples asked for but only {most:,} "
                                     "distinct ones exist; ask for fewer or more --people")

    def prepare(self, options, levels, num_proc) -> None:
        for level in levels:  # the knowledge base once, before the workers fork
            knowledge_base(options.seed, items.people(options, level), options.cities)

    def card(self, options, levels, reports, folder) -> CardFacts:
        return CardFacts(
            pretty_name="facts: factual recall over a synthetic knowledge base, " + levels_name(levels),
            checks=CHECKS,
            config_notes={f"level{level}": LEVEL_NOTES[level] for level in levels},
            fields=items.FIELDS,
            leakage_group="records with the same prompt (each prompt once); which split a fact and phrasing go to "
                          "is the generator's (train phrasings to train, held-out ones to validation and test)",
            tags=["synthetic", "interpretability", "factual-recall", "knowledge-base", "attribution"],
            packages=["faker", "pyarrow"],
            template=package_template("facts", "card.md"),
            context={"levels": [_level_context(options, level, report) for level, report in zip(levels, reports)],
                     "example": example_record(folder, reports), "ladder": LEVEL_NOTES},
        )

    # -- the command line --
    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--people", type=positive_int, metavar="N",
                       help="invented people in the knowledge base (default: 2000 at levels 1-2, 1000 at level 3)")
        p.add_argument("--cities", type=positive_int, default=50, metavar="N",
                       help="invented cities (the values of `city`, the bridge of two-hop facts; default 50)")

    def options_from(self, args: argparse.Namespace) -> Options:
        return Options(seed=args.seed, people=args.people, cities=args.cities)


def _level_context(options, level: int, report) -> dict:
    """What the card says about one configuration: its knowledge base, phrasings and hold-out, and drops."""
    spec = LEVELS[level]
    kb = knowledge_base(options.seed, items.people(options, level), options.cities)
    at = items.plan(options, level, tuple(report.sizes.get(s, 0) for s in ("train", "validation", "test")))
    relations = [{"name": r, "kind": RELATIONS[r].kind, "pool": len(kb.pool(r)), "hops": RELATIONS[r].hops,
                  "example": render("fact", r, "X")[0], "trained": ", ".join(trained(level, r)),
                  "held": ", ".join(held_out(level, r)) or "-"} for r in spec.relations]
    dropped = {reason: n for reason, n in sorted(report.rejected.items()) if reason != items.EXHAUSTED}
    return {"name": f"level{level}", "people": len(kb.people), "cities": len(kb.cities),
            "facts": len(kb.facts(spec.relations)), "relations": relations,
            "phrasings": sum(len(trained(level, r)) + len(held_out(level, r)) for r in spec.relations),
            "styles": {s: STYLES[s][0] for s in spec.styles}, "two_hop": spec.two_hop,
            "held_people": len(at.held_people), "checked": report.candidates - report.rejected.get(items.EXHAUSTED, 0),
            "dropped": dropped, "kept": report.kept}


GENERATOR = Facts()
