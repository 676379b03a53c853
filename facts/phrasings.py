"""How a fact is worded: the phrasing styles, which ones each level uses and holds out, rendering and parsing.

A style is a frame around a subject `{s}` and a relation phrase `{p}`: the relation's verb phrase
(`Fact: {s} comes from the country of`) or its noun phrase (`Q: What is the home country of {s} ? A:`).
Every verb phrase has 5 words and every noun phrase 2 (`facts.kb.RELATIONS`) and every name is one
word, so two prompts of one style have the same number of words whatever their subject and relation:
counterfactual partners are equal in length under a word-level tokenizer. Words are separated by
spaces only (`? A:`, never `X?`), so a subject is always a word of its own.

A phrasing is a (style, relation) pair. At levels 1-2 each relation holds out some styles (`held_out`):
those phrasings appear only in validation and test, and are chosen so that every word of them occurs in
training phrasings of other relations or styles (a verb style and a noun style held out per relation, each
style held out by only some relations). `parse` reads a prompt back into (style, relation, subject) from
the text alone, for the label check.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from facts.kb import RELATIONS

STYLES = {  # name: (frame, the relation phrase it takes)
    "fact": ("Fact: {s} {p}", "verb"),
    "plain": ("{s} {p}", "verb"),
    "the": ("The {p} of {s} is", "noun"),
    "question": ("Q: What is the {p} of {s} ? A:", "noun"),
    "known": ("It is known that {s} {p}", "verb"),
    "aside": ("{s} , as everyone knows , {p}", "verb"),
    "tell": ("Q: Tell me the {p} of {s} . A:", "noun"),
    "remember": ("Remember : the {p} of {s} is", "noun"),
}
ONE_HOP = ("country", "city", "language", "sport", "occupation", "colour", "instrument", "food")


@dataclass(frozen=True)
class Level:
    """What a level renders: its relations and styles, how many styles each relation holds out (0, 1 or 2),
    and whether it is the two-hop level (test: `residence` of people whose two-hop fact is never trained)."""

    relations: tuple[str, ...]
    styles: tuple[str, ...]
    held: int
    two_hop: bool = False
    people: int = 2000  # the default size of the knowledge base


LEVELS = {
    1: Level(("country", "language", "sport"), ("fact", "plain", "the", "question"), held=1),
    2: Level(ONE_HOP, tuple(STYLES), held=2),
    3: Level(ONE_HOP + ("located", "residence"), tuple(STYLES), held=0, two_hop=True, people=1000),
}
LEVEL_NOTES = {
    1: "3 relations (country, language, sport) of invented people, 4 phrasings each; one phrasing per "
       "relation held out (validation and test only)",
    2: "8 relations (adds city, occupation, colour, instrument, food), 8 phrasings each incl. questions; two "
       "per relation held out",
    3: "two-hop: level 2's facts, the cities' countries (`located`) and `residence` (the country of a person's "
       "city) under every phrasing; validation and test ask `residence` of people whose two-hop fact is never "
       "trained (their city and its country are)",
}


def phrase(style: str, relation: str) -> str:
    """The relation phrase a style uses for a relation."""
    return getattr(RELATIONS[relation], STYLES[style][1])


def render(style: str, relation: str, subject: str) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """(prompt, subject span, relation-phrase span): spans are (start, end) character offsets."""
    parts = {"s": subject, "p": phrase(style, relation)}
    text, spans = "", {}
    for piece in re.split(r"(\{[sp]\})", STYLES[style][0]):
        if piece in ("{s}", "{p}"):
            spans[piece[1]] = (len(text), len(text) + len(parts[piece[1]]))
            text += parts[piece[1]]
        else:
            text += piece
    return text, spans["s"], spans["p"]


def held_out(level: int, relation: str) -> tuple[str, ...]:
    """The styles a relation holds out at a level: relation number i of the level holds out the verb style
    and noun style number i (mod their counts); with one held out, even relations a verb style, odd a noun."""
    spec = LEVELS[level]
    if spec.held == 0:
        return ()
    i = spec.relations.index(relation)
    verbs = [s for s in spec.styles if STYLES[s][1] == "verb"]
    nouns = [s for s in spec.styles if STYLES[s][1] == "noun"]
    if spec.held == 1:
        return (verbs[(i // 2) % len(verbs)],) if i % 2 == 0 else (nouns[(i // 2) % len(nouns)],)
    return verbs[i % len(verbs)], nouns[(i + 1) % len(nouns)]


def trained(level: int, relation: str) -> tuple[str, ...]:
    """The styles a relation is trained under at a level."""
    return tuple(s for s in LEVELS[level].styles if s not in held_out(level, relation))


@functools.lru_cache(maxsize=None)
def _patterns() -> tuple[tuple[str, str, re.Pattern], ...]:
    found = []
    for style, (frame, _) in STYLES.items():
        for relation in RELATIONS:
            pattern = "".join(r"(?P<s>[A-Z][a-z]+)" if piece == "{s}" else
                              re.escape(phrase(style, relation)) if piece == "{p}" else re.escape(piece)
                              for piece in re.split(r"(\{[sp]\})", frame))
            found.append((style, relation, re.compile(pattern)))
    return tuple(found)


def parse(prompt: str) -> tuple[str, str, str] | None:
    """(style, relation, subject) of a prompt, read from its text alone; None unless exactly one phrasing fits."""
    matches = [(style, relation, m["s"]) for style, relation, p in _patterns() if (m := p.fullmatch(prompt))]
    return matches[0] if len(matches) == 1 else None
