"""A keyed pseudo-random permutation of 0 .. size-1, evaluated one index at a time.

multmath draws problem number `permutation(index)` for item `index`, so the items of a
configuration are distinct by construction (a sample without replacement of all n×m-digit
problems): no duplicate is ever drawn, and asking for every problem of a small size finishes
instead of collecting coupons. The permutation is a 4-round Feistel network on bit strings just
wider than `size`, with BLAKE2b keyed by (seed, generator, config, round) as round function, and
cycle-walking to stay inside 0 .. size-1.
"""

from __future__ import annotations

import hashlib

from cards.corpus import stable_hash

ROUNDS = 4


class Permutation:
    """`Permutation(size, *key)(i)` for i in range(size) visits every number below `size` once."""

    def __init__(self, size: int, *key: object):
        if size < 1:
            raise ValueError("a permutation needs size >= 1")
        self.size, self.key = size, key
        bits = max(2, (size - 1).bit_length())
        self.low_bits = bits // 2
        self.high_bits = bits - self.low_bits
        self.in_bytes = (self.high_bits + 8) // 8 + 1
        digest = max(8, (self.high_bits + 7) // 8)
        self.hashers = [
            hashlib.blake2b(stable_hash(*key, r).to_bytes(8, "big"), digest_size=digest) for r in range(ROUNDS)
        ]

    def __reduce__(self):
        return (Permutation, (self.size, *self.key))  # hashlib objects don't pickle; rebuild them

    def __call__(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} outside 0..{self.size - 1}")
        value = self._encrypt(index)
        while value >= self.size:  # cycle-walking: the result stays below size, and stays a bijection
            value = self._encrypt(value)
        return value

    def _encrypt(self, value: int) -> int:
        low_mask = (1 << self.low_bits) - 1
        high_mask = (1 << self.high_bits) - 1
        high, low = value >> self.low_bits, value & low_mask
        for r, hasher in enumerate(self.hashers):
            if r % 2 == 0:
                high ^= self._round(hasher, low) & high_mask
            else:
                low ^= self._round(hasher, high) & low_mask
        return (high << self.low_bits) | low

    def _round(self, hasher, half: int) -> int:
        h = hasher.copy()
        h.update(half.to_bytes(self.in_bytes, "little"))
        return int.from_bytes(h.digest(), "little")
