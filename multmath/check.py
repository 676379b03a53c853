"""The label checker: parses a rendered record back and recomputes everything with Python integers.

Written independently of `multmath.problems` (it imports nothing from it). An `icot` line has a
fixed layout for a given n×m size (every number has a known width), so the checker builds that
layout from the format's definition (digits written `d`) and the line, with its digits replaced by
`d`, must equal it exactly; the numbers are then read back from their places. A `plain` line is
split at its separators. Then each partial product is recomputed as a·(k-th digit of b)·10^k, each
running sum of the chain of thought as a × (the low k+1 digits of b), the answer as a·b, and the
running-sum targets as ĉ_k = ⌊P_k / 10^k⌋ with P_k = Σ_{i+j≤k} a_i·b_j·10^(i+j), the column sums
s_t = Σ_{i+j=t} a_i·b_j being read off one big-integer product (equal to the recursive definition
ĉ_k = s_k + ⌊ĉ_{k-1}/10⌋, computed another way). `check_record` returns None for a good record, or
a short reason (the label used in the dataset card's rejection table); `described` says in words
what it checks, for the card.
"""

from __future__ import annotations

import functools

_PLAIN_DIGITS = frozenset("0123456789")
_AS_D = bytes.maketrans(b"0123456789d", b"dddddddddd?")  # digits become d; a literal d must not pass


def described(format: str, cot: str) -> list[str]:
    """What `check_record` verifies for records in `format` with `cot`, in words (the dataset card's list)."""
    icot, explicit = format == "icot", cot == "explicit"
    return [
        "the line was parsed back from the text (strict format: single digits separated by single spaces, "
        "the exact separators) by a checker that shares no code with the generator",
        "both operands have exactly the configuration's number of digits and a non-zero leading digit",
        "the answer equals a × b computed with Python integers"
        + (" and has exactly len(a)+len(b) digits" if icot else ""),
        *([
            "there is one partial product per digit b_k of b, equal to a·b_k·10^k"
            + (" and written with width len(a)+1+k" if icot else ""),
            "every partial product but the first and the last is followed by the running sum, equal to "
            "a × (the low k+1 digits of b)",
        ] if explicit else []),
        "the columns `a`, `b`, `product`, `digits_a`, `digits_b` agree with the parsed text",
        "`answer_digits` are the digits of a × b; `running_sums` were recomputed as ĉ_k = ⌊P_k/10^k⌋ with "
        "P_k = Σ_(i+j≤k) a_i·b_j·10^(i+j), an equivalent closed form of the recursive definition",
        "`prompt`, `cot` and `answer` reassemble exactly into `text`",
    ]


class Wrong(Exception):
    """A record that fails the check; the message is the rejection reason."""


def check_record(record: dict, format: str, cot: str, digits_a: int, digits_b: int) -> str | None:
    """None if the record is right for an n×m problem in `format`/`cot`, else the reason."""
    try:
        _check(record, format, cot == "explicit", digits_a, digits_b)
    except Wrong as wrong:
        return str(wrong)
    return None


def _check(record: dict, format: str, with_cot: bool, n: int, m: int) -> None:
    text = record["text"]
    parse = _parse_icot if format == "icot" else _parse_plain
    a, b, terms, answer = parse(text, with_cot, n, m)
    if with_cot:
        _check_terms(terms, a, b, m)
    if answer != a * b:
        raise Wrong("wrong answer")
    _check_columns(record, format, with_cot, a, b, n, m)


@functools.lru_cache(maxsize=None)
def icot_layout(n: int, m: int, with_cot: bool) -> tuple[bytes, list[slice]]:
    """The n×m ICoT line with every digit written `d`, and where each number sits in it.

    Numbers, in order: a (n digits), b (m), then with CoT for k = 0..m-1 the partial product and,
    for 0 < k < m-1, the running sum (both n+1+k digits), then the answer (n+m digits). Each place
    is a slice that reads the number's digits most-significant first.
    """
    shape, places = [], []
    at = 0

    def put(text: str) -> None:
        nonlocal at
        shape.append(text)
        at += len(text)

    def number(width: int) -> None:
        places.append(slice(at + 2 * width - 2, at - 1 if at else None, -2))
        put(" ".join("d" * width))

    number(n), put(" * "), number(m), put("||")
    if with_cot:
        for k in range(m):
            if k:
                put(" + ")
            number(n + 1 + k)
            if 0 < k < m - 1:
                put(" ( "), number(n + 1 + k), put(" )")
        put(" ")
    put("#### ")
    number(n + m)
    return "".join(shape).encode(), places


