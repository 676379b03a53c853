"""The assoc level ladder, as data: what each kind of item draws from at each level.

A level sets, for every kind, the length of the prompt, its distractors and the depth of its pattern
(`Recipe`); `describe(level)` writes the ladder's text (for --help and the card) from the same data.
Ranges are inclusive (low, high) pairs drawn uniformly per item.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("kv", "repeat", "brackets", "copy", "induction", "analogy")
KIND_NOTES = {
    "kv": "key-value recall from context: `vaj = 92 , cag = 42 . vaj =` -> ` 92`",
    "repeat": "a repeating motif continued: `A B A B A` -> ` B`",
    "brackets": "the closing brackets of every bracket left open, innermost first: `( [ ] {` -> ` } )`",
    "copy": "copy the words before `->` (or, at levels with reversal, reverse the words before `<-`)",
    "induction": "`... X Y ... X` -> ` Y`: the word that followed the last word's one earlier occurrence",
    "analogy": "`X : a :: Y :` -> Y's attribute under the relation that links X to a (facts knowledge base)",
}
BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}


@dataclass(frozen=True)
class Recipe:
    """What one level draws from (every range is inclusive)."""

    pool: int  # invented words in the pool of keys and pattern words
    syllables: int  # syllables per invented word (1: 'vaj', 2: 'vajkor')
    pairs: tuple[int, int]  # kv: key-value pairs in the context
    digits: tuple[int, int]  # kv: digits per value
    near: bool  # kv: the other keys share the queried key's first letter where the pool allows
    period: tuple[int, int]  # repeat: motif length
    motif_repeats: bool  # repeat: a motif may use a word twice (A A B), so the last word alone is ambiguous
    cycles: tuple[int, int]  # repeat: full motifs shown before the cut
    bracket_types: int  # brackets: how many of ( [ { < are used
    pairs_closed: tuple[int, int]  # brackets: bracket pairs opened and closed inside the prompt
    open_left: tuple[int, int]  # brackets: brackets left open at the end (= closers in the answer)
    fillers: bool  # brackets: invented words between the brackets
    copy: tuple[int, int]  # copy: words to copy
    reverse: bool  # copy: half the items reverse instead
    length: tuple[int, int]  # induction: words before the final query word
    distractors: bool  # induction: other words repeat too (other bigrams recur), not only the query word
    relations: int  # analogy: how many of the knowledge base's relations are used (0: all)


LEVELS = {
    1: Recipe(pool=64, syllables=1, pairs=(2, 3), digits=(2, 2), near=False, period=(2, 2), motif_repeats=False,
              cycles=(2, 3), bracket_types=3, pairs_closed=(1, 3), open_left=(1, 1), fillers=True, copy=(2, 3),
              reverse=False, length=(4, 6), distractors=False, relations=3),
    2: Recipe(pool=200, syllables=1, pairs=(3, 6), digits=(2, 2), near=False, period=(2, 3), motif_repeats=False,
              cycles=(2, 3), bracket_types=4, pairs_closed=(1, 4), open_left=(1, 2), fillers=True, copy=(3, 5),
              reverse=False, length=(6, 10), distractors=False, relations=8),
    3: Recipe(pool=400, syllables=2, pairs=(4, 8), digits=(2, 3), near=True, period=(2, 4), motif_repeats=True,
              cycles=(2, 3), bracket_types=4, pairs_closed=(2, 5), open_left=(1, 3), fillers=True, copy=(4, 7),
              reverse=True, length=(10, 16), distractors=True, relations=0),
    4: Recipe(pool=800, syllables=2, pairs=(8, 16), digits=(2, 4), near=True, period=(3, 6), motif_repeats=True,
              cycles=(2, 2), bracket_types=4, pairs_closed=(4, 8), open_left=(2, 4), fillers=True, copy=(6, 10),
              reverse=True, length=(16, 32), distractors=True, relations=0),
}


def span_text(r: tuple[int, int]) -> str:
    return str(r[0]) if r[0] == r[1] else f"{r[0]}-{r[1]}"


def describe(level: int) -> str:
    """One line of the ladder: the level's settings in words."""
    r = LEVELS[level]
    return "; ".join([
        f"{r.pool} invented {r.syllables}-syllable words",
        f"kv {span_text(r.pairs)} pairs, {span_text(r.digits)}-digit values" + (", near-miss keys" if r.near else ""),
        f"repeat motifs of {span_text(r.period)}" + (" (may repeat a word)" if r.motif_repeats else ""),
        f"brackets: {r.bracket_types} types, {span_text(r.pairs_closed)} closed pairs, {span_text(r.open_left)} to "
        "close" + (", words between" if r.fillers else ""),
        f"copy {span_text(r.copy)} words" + (" or reverse them" if r.reverse else ""),
        f"induction over {span_text(r.length)} words" + (" with other repeats" if r.distractors else ""),
        f"analogies over {'all' if not r.relations else r.relations} relations",
    ])
