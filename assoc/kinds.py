"""One maker per kind of assoc item: it draws an item from a level's recipe and renders it, with the
attribution targets known by construction (where each determining word was written).

A maker returns an `Item`: prompt, completion (a space, then the answer words), the concept label for
probing, the attribution targets and the leakage group. It never checks its own answer: `assoc.check`
re-derives every answer from the prompt text alone. Sources never include the prompt's final query
word (every answer depends on it); they are the context positions that determine the answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from assoc.levels import BRACKETS, Recipe
from assoc.words import Text, pool
from cards.attribution import target


@dataclass
class Item:
    prompt: str
    completion: str
    concept: str
    targets: list[dict]
    group: str  # the leakage group: records sharing it sit in one split


def draw(rng: random.Random, bounds: tuple[int, int]) -> int:
    return rng.randint(*bounds)


def words(recipe: Recipe) -> tuple[str, ...]:
    return pool(recipe.pool, recipe.syllables)


def kv(rng: random.Random, r: Recipe) -> Item:
    """`k1 = v1 , k2 = v2 . q =` -> ` v`: the value bound to the queried key."""
    n = draw(rng, r.pairs)
    query = rng.choice(words(r))
    others = [w for w in words(r) if w != query]
    if r.near:  # keys that share the query's first letter come first, where there are enough of them
        near = [w for w in others if w[0] == query[0]]
        others = near if len(near) >= n - 1 else others
    keys = rng.sample(others, n - 1)
    keys.insert(rng.randrange(n), query)
    values: list[str] = []
    while len(values) < n:
        digits = draw(rng, r.digits)
        value = str(rng.randrange(10 ** (digits - 1), 10 ** digits))
        if value not in values:
            values.append(value)
    prompt, spans = Text(), {}
    for i, (key, value) in enumerate(zip(keys, values)):
        if i:
            prompt.add(",")
        spans[key] = (prompt.add(key), prompt.add("="), prompt.add(value))
    prompt.extend([".", query, "="])
    gold = values[keys.index(query)]
    answer = Text(" ")
    at = answer.add(gold)
    key_span, _, value_span = spans[query]
    group = "kv " + " ".join(sorted(f"{k}={v}" for k, v in zip(keys, values))) + f" ? {query}"
    return Item(prompt.text, answer.text, query, [target(query, at, [key_span, value_span])], group)


def repeat(rng: random.Random, r: Recipe) -> Item:
    """A motif of `period` words repeated and cut: `A B A B A` -> ` B`; sources: every earlier word in the
    answer's place of the motif."""
    period = draw(rng, r.period)
    while True:
        if r.motif_repeats:
            distinct = rng.randint(2, period)
            chosen = rng.sample(words(r), distinct)
            motif = chosen + [rng.choice(chosen) for _ in range(period - distinct)]
            rng.shuffle(motif)
        else:
            motif = rng.sample(words(r), period)
        if smallest_period(motif) == period:  # a motif like A B A B is the motif A B
            break
    length = draw(rng, r.cycles) * period + rng.randrange(period)
    sequence = [motif[i % period] for i in range(length)]
    prompt = Text()
    spans = prompt.extend(sequence)
    answer = Text(" ")
    at = answer.add(motif[length % period])
    shape = shape_of(motif)
    sources = [spans[i] for i in range(length % period, length, period)]
    cycle = min(tuple(motif[i:] + motif[:i]) for i in range(period))
    return Item(prompt.text, answer.text, f"repeat {shape}", [target(f"repeat {shape}", at, sources)],
                "repeat " + " ".join(cycle))


def smallest_period(sequence: list[str]) -> int:
    """The smallest p with sequence[i] == sequence[i - p] for every i >= p, among p dividing the length."""
    n = len(sequence)
    return next(p for p in range(1, n + 1) if n % p == 0 and sequence == sequence[p:] + sequence[:p])


def shape_of(motif: list[str]) -> str:
    """A motif's shape: its words as letters in order of first use (`vaj cag vaj` -> `ABA`)."""
    letters: dict[str, str] = {}
    return "".join(letters.setdefault(w, "ABCDEFGHIJ"[len(letters)]) for w in motif)


def brackets(rng: random.Random, r: Recipe) -> Item:
    """Brackets with some left open: `( [ ] {` -> ` } )`; each closer's source is its opening bracket."""
    kinds = list(BRACKETS)[: r.bracket_types]
    left, closed = draw(rng, r.open_left), draw(rng, r.pairs_closed)
    steps, stack, sequence = 2 * closed + left, [], []
    for remaining in range(steps, 0, -1):  # a random walk that ends with `left` brackets open
        can_open = len(stack) + 1 - left <= remaining - 1
        can_close = stack and left - (len(stack) - 1) <= remaining - 1
        if can_open and (not can_close or rng.random() < 0.5):
            stack.append(len(sequence))
            sequence.append(rng.choice(kinds))
        else:
            opener = sequence[stack.pop()]
            sequence.append(BRACKETS[opener])
    prompt, spans = Text(), []
    for bracket in sequence:
        if r.fillers and rng.random() < 0.5:
            prompt.add(rng.choice(words(r)))
        spans.append(prompt.add(bracket))
    answer, targets = Text(" "), []
    for position in reversed(stack):
        closer = BRACKETS[sequence[position]]
        targets.append(target(f"close {sequence[position]}", answer.add(closer), [spans[position]]))
    return Item(prompt.text, answer.text, f"close {left}", targets, "brackets " + "".join(sequence))


def copy(rng: random.Random, r: Recipe) -> Item:
    """`a b c ->` -> ` a b c`, or `a b c <-` -> ` c b a`; each answer word's source is the word it copies."""
    sequence = rng.sample(words(r), draw(rng, r.copy))
    backwards = r.reverse and rng.random() < 0.5
    prompt = Text()
    spans = prompt.extend(sequence)
    prompt.add("<-" if backwards else "->")
    order = list(reversed(range(len(sequence)))) if backwards else list(range(len(sequence)))
    answer, targets = Text(" "), []
    for j, i in enumerate(order):
        targets.append(target(f"word {j}", answer.add(sequence[i]), [spans[i]]))
    rule = "reverse" if backwards else "copy"
    return Item(prompt.text, answer.text, rule, targets, f"copy {' '.join(sorted(sequence))}")


def induction(rng: random.Random, r: Recipe) -> Item:
    """`... X Y ... X` -> ` Y`: X occurs once before the end; sources: that X and the Y after it."""
    n = draw(rng, r.length)
    x, y = rng.sample(words(r), 2)
    rest = [w for w in words(r) if w != x]
    if r.distractors:
        fill = [rng.choice(rest) for _ in range(n - 2)]
    else:
        fill = rng.sample([w for w in rest if w != y], n - 2)
    at = rng.randrange(n - 1)  # X Y goes before fill[at:], so at least ... X Y X
    sequence = fill[:at] + [x, y] + fill[at:]
    prompt = Text()
    spans = prompt.extend(sequence)
    prompt.add(x)
    answer = Text(" ")
    where = answer.add(y)
    return Item(prompt.text, answer.text, "induction", [target("induction", where, [spans[at], spans[at + 1]])],
                f"induction {x} {y}")


MAKERS = {"kv": kv, "repeat": repeat, "brackets": brackets, "copy": copy, "induction": induction}