def _parse_icot(text: str, with_cot: bool, n: int, m: int):
    shape, places = icot_layout(n, m, with_cot)
    if text.encode().translate(_AS_D) != shape:
        raise Wrong("malformed line")
    digits = [text[place] for place in places]
    if digits[0][0] == "0" or digits[1][0] == "0":
        raise Wrong("operand with a leading zero")
    values = [int(number) for number in digits]
    terms, chain = [], iter(values[2:-1])
    for k in range(m if with_cot else 0):
        terms.append((next(chain), next(chain) if 0 < k < m - 1 else None))
    return values[0], values[1], terms, values[-1]


def _parse_plain(text: str, with_cot: bool, n: int, m: int):
    pieces = text.split(" = ")
    if len(pieces) != (3 if with_cot else 2):
        raise Wrong("malformed line")
    operands = pieces[0].split(" * ")
    if len(operands) != 2:
        raise Wrong("malformed line")
    a, b = _plain_number(operands[0]), _plain_number(operands[1])
    if (len(operands[0]), len(operands[1])) != (n, m):
        raise Wrong("wrong operand width")
    if a == 0 or b == 0:
        raise Wrong("operand with a leading zero")
    terms = [_plain_term(term) for term in pieces[1].split(" + ")] if with_cot else []
    return a, b, terms, _plain_number(pieces[-1])


def _plain_term(term: str) -> tuple[int, int | None]:
    value, opening, total = term.partition(" (")
    if not opening:
        return _plain_number(value), None
    if not total.endswith(")"):
        raise Wrong("malformed line")
    return _plain_number(value), _plain_number(total[:-1])


def _plain_number(text: str) -> int:
    if not text or not set(text) <= _PLAIN_DIGITS or (text[0] == "0" and text != "0"):
        raise Wrong("malformed line")
    return int(text)


def _check_terms(terms: list, a: int, b: int, m: int) -> None:
    """One term per digit of b: the partial product, and the running sum after all but the first/last."""
    if len(terms) != m:
        raise Wrong("wrong number of partial products")
    power = 1
    for k, (value, total) in enumerate(terms):
        if value != a * (b // power % 10) * power:
            raise Wrong("wrong partial product")
        power *= 10
        if (total is not None) != (0 < k < m - 1):
            raise Wrong("misplaced partial sum")
        if total is not None and total != a * (b % power):
            raise Wrong("wrong partial sum")


def _check_columns(record: dict, format: str, with_cot: bool, a: int, b: int, n: int, m: int) -> None:
    """The structured columns agree with the text and with the integers read back from it."""
    product = a * b
    if (record["a"], record["b"], record["product"]) != (str(a), str(b), str(product)):
        raise Wrong("operand or product column disagrees")
    if (record["digits_a"], record["digits_b"]) != (n, m):
        raise Wrong("digit-count column disagrees")
    if "".join(map(str, record["answer_digits"])) != str(product).zfill(n + m)[::-1]:
        raise Wrong("wrong answer digits")
    if list(record["running_sums"]) != _running_sums(a, b, n, m):
        raise Wrong("wrong running sums")
    if _join(format, record["prompt"], record["cot"], record["answer"]) != record["text"]:
        raise Wrong("parts disagree with text")
    if bool(record["cot"]) != with_cot:
        raise Wrong("parts disagree with text")


def _running_sums(a: int, b: int, n: int, m: int) -> list[int]:
    """ĉ_k = ⌊P_k / 10^k⌋ with P_k = Σ_{t≤k} s_t·10^t, the column sums s_t read off one big product.

    Spacing the digits of a and b `room` decimal places apart (a_i·X^i with X = 10^room, wide enough
    for any column sum) makes a single integer product hold every s_t = Σ_{i+j=t} a_i·b_j, uncarried,
    in its own block of `room` digits.
    """
    room, gap, cuts = _spacing(n, m)
    blocks = str(int(gap.join(str(a))) * int(gap.join(str(b)))).zfill(room * (n + m - 1))
    sums, low, power = [], 0, 1
    for cut in cuts:
        low += int(blocks[cut]) * power
        sums.append(low // power)
        power *= 10
    sums.append(low // power)  # the last column has no products: s = 0, ĉ is the carry alone
    return sums


@functools.lru_cache(maxsize=None)
def _spacing(n: int, m: int) -> tuple[int, str, list[slice]]:
    """Block width, the zeros put between digits, and the slice of each block, lowest first."""
    room = len(str(81 * min(n, m)))
    end = room * (n + m - 1)
    cuts = [slice(start - room, start) for start in range(end, 0, -room)]
    return room, "0" * (room - 1), cuts


def _join(format: str, prompt: str, cot: str, answer: str) -> str:
    if format == "icot":
        return f"{prompt}||{cot} #### {answer}" if cot else f"{prompt}||#### {answer}"
    return f"{prompt} = {cot} = {answer}" if cot else f"{prompt} = {answer}"
