"""The words assoc prompts are made of, and prompts built word by word with their character spans.

Keys and pattern words are invented consonant-vowel-consonant syllables (`vaj`, `vajkor`): no
pretrained meaning, one word each, so the corpus tokenizer (word-level, one token per digit) keeps
every key one token. A level draws from a fixed pool of them (`pool(size, syllables)`, the same for
every seed, so a model's vocabulary holds every key it is tested on). `Text` joins words with single
spaces and remembers where each one is, for the attribution spans.
"""

from __future__ import annotations

import functools
import itertools
import random

CONSONANTS = "bcdfghjklmnprstvz"
VOWELS = "aeiou"
POOL_SEED = "assoc-pool-v1"  # fixed: a pool is a property of the level, not of --seed


@functools.cache
def pool(size: int, syllables: int) -> tuple[str, ...]:
    """`size` distinct invented words of `syllables` CVC syllables each, in a fixed pseudo-random order."""
    syllable = ["".join(p) for p in itertools.product(CONSONANTS, VOWELS, CONSONANTS)]
    rng = random.Random(f"{POOL_SEED}-{syllables}")
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        word = "".join(rng.choice(syllable) for _ in range(syllables))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return tuple(words)


class Text:
    """Words joined by single spaces; `add` returns the word's (start, end) character span."""

    def __init__(self, lead: str = ""):
        self.text = lead  # an answer starts with a space: ' 92'

    def add(self, word: str) -> tuple[int, int]:
        if self.text and not self.text.endswith(" "):
            self.text += " "
        start = len(self.text)
        self.text += word
        return start, len(self.text)

    def extend(self, words) -> list[tuple[int, int]]:
        return [self.add(w) for w in words]
