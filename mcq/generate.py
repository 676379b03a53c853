"""One multiple-choice record per index: the level ladder, gold-position balance, verification, counterfactuals.

`make_item(options, level, index)` is the pure per-index function the corpus core runs in workers:
it takes the option count and gold position from `gold_slot` (exactly balanced, see there), asks a
source for a question, places the gold option, has the source's verifier confirm that exactly the
gold option is correct, picks labels (checked against their scheme) and a style, renders the
MMLU-style prompt and, when asked,
builds the counterfactual partner and runs the single-token check. `check_record` re-verifies a
stored record from its fields alone. `options` is `mcq.generator.Options`.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass

import pyarrow as pa

from cards import attribution
from cards.corpus import Candidate, item_rng, stable_hash
from mcq import attribution as spans
from mcq.labels import SCHEMES, STYLES, label_problem, make_labels, multi_token_labels, render_prompt, token_count
from mcq.sources import SOURCES, Unusable

COUNTERFACTUALS = {
    "swap": "the gold option's text trades places with another option's: same question, same option set, same "
            "labels, the correct label moves",
    "labels": "the gold option's label trades places with another option's label: same question and options in "
              "the same order, only two labels differ and the correct label changes",
}


@dataclass(frozen=True)
class Recipe:
    """What a level draws from: option counts, label schemes and styles, sources, distractor closeness."""

    options: tuple[int, ...]
    schemes: tuple[str, ...]
    styles: tuple[str, ...]
    sources: tuple[str, ...]
    near: bool


ALL_COUNTS = tuple(range(2, 11))
LEVELS = {
    1: Recipe((2,), ("abcd",), ("dot",), ("context",), False),
    2: Recipe((4,), ("abcd",), ("dot",), ("context",), False),
    3: Recipe(ALL_COUNTS, ("abcd", "lower", "numbers", "shuffled"), tuple(STYLES), ("context",), False),
    4: Recipe(ALL_COUNTS, tuple(SCHEMES), tuple(STYLES), tuple(SOURCES), True),
}
LEVEL_NOTES = {
    1: "2 options, labels A B, style `A.`, context binding; distractors are values the context does not mention",
    2: "4 options, labels A-D, style `A.`, context binding; distractors the context does not mention",
    3: "2-10 options; labels ABCD, lowercase, numbers or shuffled letters and styles `A.`, `(A)`, `A:` drawn "
       "per record; context binding",
    4: "2-10 options; every source (context, arithmetic, order, multiplication, sql); every label scheme (random "
       "letters, with or without A-D, and shuffled numbers too); "
       "near-miss distractors (values bound to other entities, answers off by one or a carry, words sharing "
       "a first letter or one letter shorter, corrupted queries)",
}


def recipe(options, level: int) -> Recipe:
    """The level's recipe, with the choices `options` sets (a field left None takes the level's)."""
    base = LEVELS[level]
    return dataclasses.replace(base, **{f.name: getattr(options, f.name) for f in dataclasses.fields(base)
                                        if getattr(options, f.name) is not None})


def _permutation(items, *key) -> list:
    items = list(items)
    random.Random(stable_hash(*key)).shuffle(items)
    return items


def gold_slot(seed: int, config: str, index: int, counts: tuple[int, ...]) -> tuple[int, int]:
    """(option count k, gold position) of an index. Every allowed count occurs once in each block of
    len(counts) consecutive indices; for each count, its occurrences taken k at a time put the gold
    at every position once. Both orders are hash-shuffled per block, so position is balanced exactly
    (up to the last incomplete block) and unpredictable from the index. The candidate's stratum is
    (k, gold): the corpus core gives each split its share of every stratum, so each split is balanced too."""
    block, slot = divmod(index, len(counts))
    k = _permutation(counts, seed, config, "count", block)[slot]
    turn, place = divmod(block, k)
    return k, _permutation(range(k), seed, config, "gold", k, turn)[place]


def load_tokenizer(name: str):
    """The `--tokenizer` (`cards.attribution.load_tokenizer`: once per process, a UsageError if it cannot load)."""
    return attribution.load_tokenizer(name)


def verdict(source: str, facts: dict, choices: list[str], gold: int) -> str | None:
    """None when the source's verifier finds exactly one correct option and it is `gold`; else why not."""
    if len(set(choices)) != len(choices):
        return "duplicate options"
    correct = SOURCES[source].verify(facts, choices)
    if correct == [gold]:
        return None
    if not correct:
        return "verifier: no correct option"
    return "verifier: several correct options" if len(correct) > 1 else "verifier: another option is correct"


