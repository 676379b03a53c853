"""Analogies over the facts knowledge base: `X : a :: Y :` -> ` b`, where a is X's attribute under some
relation and b is Y's under the same one (`Tomvel : France :: Aneska :` -> ` Spain`).

The relation is not named in the prompt: it is the concept label. `make` draws two subjects of the same
kind and a relation from the level's list; `solve` parses the prompt and looks every relation up in the
knowledge base, so an item whose example pair fits two relations with different answers for Y is
rejected as ambiguous. Attribution sources: X, a and Y (the spans that name the relation and the subject).
"""

from __future__ import annotations

import random

from assoc.check import Unsolvable
from assoc.kinds import Item
from assoc.levels import Recipe
from assoc.words import Text
from cards.attribution import target

# the relations in the order levels take them (a level with `relations=n` uses the first n; 0: all)
# (the facts corpus's levels: 1 = the first three, 2 = the eight person relations, 3 = all)
ORDER = ("country", "language", "sport", "city", "occupation", "colour", "instrument", "food", "located",
         "residence")


def relations(recipe: Recipe) -> tuple[str, ...]:
    return ORDER[: recipe.relations] if recipe.relations else ORDER


def subjects(kb, relation: str) -> tuple[str, ...]:
    from facts.kb import RELATIONS

    return kb.cities if RELATIONS[relation].kind == "city" else kb.people


def make(rng: random.Random, r: Recipe, kb) -> Item:
    relation = rng.choice(relations(r))
    x, y = rng.sample(subjects(kb, relation), 2)
    prompt = Text()
    x_span, _, a_span, _, y_span, _ = prompt.extend([x, ":", kb.value(x, relation), "::", y, ":"])
    answer = Text(" ")
    at = answer.add(kb.value(y, relation))
    return Item(prompt.text, answer.text, relation, [target(relation, at, [x_span, a_span, y_span])],
                f"analogy {relation} {' '.join(sorted((x, y)))}")


def solve(prompt: str, kb) -> list[str]:
    """Y's attribute under every relation whose value for X is a; Unsolvable unless they all agree."""
    words = prompt.split(" ")
    if len(words) != 6 or words[1::2] != [":", "::", ":"]:
        raise Unsolvable("analogy: the prompt is not 'X : a :: Y :'")
    x, a, y = words[0], words[2], words[4]
    if kb is None or kb.kind(x) is None or kb.kind(x) != kb.kind(y) or x == y:
        raise Unsolvable("analogy: X and Y are not two entities of one kind in the knowledge base")
    answers = sorted({kb.value(y, r) for r in kb.relations(x) if kb.value(x, r) == a})
    if len(answers) != 1:
        raise Unsolvable("analogy: the example pair fits no relation, or relations with different answers")
    return answers
