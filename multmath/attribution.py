"""multmath's ground-truth attribution spans (`cards.attribution`): answer digit c_k depends on a_i, b_j, i + j <= k.

c_k = (Σ_(i+j≤k) a_i·b_j·10^(i+j) // 10^k) mod 10, so its sources are exactly the digits a_i with i ≤ k
and b_j with j ≤ k (one span per digit; a_0 and b_0 are the least-significant digits). One target per
answer digit written in the answer (`--format plain` does not write the leading zero of a product one digit
shorter than len(a)+len(b)). Digits sit at fixed places for a size, so the layout is worked out once per
(format, size, lengths of the pieces) and checked with `cards.attribution.check` on the first record that
has it; every record then has its digits read back through the spans (they must spell a, b and the answer).
"""

from __future__ import annotations

from cards import attribution
from cards.errors import IntegrityError

_LAYOUTS: dict[tuple, tuple[list[int], list[int], list[int], list[dict]]] = {}


def targets(record: dict, format: str) -> list[dict]:
    """The attribution targets of a multmath record in `format` (icot or plain), checked."""
    from multmath.generator import GENERATOR  # its view (imported here: the generator imports this module)

    prompt, _, answer = GENERATOR.view.pieces(record)
    key = (format, int(record["digits_a"]), int(record["digits_b"]), len(prompt), len(answer))
    if key not in _LAYOUTS:
        _LAYOUTS[key] = _layout(*key)
        attribution.check(_LAYOUTS[key][3], prompt, answer)
    a, b, c, found = _LAYOUTS[key]
    digits = record["answer"].replace(" ", "")
    if ("".join(prompt[i] for i in a) != record["a"][::-1] or "".join(prompt[j] for j in b) != record["b"][::-1]
            or "".join(answer[k] for k in c) != (digits if format == "icot" else digits[::-1])):
        raise IntegrityError(f"multmath attribution: the spans do not read the digits of {record['text']!r}")
    return found


def _layout(format: str, n: int, m: int, prompt_chars: int, answer_chars: int):
    """Where each digit sits, least-significant first (a_i, b_j in the prompt, c_k in the answer), and the
    targets: `a_0 a_1 ... * b_0 b_1 ... ||` / `#### c_0 c_1 ...` for icot, human order for plain."""
    if format == "icot":
        a, b = [2 * i for i in range(n)], [2 * n + 2 + 2 * j for j in range(m)]
        written = (answer_chars - len(" #### ") + 1) // 2
        c = [answer_chars - 2 * (written - 1 - k) - 1 for k in range(written)]
    else:
        a, b = [n - 1 - i for i in range(n)], [n + 3 + m - 1 - j for j in range(m)]
        written = answer_chars - len(" #### ")
        c = [answer_chars - 1 - k for k in range(written)]
    found = [attribution.target(f"c_{k}", (at, at + 1), [(i, i + 1) for i in a[:k + 1]] +
                                [(j, j + 1) for j in b[:k + 1]]) for k, at in enumerate(c)]
    return a, b, c, found


CHECKED = ("attribution spans: every target's spans lie inside the prompt and answer texts, and on every record "
           "the characters at the source spans spell a and b and those at the answer spans spell the answer")