def make_item(options, level: int, index: int) -> Candidate:
    """The candidate record at `index` of `level`: a pure function of (options, level, index)."""
    plan = recipe(options, level)
    rng = item_rng(options.seed, "mcq", f"level{level}", index)
    k, gold = gold_slot(options.seed, f"level{level}", index, plan.options)
    source = rng.choice(plan.sources)
    try:
        question = SOURCES[source].generate(rng, k, plan.near)
    except Unusable as err:
        return Candidate(None, str(err))
    if len(question.distractors) < k - 1:
        return Candidate(None, f"{source}: too few distractors")
    distractors = rng.sample(question.distractors, k - 1)
    choices = distractors[:gold] + [question.answer] + distractors[gold:]
    reason = verdict(source, question.facts, choices, gold)
    if reason:
        return Candidate(None, reason)
    scheme, style = rng.choice(plan.schemes), rng.choice(plan.styles)
    labels = make_labels(scheme, k, rng)
    reason = label_problem(scheme, labels)
    if reason:
        return Candidate(None, reason)
    text = SOURCES[source].render(question.facts)
    record = {
        "id": f"mcq-l{level}-s{options.seed}-{index:09d}",
        "level": level,
        "source": source,
        "question": text,
        "choices": choices,
        "labels": labels,
        "answer": gold,
        "answer_label": labels[gold],
        "label_scheme": scheme,
        "label_style": style,
        "prompt": render_prompt(text, choices, labels, style),
        "facts": json.dumps(question.facts, sort_keys=True),
    }
    record["attribution"] = spans.targets(record, question.facts)
    if options.counterfactual:
        record.update(counterfactual(record, options.counterfactual, rng))
        reason = verdict(source, question.facts, record["cf_choices"], record["cf_answer"])
        if reason:
            return Candidate(None, "counterfactual " + reason)
    if options.tokenizer:
        reason = token_check(load_tokenizer(options.tokenizer), record)
        if reason:
            return Candidate(None, reason)
    return Candidate(record, prompt_key=record["prompt"],
                     group_key=source + "\n" + record["facts"], stratum=f"{k} {gold}")


def counterfactual(record: dict, kind: str, rng: random.Random) -> dict:
    """The partner of a record: the correct label moves to another, randomly chosen, option's label."""
    gold = record["answer"]
    other = rng.choice([i for i in range(len(record["choices"])) if i != gold])
    choices, labels = list(record["choices"]), list(record["labels"])
    if kind == "swap":
        choices[gold], choices[other] = choices[other], choices[gold]
        answer = other
    else:
        labels[gold], labels[other] = labels[other], labels[gold]
        answer = gold
    return {
        "cf_kind": kind,
        "cf_prompt": render_prompt(record["question"], choices, labels, record["label_style"]),
        "cf_choices": choices,
        "cf_labels": labels,
        "cf_answer": answer,
        "cf_answer_label": labels[answer],
    }


def token_check(tokenizer, record: dict) -> str | None:
    """Labels single tokens after the prompt (and after the partner's prompt, of equal token length)."""
    if multi_token_labels(tokenizer, record["prompt"], record["labels"]):
        return "label not a single token"
    if "cf_prompt" in record:
        if token_count(tokenizer, record["cf_prompt"]) != token_count(tokenizer, record["prompt"]):
            return "counterfactual: token counts differ"
        if multi_token_labels(tokenizer, record["cf_prompt"], record["cf_labels"]):
            return "counterfactual: label not a single token"
    return None


def check_record(record: dict) -> str | None:
    """Re-verify a stored record from its fields alone: None when it is sound, else what is wrong."""
    source, facts = SOURCES[record["source"]], json.loads(record["facts"])
    if record["question"] != source.render(facts):
        return "question does not match its facts"
    prompt = render_prompt(record["question"], record["choices"], record["labels"], record["label_style"])
    if record["prompt"] != prompt:
        return "prompt does not match its fields"
    if record["answer_label"] != record["labels"][record["answer"]]:
        return "answer_label is not labels[answer]"
    if label_problem(record["label_scheme"], record["labels"]):
        return label_problem(record["label_scheme"], record["labels"])
    reason = verdict(record["source"], facts, record["choices"], record["answer"])
    if reason or not record.get("cf_prompt"):
        return reason
    if len(record["cf_prompt"]) != len(record["prompt"]):
        return "counterfactual: lengths differ"
    if record["cf_answer_label"] != record["cf_labels"][record["cf_answer"]] or \
            record["cf_answer_label"] == record["answer_label"]:
        return "counterfactual: answer_label wrong or unchanged"
    reason = verdict(record["source"], facts, record["cf_choices"], record["cf_answer"])
    return "counterfactual " + reason if reason else None


def schema(counterfactual: str | None) -> pa.Schema:
    strings = pa.list_(pa.string())
    fields = [
        ("id", pa.string()), ("level", pa.int32()), ("source", pa.string()), ("question", pa.string()),
        ("choices", strings), ("labels", strings), ("answer", pa.int64()), ("answer_label", pa.string()),
        ("label_scheme", pa.string()), ("label_style", pa.string()), ("prompt", pa.string()),
        ("facts", pa.string()), attribution.FIELD,
    ]
    if counterfactual:
        fields += [("cf_kind", pa.string()), ("cf_prompt", pa.string()), ("cf_choices", strings),
                   ("cf_labels", strings), ("cf_answer", pa.int64()), ("cf_answer_label", pa.string())]
    return pa.schema(fields)
