"""Corpus items for facts: which fact and phrasing each index renders, the record, its partners and schema.

A configuration's plan (`plan`, once per process) lists its *units*: a fact (subject, relation) with the
styles it may be rendered in, in a train stream and a held-out stream. Levels 1-2: every fact of the
level's relations is a train unit under its trained styles and a held-out unit under its held-out styles.
Level 3: every one-hop fact (people's level-2 relations, cities' `located`) and the `residence` fact of
most people are train units under every style; the `residence` facts of the held-out people (the first of
a seeded order, as many as validation and test need) are the held-out units.

Index i goes to the held-out stream when the running share of held-out indices, (validation + test) /
all, steps up at i, else to the train stream; within a stream, item k is round k // units of a seeded
order of the units, rendered in the unit's style number `round` (its styles seeded-shuffled per fact).
So the first rounds of train show every fact once before any fact twice: a train split at least as
large as the number of facts shows every fact (`check` refuses a smaller one), and no prompt repeats.
Train items may go to train only, held-out items to validation or test only (`Candidate.splits`).
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

import pyarrow as pa

from cards import attribution
from cards.corpus import Candidate, item_rng, stable_hash
from facts.check import check_record
from facts.kb import CITY, RELATIONS, KnowledgeBase, knowledge_base
from facts.phrasings import LEVELS, held_out, render, trained

NAME = "facts"
EXHAUSTED = "every item of its stream already drawn"
HOLDOUTS = {"": "trained", "phrasing": "held-out phrasing", "two-hop": "held-out two-hop fact"}


@dataclass(frozen=True)
class Unit:
    subject: str
    relation: str
    styles: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    kb: KnowledgeBase
    train: tuple[Unit, ...]
    held: tuple[Unit, ...]
    held_kind: str  # what the held-out stream holds out: "phrasing" or "two-hop"
    held_people: tuple[str, ...]  # level 3: whose residence is held out


def people(options, level: int) -> int:
    return options.people or LEVELS[level].people


def held_people_count(level: int, sizes: tuple[int, int, int]) -> int:
    """Level 3: the people whose residence fact is held out, enough for validation and test."""
    return math.ceil((sizes[1] + sizes[2]) / len(LEVELS[level].styles)) if LEVELS[level].two_hop else 0


@functools.lru_cache(maxsize=8)
def plan(options, level: int, sizes: tuple[int, int, int]) -> Plan:
    """The units of a configuration (sizes: train, validation, test)."""
    spec, kb = LEVELS[level], knowledge_base(options.seed, people(options, level), options.cities)
    facts = [(s, r) for s, r, _ in kb.facts(spec.relations)]
    rng = random.Random(stable_hash(options.seed, NAME, f"level{level}", "held-people"))
    held_people = tuple(rng.sample(kb.people, held_people_count(level, sizes)))
    chosen = set(held_people)
    if spec.two_hop:
        train = [Unit(s, r, spec.styles) for s, r in facts if not (r == "residence" and s in chosen)]
        held = [Unit(s, r, spec.styles) for s, r in facts if r == "residence" and s in chosen]
    else:
        train = [Unit(s, r, trained(level, r)) for s, r in facts]
        held = [Unit(s, r, held_out(level, r)) for s, r in facts]
    return Plan(kb, _shuffled(train, options.seed, level, "train"), _shuffled(held, options.seed, level, "held"),
                "two-hop" if spec.two_hop else "phrasing", held_people)


def _shuffled(units: list[Unit], seed: int, level: int, stream: str) -> tuple[Unit, ...]:
    random.Random(stable_hash(seed, NAME, f"level{level}", stream)).shuffle(units)
    return tuple(units)


def stream_of(index: int, sizes: tuple[int, int, int]) -> tuple[bool, int]:
    """(held-out?, rank within its stream) of an index: held-out indices spread evenly at the share
    (validation + test) / all."""
    total, held = sum(sizes), sizes[1] + sizes[2]
    before = index * held // total
    if (index + 1) * held // total > before:
        return True, before
    return False, index - before


def pick(units: tuple[Unit, ...], rank: int, seed: int) -> tuple[Unit, str] | None:
    """The unit and style of item `rank` of a stream, or None when the stream is used up."""
    if not units:
        return None
    round_, unit = divmod(rank, len(units))
    unit = units[unit]
    if round_ >= len(unit.styles):
        return None
    styles = list(unit.styles)
    random.Random(stable_hash(seed, NAME, unit.subject, unit.relation, "styles")).shuffle(styles)
    return unit, styles[round_]


def make_item(options, level: int, sizes: tuple[int, int, int], index: int) -> Candidate:
    """Candidate number `index` of level `level`: a checked record, or why there is none."""
    at = plan(options, level, sizes)
    held, rank = stream_of(index, sizes)
    picked = pick(at.held if held else at.train, rank, options.seed)
    if picked is None:
        return Candidate(None, rejected=EXHAUSTED)
    unit, style = picked
    rng = item_rng(options.seed, NAME, f"level{level}", index)
    record = _record(at, level, index, unit, style, at.held_kind if held else "", rng)
    reason = check_record(record, at.kb)
    if reason:
        return Candidate(None, rejected=reason)
    return Candidate(record, prompt_key=record["prompt"], group_key=record["prompt"],
                     splits=("validation", "test") if held else ("train",))


def _record(at: Plan, level: int, index: int, unit: Unit, style: str, holdout: str, rng: random.Random) -> dict:
    kb, subject, relation = at.kb, unit.subject, unit.relation
    value = kb.value(subject, relation)
    prompt, subject_span, relation_span = render(style, relation, subject)
    completion = " " + value
    record = {
        "id": f"facts-l{level}-s{kb.seed}-{index:09d}",
        "level": level,
        "subject": subject,
        "subject_kind": kb.kind(subject),
        "relation": relation,
        "hops": RELATIONS[relation].hops,
        "bridge": kb.value(subject, "city") if RELATIONS[relation].hops == 2 else None,
        "answer": value,
        "phrasing": style,
        "holdout": HOLDOUTS[holdout],
        "prompt": prompt,
        "completion": completion,
        "subject_span": attribution.span(*subject_span),
        "relation_span": attribution.span(*relation_span),
        "attribution": [attribution.target(relation, (1, len(completion)), [subject_span, relation_span])],
    }
    record.update(_partners(kb, level, subject, relation, style, value, rng))
    return record


def _partners(kb: KnowledgeBase, level: int, subject: str, relation: str, style: str, value: str,
              rng: random.Random) -> dict:
    """The same phrasing with another subject (of the same kind, another answer) and with another relation of
    the same subject (another answer): None where no such partner exists."""
    others = kb.cities if kb.kind(subject) == CITY else kb.people
    other = next((o for o in (rng.choice(others) for _ in range(50)) if kb.value(o, relation) != value), None)
    relations = [r for r in kb.relations(subject) if r in LEVELS[level].relations and r != relation
                 and kb.value(subject, r) != value]
    swapped = rng.choice(relations) if relations else None
    fields = {}
    for prefix, who, rel in (("cf_subject", other, relation), ("cf_relation", subject, swapped)):
        usable = who is not None and rel is not None
        fields[prefix] = (who if prefix == "cf_subject" else rel) if usable else None
        fields[f"{prefix}_prompt"] = render(style, rel, who)[0] if usable else None
        fields[f"{prefix}_answer"] = kb.value(who, rel) if usable else None
    return fields


SPAN = attribution.SPAN
SCHEMA = pa.schema([
    ("id", pa.string()), ("level", pa.int32()), ("subject", pa.string()), ("subject_kind", pa.string()),
    ("relation", pa.string()), ("hops", pa.int32()), ("bridge", pa.string()), ("answer", pa.string()),
    ("phrasing", pa.string()), ("holdout", pa.string()), ("prompt", pa.string()), ("completion", pa.string()),
    ("subject_span", SPAN), ("relation_span", SPAN),
    ("cf_subject", pa.string()), ("cf_subject_prompt", pa.string()), ("cf_subject_answer", pa.string()),
    ("cf_relation", pa.string()), ("cf_relation_prompt", pa.string()), ("cf_relation_answer", pa.string()),
    attribution.FIELD,
])

FIELDS = {
    "id": "stable identifier `facts-l<level>-s<seed>-<index>`",
    "level": "the level (1-3)",
    "subject": "the invented entity the prompt asks about (one word)",
    "subject_kind": "`person` or `city`",
    "relation": "the relation asked for (`country`, `language`, ..., `located`, `residence`)",
    "hops": "1, or 2 for `residence` (the country of the person's city)",
    "bridge": "for a two-hop fact, the intermediate entity (the person's city); else null",
    "answer": "the attribute: the knowledge base's value for (subject, relation), one word",
    "phrasing": "the phrasing style (`fact`, `plain`, `the`, `question`, ...)",
    "holdout": "`trained` (a train record), `held-out phrasing` or `held-out two-hop fact`: what validation/test "
               "hold out",
    "prompt": "the text a model continues",
    "completion": "a space, then the answer (what the model should write next)",
    "subject_span": "character offsets {start, end} of the subject in `prompt`",
    "relation_span": "character offsets {start, end} of the relation phrase in `prompt`",
    "cf_subject": "counterfactual partner 1: another subject of the same kind whose answer differs (null if none)",
    "cf_subject_prompt": "the same phrasing and relation with `cf_subject`: the same number of words",
    "cf_subject_answer": "the answer of `cf_subject_prompt`",
    "cf_relation": "counterfactual partner 2: another relation of the same subject with another answer (null if "
                   "none, e.g. a city)",
    "cf_relation_prompt": "the same phrasing and subject with `cf_relation`: the same number of words",
    "cf_relation_answer": "the answer of `cf_relation_prompt`",
    "attribution": attribution.DOC + "; here the answer word, sourced from the subject and the relation phrase",
}
