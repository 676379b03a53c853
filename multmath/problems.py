"""One multiplication problem a × b and every way of writing it: the public API of multmath.

`problem(a, b)` returns a `Problem` holding the operands, the product, the partial products
a·b_k·10^k, their cumulative sums, the answer digits c_k and the running sums ĉ_k
(ĉ_k = s_k + ⌊ĉ_{k-1}/10⌋ with s_k = Σ_{i+j=k} a_i·b_j, c_k = ĉ_k mod 10). It renders the problem
in the two formats:

- `icot`: the implicit-CoT data-file line, digits space-separated and least-significant first,
  `A * B||COT #### C`; the CoT is the partial products (k leading zeros, width len(a)+1+k) joined
  by ` + `, each but the first and the last followed by the cumulative sum in `( ... )`; the answer
  has len(a)+len(b) digits. Without CoT the line is `A * B||#### C`.
- `plain`: human order, `3719 * 3349 = 12454931`; with CoT
  `3719 * 3349 = 33471 + 148760 (182231) + 1115700 (1297931) + 11157000 = 12454931`.

Other generators (multiple-choice, SQL-style reuse) call `problem(a, b)` and pick what they need.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

FORMATS = ("icot", "plain")
COT_MODES = ("explicit", "none")


def problem(a: int, b: int) -> "Problem":
    """The problem a × b, for positive integers a and b (a's digits are the ones written first)."""
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int) or not isinstance(b, int):
        raise TypeError("problem(a, b) takes two integers")
    if a < 1 or b < 1:
        raise ValueError(f"problem(a, b) takes positive integers, got {a} and {b}")
    a_digits, b_digits = _digits(a), _digits(b)
    product = a * b
    partial_products, shifted = [], a
    for digit in b_digits:
        partial_products.append(shifted * digit)
        shifted *= 10
    return Problem(
        a=a,
        b=b,
        product=product,
        a_digits=a_digits,
        b_digits=b_digits,
        answer_digits=_digits(product, len(a_digits) + len(b_digits)),
        partial_products=tuple(partial_products),
        partial_sums=tuple(itertools.accumulate(partial_products)),
        running_sums=_running_sums(a_digits, b_digits),
    )


@dataclass(frozen=True)
class Problem:
    """a × b with its derived quantities; digit tuples are least-significant first.

    `answer_digits` are c_k for k = 0 .. len(a)+len(b)-1 (the product zero-padded to that width),
    `partial_products` are a·b_k·10^k for each digit b_k of b, `partial_sums` their cumulative sums
    (the last is the product), `running_sums` are ĉ_k, one per answer digit.
    """

    a: int
    b: int
    product: int
    a_digits: tuple[int, ...]
    b_digits: tuple[int, ...]
    answer_digits: tuple[int, ...]
    partial_products: tuple[int, ...]
    partial_sums: tuple[int, ...]
    running_sums: tuple[int, ...]

    @property
    def digits_a(self) -> int:
        return len(self.a_digits)

    @property
    def digits_b(self) -> int:
        return len(self.b_digits)

    def parts(self, format: str = "icot", cot: str = "explicit") -> tuple[str, str, str]:
        """(prompt, cot, answer) of the line in `format`; cot is "" when `cot` is "none"."""
        if format not in FORMATS or cot not in COT_MODES:
            raise ValueError(f"format must be one of {FORMATS} and cot one of {COT_MODES}")
        if format == "icot":
            prompt = f"{_reversed(self.a, self.digits_a)} * {_reversed(self.b, self.digits_b)}"
            answer = _reversed(self.product, self.digits_a + self.digits_b)
            chain = self._icot_cot() if cot == "explicit" else ""
        else:
            prompt, answer = f"{self.a} * {self.b}", str(self.product)
            chain = self._plain_cot() if cot == "explicit" else ""
        return prompt, chain, answer

    def line(self, format: str = "icot", cot: str = "explicit") -> str:
        """The full line (no newline) in `format`, with or without the chain of thought."""
        prompt, chain, answer = self.parts(format, cot)
        return join_line(format, prompt, chain, answer)

    def icot_line(self, cot: bool = True) -> str:
        """The ICoT data-file line, with the chain of thought unless cot=False."""
        return self.line("icot", "explicit" if cot else "none")

    def plain_line(self, cot: bool = False) -> str:
        """The human-order line `a * b = product` (with the chain of thought if cot=True)."""
        return self.line("plain", "explicit" if cot else "none")

    def _icot_cot(self) -> str:
        width, last = len(self.a_digits) + 1, len(self.b_digits) - 1
        terms = [_reversed(value, width + k) for k, value in enumerate(self.partial_products)]
        for k in range(1, last):
            terms[k] += f" ( {_reversed(self.partial_sums[k], width + k)} )"
        return " + ".join(terms)

    def _plain_cot(self) -> str:
        last = self.digits_b - 1
        terms = []
        for k, (value, total) in enumerate(zip(self.partial_products, self.partial_sums)):
            terms.append(f"{value} ({total})" if 0 < k < last else str(value))
        return " + ".join(terms)


def join_line(format: str, prompt: str, cot: str, answer: str) -> str:
    """Assemble a line from its parts (the inverse of `Problem.parts`)."""
    if format == "icot":
        return f"{prompt}||{cot} #### {answer}" if cot else f"{prompt}||#### {answer}"
    return f"{prompt} = {cot} = {answer}" if cot else f"{prompt} = {answer}"


_DIGIT_VALUES = bytes.maketrans(b"0123456789", bytes(range(10)))


def _digits(value: int, width: int = 0) -> tuple[int, ...]:
    """The digits of `value` zero-padded to `width`, least-significant first (via bytes: fast)."""
    return tuple(str(value).zfill(width).encode().translate(_DIGIT_VALUES)[::-1])


def _running_sums(a_digits: tuple[int, ...], b_digits: tuple[int, ...]) -> tuple[int, ...]:
    """ĉ_k: the column sums s_k = Σ_{i+j=k} a_i·b_j, each plus the carry ⌊ĉ_{k-1}/10⌋."""
    column = [0] * (len(a_digits) + len(b_digits))
    for j, y in enumerate(b_digits):
        if y:
            for i, x in enumerate(a_digits, j):
                column[i] += x * y
    sums, carry = [], 0
    for s in column:
        carry = s + carry // 10
        sums.append(carry)
    return tuple(sums)


def _reversed(value: int, width: int) -> str:
    """`value` zero-padded to `width` digits, written least-significant first, space-separated."""
    return " ".join(str(value).zfill(width)[::-1])
