"""The label checker: parses a rendered record back and recomputes everything with Python integers.

Written independently of `multmath.problem` (it imports nothing from it): the operands are read
back from the text, each partial product is recomputed as a·(b's k-th digit)·10^k, each running
sum of the chain of thought as the product of a with the low k+1 digits of b, the answer as a·b,
and the running-sum targets as ĉ_k = ⌊P_k / 10^k⌋ where P_k = Σ_{i+j≤k} a_i·b_j·10^(i+j) (equal to
the recursive definition ĉ_k = s_k + ⌊ĉ_{k-1}/10⌋, computed another way). `check_record` returns
None for a good record, or a short reason (the label used in the dataset card's rejection table).
"""

from __future__ import annotations

_DIGITS = frozenset("0123456789")


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
        _check_terms(terms, a, b, n, m, padded=format == "icot")
    if answer != a * b:
        raise Wrong("wrong answer")
    _check_columns(record, format, with_cot, a, b, n, m)


def _parse_icot(text: str, with_cot: bool, n: int, m: int):
    prompt, bar, rest = text.partition("||")
    operands = prompt.split(" * ")
    if not bar or len(operands) != 2:
        raise Wrong("unparseable line")
    a, b = _lsf_number(operands[0], n, "a"), _lsf_number(operands[1], m, "b")
    if with_cot:
        chain, hashes, answer = rest.partition(" #### ")
        if not hashes or not chain:
            raise Wrong("unparseable line")
        terms = [_icot_term(term) for term in chain.split(" + ")]
    else:
        if not rest.startswith("#### "):
            raise Wrong("unparseable line")
        answer, terms = rest[5:], []
    return a, b, terms, _lsf_value(answer, n + m, "answer")


def _icot_term(term: str) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """'d d d' or 'd d d ( d d d )' -> ((value, width), (value, width) or None)."""
    if term.endswith(" )"):
        value, opening, total = term[:-2].partition(" ( ")
        if not opening:
            raise Wrong("unparseable line")
        return _lsf_any(value), _lsf_any(total)
    return _lsf_any(term), None


def _lsf_any(text: str) -> tuple[int, int]:
    tokens = text.split(" ")
    if not all(len(t) == 1 and t in _DIGITS for t in tokens):
        raise Wrong("unparseable line")
    return int("".join(reversed(tokens))), len(tokens)


def _lsf_value(text: str, width: int, what: str) -> int:
    value, found = _lsf_any(text)
    if found != width:
        raise Wrong(f"wrong {what} width")
    return value


def _lsf_number(text: str, width: int, what: str) -> int:
    if text.endswith("0"):
        raise Wrong(f"operand {what} has a leading zero")
    return _lsf_value(text, width, f"operand {what}")


def _parse_plain(text: str, with_cot: bool, n: int, m: int):
    pieces = text.split(" = ")
    if len(pieces) != (3 if with_cot else 2):
        raise Wrong("unparseable line")
    operands = pieces[0].split(" * ")
    if len(operands) != 2:
        raise Wrong("unparseable line")
    a, b = _plain_number(operands[0], n, "operand a"), _plain_number(operands[1], m, "operand b")
    terms = [_plain_term(term) for term in pieces[1].split(" + ")] if with_cot else []
    return a, b, terms, _plain_number(pieces[-1], None, "answer")


def _plain_term(term: str) -> tuple[tuple[int, None], tuple[int, None] | None]:
    value, opening, total = term.partition(" (")
    if opening:
        if not total.endswith(")"):
            raise Wrong("unparseable line")
        return (_plain_number(value, None, "term"), None), (_plain_number(total[:-1], None, "term"), None)
    return (_plain_number(value, None, "term"), None), None


def _plain_number(text: str, width: int | None, what: str) -> int:
    if not text or not set(text) <= _DIGITS or (text[0] == "0" and text != "0"):
        raise Wrong("unparseable line")
    if width is not None and len(text) != width:
        raise Wrong(f"wrong {what} width")
    return int(text)


def _check_terms(terms: list, a: int, b: int, n: int, m: int, padded: bool) -> None:
    """One term per digit of b: the partial product, and the running sum after all but the first/last."""
    if len(terms) != m:
        raise Wrong("wrong number of partial products")
    for k, ((value, width), total) in enumerate(terms):
        if value != a * (b // 10**k % 10) * 10**k or (padded and width != n + 1 + k):
            raise Wrong("wrong partial product")
        if (total is not None) != (0 < k < m - 1):
            raise Wrong("misplaced partial sum")
        if total is not None and (total[0] != a * (b % 10 ** (k + 1)) or (padded and total[1] != n + 1 + k)):
            raise Wrong("wrong partial sum")


def _check_columns(record: dict, format: str, with_cot: bool, a: int, b: int, n: int, m: int) -> None:
    """The structured columns agree with the text and with the integers read back from it."""
    product = a * b
    if (record["a"], record["b"], record["product"]) != (str(a), str(b), str(product)):
        raise Wrong("operand or product column disagrees")
    if (record["digits_a"], record["digits_b"]) != (n, m):
        raise Wrong("digit-count column disagrees")
    answer_digits = [product // 10**k % 10 for k in range(n + m)]
    if list(record["answer_digits"]) != answer_digits:
        raise Wrong("wrong answer digits")
    if list(record["running_sums"]) != _running_sums(a, b, n + m):
        raise Wrong("wrong running sums")
    if _join(format, record["prompt"], record["cot"], record["answer"]) != record["text"]:
        raise Wrong("parts disagree with text")
    if bool(record["cot"]) != with_cot:
        raise Wrong("parts disagree with text")


def _running_sums(a: int, b: int, width: int) -> list[int]:
    """ĉ_k = ⌊P_k / 10^k⌋ with P_k = Σ_{i+j≤k} a_i b_j 10^(i+j) = Σ_i a_i 10^i · (b mod 10^(k-i+1))."""
    a_terms = [a // 10**i % 10 * 10**i for i in range(len(str(a)))]
    sums = []
    for k in range(width):
        low = sum(term * (b % 10 ** (k - i + 1)) for i, term in enumerate(a_terms[: k + 1]))
        sums.append(low // 10**k)
    return sums


def _join(format: str, prompt: str, cot: str, answer: str) -> str:
    if format == "icot":
        return f"{prompt}||{cot} #### {answer}" if cot else f"{prompt}||#### {answer}"
    return f"{prompt} = {cot} = {answer}" if cot else f"{prompt} = {answer}"
