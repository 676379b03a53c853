"""One assoc record per index: the kind, the item, the independent check, the record and its keys.

Item i of a configuration is of kind `kinds[i % len(kinds)]` (every kind equally often before checks
and de-duplication), drawn from `item_rng(seed, "assoc", config, i)`. The record is kept only if
`assoc.check.check_record` re-derives its completion from the prompt and finds its attribution spans
right. Splits are stratified by kind; the leakage group is the kind's (see `GROUPS`).
"""

from __future__ import annotations

import pyarrow as pa

from assoc import analogy, kinds
from assoc.check import check_record
from assoc.levels import KINDS, LEVELS
from cards import attribution
from cards.corpus import Candidate, item_rng

NAME = "assoc"
SCHEMA = pa.schema([("id", pa.string()), ("level", pa.int32()), ("kind", pa.string()), ("concept", pa.string()),
                    ("prompt", pa.string()), ("completion", pa.string()), attribution.FIELD])
FIELDS = {
    "id": "stable id: generator, level, seed and candidate index",
    "level": "the level (see the level ladder)",
    "kind": f"the kind of item: {', '.join(KINDS)}",
    "concept": "the concept label for probing: the queried key (kv), the motif shape (`repeat ABA`), the brackets "
               "left open (`close 2`), `copy` or `reverse`, `induction`, the relation (analogy)",
    "prompt": "the text a model continues: words separated by single spaces",
    "completion": "the answer: a space, then the answer words separated by single spaces",
    "attribution": attribution.DOC,
}
GROUPS = {  # what a leakage group is: records that share it sit in one split
    "kv": "the set of key = value bindings and the queried key (the same bindings in another order)",
    "repeat": "the motif as a cycle (the same motif at any phase and length)",
    "brackets": "the bracket skeleton (the same brackets with other words between them)",
    "copy": "the set of words (copied or reversed, in any order)",
    "induction": "the pair X Y (an X -> Y association seen in training is never tested)",
    "analogy": "the relation and the unordered pair of entities",
}
REJECTED = "failed the independent check"


def kind_of(options, index: int) -> str:
    chosen = options.kinds or KINDS
    return chosen[index % len(chosen)]


def make_item(options, level: int, index: int, kb=None) -> Candidate:
    kind = kind_of(options, index)
    rng = item_rng(options.seed, NAME, f"level{level}", index)
    recipe = LEVELS[level]
    item = analogy.make(rng, recipe, kb) if kind == "analogy" else kinds.MAKERS[kind](rng, recipe)
    record = {"id": f"{NAME}-{level}-{options.seed}-{index}", "level": level, "kind": kind, "concept": item.concept,
              "prompt": item.prompt, "completion": item.completion, "attribution": item.targets}
    attribution.check(item.targets, item.prompt, item.completion)
    reason = check_record(record, kb)
    if reason is not None:
        return Candidate(None, f"{REJECTED}: {reason}")
    return Candidate(record, prompt_key=item.prompt, group_key=item.group, stratum=kind)
