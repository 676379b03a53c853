"""The question sources: per source, a generator, a renderer and an independent verifier.

`generate(rng, k, near)` returns a `Question`: the structured `facts`, the gold option text and at
least k-1 distractors (near-miss ones when `near`). `render(facts)` writes the question text from the
facts alone. `verify(facts, choices)` decides, from the facts and the option texts only, which options
are correct: it never sees the generator's answer, and it computes the answer by a different route
(a lookup in the stated pairs, pairwise comparisons instead of min/max, Python ints instead of
multmath, every SQL option executed against the request's structured query on seeded databases).
Facts are JSON-serialisable, so a stored record can be re-verified (`mcq.generate.check_record`).
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, NamedTuple

from multmath import problem
from tinysql import vocabulary
from tinysql.generate import sample as sample_sql
from tinysql.generator import Options as SqlOptions
from tinysql.query import AGGREGATES_BY_KIND, Context, to_sql

from mcq.words import COLOURS, KEY_CONSONANTS, KEY_VOWELS, NAMES, NOUNS, OBJECTS, PETS


class Unusable(Exception):
    """The generator could not make a question (the candidate is rejected with this reason)."""


@dataclass
class Question:
    facts: dict
    answer: str
    distractors: list[str]


class Source(NamedTuple):
    generate: Callable[[random.Random, int, bool], Question]
    render: Callable[[dict], str]
    verify: Callable[[dict, list[str]], list[int]]
    about: str


def _as_int(text: str) -> int | None:
    return int(text) if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()) else None


def _fill(rng: random.Random, chosen: list, pool, count: int, exclude=()) -> list:
    """`chosen` topped up to `count` distinct items with items of `pool` (not in `exclude`)."""
    rest = [x for x in pool if x not in chosen and x not in exclude]
    return chosen + rng.sample(rest, max(0, min(count - len(chosen), len(rest))))


# ---------------------------------------------------------------------------------------------
# Context binding: facts stated in the prompt, then asked about.

RELATIONS = {  # entities, values, fact template, question template
    "colour": (OBJECTS, COLOURS, "The {e} is {v}.", "What colour is the {e}?"),
    "pet": (NAMES, PETS, "{e} has a {v}.", "Which pet does {e} have?"),
    "value": (None, None, "{e} = {v}", "What is the value of {e}?"),
}


def _keys_and_numbers(rng: random.Random, n: int) -> tuple[list[str], list[str]]:
    """n distinct made-up three-letter keys (`kel`, `wop`) and the numbers 10-99 as text."""
    keys: list[str] = []
    while len(keys) < n:
        key = rng.choice(KEY_CONSONANTS) + rng.choice(KEY_VOWELS) + rng.choice(KEY_CONSONANTS)
        keys += [key] if key not in keys else []
    return keys, [str(v) for v in range(10, 100)]


def generate_context(rng: random.Random, k: int, near: bool) -> Question:
    relation = rng.choice(sorted(RELATIONS))
    n = rng.randint(max(2, k), k + 2) if near else rng.randint(2, 4)
    entities, values, _, _ = RELATIONS[relation]
    if relation == "value":
        entities, values = _keys_and_numbers(rng, n)
    bound = rng.sample(values, n)
    pairs = [[e, v] for e, v in zip(rng.sample(entities, n), bound)]
    asked = rng.randrange(n)
    others = [v for i, (_, v) in enumerate(pairs) if i != asked]
    distractors = rng.sample(others, k - 1) if near else _fill(rng, [], values, k - 1, exclude=bound)
    return Question({"relation": relation, "pairs": pairs, "query": pairs[asked][0]}, pairs[asked][1], distractors)


def render_context(facts: dict) -> str:
    _, _, fact, question = RELATIONS[facts["relation"]]
    stated = [fact.format(e=e, v=v) for e, v in facts["pairs"]]
    if facts["relation"] == "value":
        return "Keys and values: " + ", ".join(stated) + ". " + question.format(e=facts["query"])
    return " ".join(stated) + " " + question.format(e=facts["query"])


def verify_context(facts: dict, choices: list[str]) -> list[int]:
    """Correct: the option equal to the one value the context binds to the queried entity."""
    bound = [value for entity, value in facts["pairs"] if entity == facts["query"]]
    if len(bound) != 1:
        return []
    return [i for i, choice in enumerate(choices) if choice == bound[0]]


# ---------------------------------------------------------------------------------------------
# Arithmetic and comparison: small sums, differences, products; which number is largest/smallest.

ARITHMETIC = {"sum": "What is {a} + {b}?", "difference": "What is {a} - {b}?", "product": "What is {a} * {b}?",
              "largest": "Which number is the largest?", "smallest": "Which number is the smallest?"}


def nearby_numbers(rng: random.Random, value: int, count: int, near: bool, steps=()) -> list[int]:
    """`count` distinct non-negative numbers other than `value`: near misses (±1, ±2, ±10, the
    digits reversed, `value ± step`) when `near`, else random offsets up to a fifth of the value."""
    found: list[int] = []
    if near:
        offsets = [1, 2, 9, 10, 11, *steps]
        pool = [value + sign * d for d in offsets for sign in (1, -1)] + [int(str(value)[::-1])]
        rng.shuffle(pool)
        found = [x for x in dict.fromkeys(pool) if x >= 0 and x != value][:count]
    spread = max(10, value // 5)
    while len(found) < count:
        x = value + rng.choice((1, -1)) * rng.randint(1, spread)
        if x >= 0 and x != value and x not in found:
            found.append(x)
    return found


def generate_arithmetic(rng: random.Random, k: int, near: bool) -> Question:
    kind = rng.choice(sorted(ARITHMETIC))
    if kind in ("largest", "smallest"):
        low = rng.randint(10, 80)
        numbers = rng.sample(range(low, low + k + 4), k) if near else rng.sample(range(1, 100), k)
        gold = max(numbers) if kind == "largest" else min(numbers)
        return Question({"kind": kind, "numbers": sorted(numbers)}, str(gold), [str(x) for x in numbers if x != gold])
    top = {"sum": 99, "difference": 99, "product": 12 if not near else 19}[kind]
    a, b = rng.randint(2, top), rng.randint(2, top)
    a, b = (max(a, b), min(a, b)) if kind == "difference" else (a, b)
    value = {"sum": a + b, "difference": a - b, "product": a * b}[kind]
    steps = (a, b) if kind == "product" else ()
    return Question({"kind": kind, "a": a, "b": b}, str(value),
                    [str(x) for x in nearby_numbers(rng, value, k - 1, near, steps)])


def render_arithmetic(facts: dict) -> str:
    return ARITHMETIC[facts["kind"]].format(a=facts.get("a"), b=facts.get("b"))


def verify_arithmetic(facts: dict, choices: list[str]) -> list[int]:
    """Correct: the option whose integer equals the computed value, or that beats every other listed number."""
    values = [_as_int(c) for c in choices]
    if facts["kind"] in ("largest", "smallest"):
        numbers = facts["numbers"]
        beats = (lambda x, y: x > y) if facts["kind"] == "largest" else (lambda x, y: x < y)
        return [i for i, x in enumerate(values)
                if numbers.count(x) == 1 and all(beats(x, y) for y in numbers if y != x)]
    a, b = facts["a"], facts["b"]
    target = {"sum": lambda: a + b, "difference": lambda: a - b, "product": lambda: a * b}[facts["kind"]]()
    return [i for i, x in enumerate(values) if x == target]


# ---------------------------------------------------------------------------------------------
# Strings and order: which word comes first/last alphabetically, which is longest/shortest.

ORDER = {"first": "Which word comes first in alphabetical order?",
         "last": "Which word comes last in alphabetical order?",
         "longest": "Which word is the longest?", "shortest": "Which word is the shortest?"}


def _alphabetical(rng: random.Random, k: int, near: bool) -> list[str]:
    if near:  # all words share their first letter
        groups = {}
        for word in NOUNS:
            groups.setdefault(word[0], []).append(word)
        letter = rng.choice(sorted(letter for letter, words in groups.items() if len(words) >= k))
        return rng.sample(groups[letter], k)
    return rng.sample(NOUNS, k)


@lru_cache(maxsize=None)
def _beaten_by_length(length: int, near: bool, longest: bool) -> tuple[str, ...]:
    """The nouns strictly shorter (longer) than `length`; near: by one or two letters."""
    gaps = [length - len(w) if longest else len(w) - length for w in NOUNS]
    return tuple(w for w, gap in zip(NOUNS, gaps) if gap > 0 and (gap <= 2 or not near))


def _by_length(rng: random.Random, k: int, near: bool, longest: bool) -> tuple[str, list[str]]:
    """A gold word and k-1 words strictly shorter (longer) than it."""
    golds = [g for g in NOUNS if len(_beaten_by_length(len(g), near, longest)) >= k - 1]
    gold = rng.choice(golds)
    return gold, rng.sample(_beaten_by_length(len(gold), near, longest), k - 1)


def generate_order(rng: random.Random, k: int, near: bool) -> Question:
    kind = rng.choice(sorted(ORDER))
    if kind in ("first", "last"):
        words = _alphabetical(rng, k, near)
        gold = min(words) if kind == "first" else max(words)
        others = [w for w in words if w != gold]
    else:
        gold, others = _by_length(rng, k, near, kind == "longest")
        words = [gold, *others]
    return Question({"kind": kind, "words": sorted(words)}, gold, others)


def render_order(facts: dict) -> str:
    return ORDER[facts["kind"]]


def verify_order(facts: dict, choices: list[str]) -> list[int]:
    """Correct: the listed word that comes before (after, is longer/shorter than) every other listed word."""
    words = facts["words"]
    beats = {"first": lambda x, y: x < y, "last": lambda x, y: x > y,
             "longest": lambda x, y: len(x) > len(y), "shortest": lambda x, y: len(x) < len(y)}[facts["kind"]]
    return [i for i, c in enumerate(choices) if c in words and all(beats(c, w) for w in words if w != c)]


# ---------------------------------------------------------------------------------------------
# Multiplication (multmath): multi-digit products with the classic slips as distractors.

def slips(a: int, b: int) -> list[int]:
    """Wrong products a person makes: carries forgotten, a partial product dropped, or shifted one
    place left or right (multmath's column sums and partial products)."""
    p = problem(a, b)
    columns = [s - (p.running_sums[i - 1] // 10 if i else 0) for i, s in enumerate(p.running_sums)]
    slips = [sum((s % 10) * 10 ** i for i, s in enumerate(columns))]
    for k, partial in enumerate(p.partial_products):
        slips += [p.product - partial, p.product + 9 * partial]
        if k > 0:
            slips.append(p.product - partial + partial // 10)
    return [x for x in slips if x > 0 and x != p.product]


def _operand(rng: random.Random, digits: tuple[int, int]) -> int:
    size = rng.randint(*digits)
    return rng.randint(10 ** (size - 1), 10 ** size - 1)


def generate_multiplication(rng: random.Random, k: int, near: bool) -> Question:
    digits = (2, 3) if near else (2, 2)
    a, b = _operand(rng, digits), _operand(rng, digits)
    product = problem(a, b).product
    distractors = list(dict.fromkeys(slips(a, b)))[: k - 1] if near else []
    distractors += [x for x in nearby_numbers(rng, product, k - 1, near, (a, b)) if x not in distractors]
    rng.shuffle(distractors)
    return Question({"a": a, "b": b}, str(product), [str(x) for x in distractors[: k - 1]])


def render_multiplication(facts: dict) -> str:
    return f"What is {facts['a']} * {facts['b']}?"


def verify_multiplication(facts: dict, choices: list[str]) -> list[int]:
    """Correct: the option equal to a*b computed with Python integers (independently of multmath)."""
    target = facts["a"] * facts["b"]
    return [i for i, c in enumerate(choices) if _as_int(c) == target]


# ---------------------------------------------------------------------------------------------
# SQL (TinySQL): which query answers the request; distractors are corrupted gold queries.

SQL_LEVELS = (1, 2, 3, 4)
FLIP = {"ASC": "DESC", "DESC": "ASC"}
OPPOSITE = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "=": "!=", "!=": "="}


@lru_cache(maxsize=8192)
def _execution(reference: str, option: str, create: str) -> tuple[bool, bool]:
    """(same results as the reference on every seeded database, ran without error)."""
    from tinysql.score import score_one  # here, not at the top: it imports `datasets`, slow for every mcq-gen start
    result = score_one(reference, option, create)
    return result["execution"], result["error"] is None


def _sql_context(facts: dict):
    return Context([facts["table"]], {facts["table"]: facts["columns"]}, {}, {}, "bare")


def _edited(spec: dict, change) -> dict:
    """A copy of `spec` with `change` applied to it."""
    new = copy.deepcopy(spec)
    change(new)
    return new


def _corruptions(spec: dict, context) -> list[dict]:
    """Wrong variants of a one-table query: flipped direction or another sort column, another
    aggregate, a wrong/missing/extra column, a flipped operator, another literal, a dropped
    condition, AND and OR swapped."""
    refs = [r for r in context.refs() if r[1] != "id"]
    return [*_order_variants(spec, refs), *_aggregate_variants(spec, context, refs),
            *_select_variants(spec, context), *_where_variants(spec, context)]


def _order_variants(spec: dict, refs: list) -> list[dict]:
    variants = []
    for i, order in enumerate(spec["order_by"]):
        variants.append(_edited(spec, lambda s: s["order_by"][i].update(direction=FLIP[order["direction"]])))
        for ref in refs if "column" in order else ():
            if all(ref != o.get("column") for o in spec["order_by"]):
                variants.append(_edited(spec, lambda s: s["order_by"][i].update(column=ref)))
    return variants


def _aggregate_variants(spec: dict, context, refs: list) -> list[dict]:
    variants = []
    taken = [(a["func"], a["column"]) for a in spec["aggregates"]]
    for i in range(len(spec["aggregates"])):
        for func, column in _aggregate_choices(context, refs):
            if (func, column) not in taken:
                alias = f"{func}_{column[1] if column else 'all'}"
                variants.append(_edited(spec, lambda s: s["aggregates"][i].update(func=func, column=column,
                                                                                   alias=alias)))
    return variants


def _select_variants(spec: dict, context) -> list[dict]:
    if spec["aggregates"] or not spec["select"]:
        return []
    variants = []
    unused = [r for r in context.refs() if r not in spec["select"]]
    for i in range(len(spec["select"])):
        variants += [_edited(spec, lambda s: s["select"].__setitem__(i, ref)) for ref in unused]
        if len(spec["select"]) > 1:
            variants.append(_edited(spec, lambda s: s["select"].pop(i)))
    return variants + [_edited(spec, lambda s: s["select"].append(ref)) for ref in unused]


def _where_variants(spec: dict, context) -> list[dict]:
    conditions = spec["where"]["conditions"] if spec["where"] else []
    variants = []
    for i, cond in enumerate(conditions):
        variants.append(_edited(spec, lambda s: s["where"]["conditions"].pop(i) if len(conditions) > 1
                                else s.update(where=None)))
        if cond["op"] in OPPOSITE:
            variants.append(_edited(spec, lambda s: s["where"]["conditions"][i].update(op=OPPOSITE[cond["op"]])))
            variants += [_edited(spec, lambda s: s["where"]["conditions"][i].update(value=value))
                         for value in dict.fromkeys(context.values(cond["column"])) if value != cond["value"]]
    if len(conditions) > 1:
        swapped = "OR" if spec["where"]["connector"] == "AND" else "AND"
        variants.append(_edited(spec, lambda s: s["where"].update(connector=swapped)))
    return variants


def _aggregate_choices(context, refs) -> list[tuple[str, list[str] | None]]:
    """Every (function, column) a one-table query may aggregate: COUNT(*), and the functions that
    suit each non-key column's type (keys are only counted, as in TinySQL)."""
    choices = [("COUNT", None)]
    for ref in refs:
        funcs = ("COUNT",) if _is_foreign_key(ref[1]) else AGGREGATES_BY_KIND[context.kind(ref)]
        choices += [(func, ref) for func in funcs]
    return choices


def _is_foreign_key(column: str) -> bool:
    return vocabulary.load().columns[column].references is not None


def _tinysql_item(rng: random.Random):
    """A validated one-table TinySQL item with its spec and context (the context's sample rows give
    realistic wrong literals)."""
    for _ in range(5):
        level, index = rng.choice(SQL_LEVELS), rng.getrandbits(48)
        item = sample_sql(SqlOptions(), level, index)
        if item.candidate.record is not None:
            return item.candidate.record, item.spec, item.context
    raise Unusable("sql: no valid TinySQL item")


def generate_sql(rng: random.Random, k: int, near: bool) -> Question:
    record, spec, sampled = _tinysql_item(rng)
    table = sampled.tables[0]
    facts = {"table": table, "columns": sampled.columns[table], "create": record["create_statement"],
             "request": record["english_prompt"], "spec": spec}
    context, gold, create = _sql_context(facts), record["sql_statement"], facts["create"]
    if to_sql(spec, context) != gold:
        raise Unusable("sql: spec does not reproduce the TinySQL label")
    texts = list(dict.fromkeys(to_sql(v, context) for v in _corruptions(spec, sampled)))
    rng.shuffle(texts)
    distractors = []
    for text in texts:
        same, ran = _execution(gold, text, create)
        if text != gold and ran and not same:
            distractors.append(text)
            if len(distractors) == k - 1:
                break
    return Question(facts, gold, distractors)


def render_sql(facts: dict) -> str:
    return f"Schema: {facts['create']}\nRequest: {facts['request']}\nWhich SQL query answers the request?"


def verify_sql(facts: dict, choices: list[str]) -> list[int]:
    """Correct: the options that return the same rows as the request's structured query on every
    one of tinysql.score's seeded databases."""
    reference = to_sql(facts["spec"], _sql_context(facts))
    return [i for i, c in enumerate(choices) if all(_execution(reference, c, facts["create"]))]


SOURCES = {
    "context": Source(generate_context, render_context, verify_context,
                      "context binding: objects and their colours, people and their pets, or keys and numbers "
                      "stated in the prompt, then one asked about"),
    "arithmetic": Source(generate_arithmetic, render_arithmetic, verify_arithmetic,
                         "sums and differences of numbers below 100, small products, the largest/smallest of "
                         "the listed numbers; distractors near the answer"),
    "order": Source(generate_order, render_order, verify_order,
                    "which listed word comes first/last alphabetically, which is longest/shortest"),
    "multiplication": Source(generate_multiplication, render_multiplication, verify_multiplication,
                             "multi-digit products built with multmath; near misses are forgotten carries, "
                             "dropped or shifted partial products, answers off by one digit"),
    "sql": Source(generate_sql, render_sql, verify_sql,
                  "which SQL query answers a request over a TinySQL table (levels 1-4); distractors are the "
                  "gold query corrupted and shown wrong by execution"),
}
