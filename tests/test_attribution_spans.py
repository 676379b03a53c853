"""Ground-truth attribution spans (`cards.attribution`) of the built-in generators, on hand-worked records."""

from __future__ import annotations

import random

import pyarrow.parquet as pq
import pytest

from cards import attribution
from cards.errors import IntegrityError
from cards.generator import generate
from multmath import attribution as multmath_spans
from multmath import problem
from multmath.generator import GENERATOR as MULTMATH, Options as MultmathOptions


def multmath_record(a: int, b: int, format: str = "icot", cot: str = "explicit") -> dict:
    prompt, chain, answer = problem(a, b).parts(format, cot)
    return {"digits_a": len(str(a)), "digits_b": len(str(b)), "a": str(a), "b": str(b), "prompt": prompt,
            "cot": chain, "answer": answer, "text": f"{a}*{b}"}


def spans_of(targets: list[dict]) -> dict[str, tuple]:
    """label -> ((answer start, end), [(source start, end), ...])"""
    return {t["label"]: ((t["answer"]["start"], t["answer"]["end"]),
                         [(s["start"], s["end"]) for s in t["sources"]]) for t in targets}


# --- multmath ---------------------------------------------------------------------------------------


def test_multmath_2x2_icot_by_hand():
    record = multmath_record(12, 34)  # 12 * 34 = 408: prompt `2 1 * 4 3 ||`, answer ` #### 8 0 4 0`
    prompt, _, answer = MULTMATH.view.pieces(record)
    assert (prompt, answer) == ("2 1 * 4 3 ||", " #### 8 0 4 0")
    a0, a1, b0, b1 = (0, 1), (2, 3), (6, 7), (8, 9)
    assert spans_of(multmath_spans.targets(record, "icot")) == {
        "c_0": ((6, 7), [a0, b0]),
        "c_1": ((8, 9), [a0, a1, b0, b1]),
        "c_2": ((10, 11), [a0, a1, b0, b1]),
        "c_3": ((12, 13), [a0, a1, b0, b1]),
    }


def test_multmath_3x2_plain_by_hand():
    record = multmath_record(123, 45, "plain", "none")  # 123 * 45 = 5535: prompt `123 * 45 ||`, answer ` #### 5535`
    prompt, _, answer = MULTMATH.view.pieces(record)
    assert (prompt, answer) == ("123 * 45 ||", " #### 5535")
    a0, a1, a2, b0, b1 = (2, 3), (1, 2), (0, 1), (7, 8), (6, 7)
    assert spans_of(multmath_spans.targets(record, "plain")) == {  # c_4 = 0 is not written
        "c_0": ((9, 10), [a0, b0]),
        "c_1": ((8, 9), [a0, a1, b0, b1]),
        "c_2": ((7, 8), [a0, a1, a2, b0, b1]),
        "c_3": ((6, 7), [a0, a1, a2, b0, b1]),
    }


@pytest.mark.parametrize("format", ["icot", "plain"])
def test_multmath_digits_outside_the_sources_never_change_the_target(format):
    """The claim itself: changing any digit a_i or b_j that is not a source of c_k leaves c_k as it was."""
    rng = random.Random(0)
    for _ in range(30):
        n, m = rng.randint(2, 5), rng.randint(2, 5)
        a, b = rng.randrange(10 ** (n - 1), 10 ** n), rng.randrange(10 ** (m - 1), 10 ** m)
        record = multmath_record(a, b, format)
        prompt, _, answer = MULTMATH.view.pieces(record)
        for t in multmath_spans.targets(record, format):
            k = int(t["label"][2:])
            sources = {(s["start"], s["end"]) for s in t["sources"]}
            digit = answer[t["answer"]["start"]:t["answer"]["end"]]
            assert digit == str(a * b // 10 ** k % 10)
            for at in range(len(prompt)):
                if prompt[at].isdigit() and (at, at + 1) not in sources:
                    changed = prompt[:at] + str((int(prompt[at]) + rng.randint(1, 8)) % 10) + prompt[at + 1:]
                    x, y = _operands(changed, format)
                    assert x * y // 10 ** k % 10 == int(digit), (record["text"], t["label"], changed)


def _operands(prompt: str, format: str) -> tuple[int, int]:
    a, b = prompt.rstrip(" |").split(" * ")
    return (int(a.replace(" ", "")[::-1]), int(b.replace(" ", "")[::-1])) if format == "icot" else (int(a), int(b))


def test_multmath_spans_that_miss_their_digits_are_refused():
    record = multmath_record(12, 34)
    multmath_spans.targets(record, "icot")
    record["a"] = "13"  # the text says 12
    with pytest.raises(IntegrityError, match="do not read the digits"):
        multmath_spans.targets(record, "icot")


def test_multmath_corpus_records_carry_checked_spans(tmp_path):
    generate("multmath", tmp_path / "m", levels=[(3, 2)], sizes={"train": 40, "validation": 5, "test": 5},
             format="plain")
    for shard in (tmp_path / "m" / "data" / "3x2").glob("*.parquet"):
        for record in pq.read_table(shard).to_pylist():
            prompt, _, answer = MULTMATH.view.pieces(record)
            attribution.check(record["attribution"], prompt, answer)
            assert [t["label"] for t in record["attribution"]] == [f"c_{k}" for k in range(len(record["product"]))]
            assert "".join(answer[t["answer"]["start"]] for t in record["attribution"]) == record["product"][::-1]
    assert "attribution spans" in (tmp_path / "m" / "README.md").read_text()
    assert MULTMATH.make_item(MultmathOptions(), (2, 2), 0).record["attribution"]
