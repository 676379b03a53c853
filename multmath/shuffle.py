"""A keyed pseudo-random permutation of 0 .. left·right - 1, evaluated one index at a time.

multmath draws problem number `permutation(index)` for item `index`, so the items of a
configuration are distinct by construction (a sample without replacement of all n×m-digit
problems): no duplicate is ever drawn, and asking for every problem of a small size finishes
instead of collecting coupons. The permutation is a 4-round Feistel network on the mixed-radix
pair (x // right, x % right), adding round values modulo `left` and `right` in turn, with BLAKE2b
keyed by (key..., round) as round function. Keep `left` and `right` within a small factor of each
other so every round mixes well.
"""

from __future__ import annotations

import hashlib

from cards.corpus import stable_hash

ROUNDS = 4


class Permutation:
    """`Permutation(left, right, *key)(i)` for i in range(left * right) visits each number once."""

    def __init__(self, left: int, right: int, *key: object):
        if left < 1 or right < 1:
            raise ValueError("a permutation needs left >= 1 and right >= 1")
        self.left, self.right, self.key = left, right, key
        self.size = left * right
        self.in_bytes = (max(left, right).bit_length() + 7) // 8
        digest = min(64, self.in_bytes + 8)  # 64 more bits than the modulus: negligible bias
        self.hashers = [
            hashlib.blake2b(stable_hash(*key, r).to_bytes(8, "big"), digest_size=digest) for r in range(ROUNDS)
        ]

    def __reduce__(self):
        return (Permutation, (self.left, self.right, *self.key))  # hashlib objects don't pickle

    def __call__(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} outside 0..{self.size - 1}")
        high, low = divmod(index, self.right)
        for r, hasher in enumerate(self.hashers):
            if r % 2 == 0:
                high = (high + self._round(hasher, low)) % self.left
            else:
                low = (low + self._round(hasher, high)) % self.right
        return high * self.right + low

    def _round(self, hasher, half: int) -> int:
        h = hasher.copy()
        h.update(half.to_bytes(self.in_bytes, "little"))
        return int.from_bytes(h.digest(), "little")
