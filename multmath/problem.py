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

from dataclasses import dataclass
from functools import cached_property

FORMATS = ("icot", "plain")
COT_MODES = ("explicit", "none")


def problem(a: int, b: int) -> "Problem":
    """The problem a × b, for positive integers a and b (a's digits are the ones written first)."""
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int) or not isinstance(b, int):
        raise TypeError("problem(a, b) takes two integers")
    if a < 1 or b < 1:
        raise ValueError(f"problem(a, b) takes positive integers, got {a} and {b}")
    return Problem(a, b)


@dataclass(frozen=True)
class Problem:
    """a × b with its derived quantities; digit tuples are least-significant first."""

    a: int
    b: int

    @property
    def product(self) -> int:
        return self.a * self.b

    @property
    def digits_a(self) -> int:
        return len(str(self.a))

    @property
    def digits_b(self) -> int:
        return len(str(self.b))

    @cached_property
    def a_digits(self) -> tuple[int, ...]:
        return _digits(self.a, self.digits_a)

    @cached_property
    def b_digits(self) -> tuple[int, ...]:
        return _digits(self.b, self.digits_b)

    @cached_property
    def answer_digits(self) -> tuple[int, ...]:
        """c_k for k = 0 .. len(a)+len(b)-1 (the product zero-padded to that width)."""
        return _digits(self.product, self.digits_a + self.digits_b)

    @cached_property
    def partial_products(self) -> tuple[int, ...]:
        """a·b_k·10^k for each digit b_k of b."""
        return tuple(self.a * digit * 10**k for k, digit in enumerate(self.b_digits))

    @cached_property
    def partial_sums(self) -> tuple[int, ...]:
        """The cumulative sums of the partial products (the last one is the product)."""
        sums, total = [], 0
        for value in self.partial_products:
            total += value
            sums.append(total)
        return tuple(sums)

    @cached_property
    def running_sums(self) -> tuple[int, ...]:
        """ĉ_k for k = 0 .. len(a)+len(b)-1: the digit-column sum plus the carry coming in."""
        a_digits, b_digits = self.a_digits, self.b_digits
        column = [0] * (len(a_digits) + len(b_digits))
        for i, x in enumerate(a_digits):
            for j, y in enumerate(b_digits):
                column[i + j] += x * y
        sums, carry = [], 0
        for s in column:
            carry = s + carry // 10
            sums.append(carry)
        return tuple(sums)

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
        width = self.digits_a + 1
        last = self.digits_b - 1
        terms = []
        for k, (value, total) in enumerate(zip(self.partial_products, self.partial_sums)):
            term = _reversed(value, width + k)
            if 0 < k < last:
                term += f" ( {_reversed(total, width + k)} )"
            terms.append(term)
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


def _digits(value: int, width: int) -> tuple[int, ...]:
    return tuple(int(ch) for ch in reversed(str(value).zfill(width)))


def _reversed(value: int, width: int) -> str:
    """`value` zero-padded to `width` digits, written least-significant first, space-separated."""
    return " ".join(str(value).zfill(width)[::-1])
