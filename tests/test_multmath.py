"""multmath's API, formats, running sums, checker, sampling, leakage, options and training view (in process, no CLI)."""

from __future__ import annotations

import dataclasses
import pickle
import random

import pytest

import multmath
import multmath.generate as generate
from cards.corpus import Candidate, build
from cards.errors import UsageError
from multmath import problem
from multmath.check import check_record, icot_layout
from multmath.generate import SCHEMA, distinct_count, ordered_count
from multmath.generator import GENERATOR, Options, size
from multmath.problems import Problem
from multmath.shuffle import Permutation

VIEW = GENERATOR.view

EXAMPLE = ("9 1 7 3 * 9 4 3 3||1 7 4 3 3 + 0 6 7 8 4 1 ( 1 3 2 2 8 1 ) + 0 0 7 5 1 1 1 ( 1 3 9 7 9 2 1 ) + "
           "0 0 0 7 5 1 1 1 #### 1 3 9 4 5 4 2 1")


def test_issue_example_byte_for_byte():
    assert problem(3719, 3349).icot_line() == EXAMPLE
    assert multmath.problem is problem


# Expected lines worked out by hand: partial product k is a·b_k·10^k, reversed, width len(a)+1+k.
@pytest.mark.parametrize("a, b, line", [
    (7, 8, "7 * 8||6 5 #### 6 5"),                               # 1×1: one term, no running sum
    (3, 45, "3 * 5 4||5 1 + 0 2 1 #### 5 3 1"),                  # 1×2: two terms, still no running sum
    (45, 3, "5 4 * 3||5 3 1 #### 5 3 1"),                        # 2×1
    (10, 10, "0 1 * 0 1||0 0 0 + 0 0 1 0 #### 0 0 1 0"),         # zero digit in b, zero-padded answer
    (12, 305, "2 1 * 5 0 3||0 6 0 + 0 0 0 0 ( 0 6 0 0 ) + 0 0 6 3 0 #### 0 6 6 3 0"),  # 2×3, b has a 0
    (1000, 1000, "0 0 0 1 * 0 0 0 1||0 0 0 0 0 + 0 0 0 0 0 0 ( 0 0 0 0 0 0 ) + 0 0 0 0 0 0 0 "
     "( 0 0 0 0 0 0 0 ) + 0 0 0 0 0 0 1 0 #### 0 0 0 0 0 0 1 0"),
    (99, 99, "9 9 * 9 9||1 9 8 + 0 1 9 8 #### 1 0 8 9"),
])
def test_icot_lines_by_hand(a, b, line):
    assert problem(a, b).icot_line() == line


def test_no_cot_and_plain_lines():
    p = problem(3719, 3349)
    assert p.icot_line(cot=False) == "9 1 7 3 * 9 4 3 3||#### 1 3 9 4 5 4 2 1"
    assert p.plain_line() == "3719 * 3349 = 12454931"
    assert p.plain_line(cot=True) == "3719 * 3349 = 33471 + 148760 (182231) + 1115700 (1297931) + 11157000 = 12454931"
    assert problem(12, 305).plain_line(cot=True) == "12 * 305 = 60 + 0 (60) + 3600 = 3660"
    assert p.parts("icot") == ("9 1 7 3 * 9 4 3 3", EXAMPLE[19:-21], "1 3 9 4 5 4 2 1")


def test_icot_style_loader_reads_both_forms():
    """What ICoT code does with a line: split at `||`, then at `####`; the no-CoT line has an empty CoT."""
    for line, cot in ((problem(3719, 3349).icot_line(), True), (problem(3719, 3349).icot_line(cot=False), False)):
        source, target = line.split("||")
        chain, answer = target.split("####", 1)
        assert source == "9 1 7 3 * 9 4 3 3" and answer.strip() == "1 3 9 4 5 4 2 1"
        assert bool(chain.strip()) is cot


def test_running_sums_and_answer_digits_by_hand():
    p = problem(3719, 3349)
    # s = 81, 45, 94, 85, 36, 30, 9, 0; ĉ_k = s_k + ⌊ĉ_{k-1}/10⌋
    assert p.running_sums == (81, 53, 99, 94, 45, 34, 12, 1)
    assert p.answer_digits == (1, 3, 9, 4, 5, 4, 2, 1)
    assert problem(7, 8).running_sums == (56, 5) and problem(7, 8).answer_digits == (6, 5)
    assert problem(10, 10).running_sums == (0, 0, 1, 0)


@pytest.mark.parametrize("n, m", [(1, 1), (1, 5), (5, 1), (3, 7), (4, 4), (12, 9), (20, 20)])
def test_definitions_hold_for_random_problems(n, m):
    rng = random.Random(f"{n}x{m}")
    for _ in range(50):
        a, b = rng.randrange(10 ** (n - 1), 10**n), rng.randrange(10 ** (m - 1), 10**m)
        p = problem(a, b)
        a_digits, b_digits = p.a_digits, p.b_digits
        carry_in = 0
        for k, hat in enumerate(p.running_sums):
            s_k = sum(a_digits[i] * b_digits[k - i] for i in range(n) if 0 <= k - i < m)
            assert hat == s_k + carry_in // 10 and hat % 10 == p.answer_digits[k]
            carry_in = hat
        assert int("".join(map(str, reversed(p.answer_digits)))) == a * b
        assert len(p.answer_digits) == n + m and p.partial_sums[-1] == a * b
        assert p.line("icot").count(" + ") == m - 1 and p.line("icot").count("(") == max(0, m - 2)
        for format in ("icot", "plain"):
            for cot in ("explicit", "none"):
                record = _record(p, format, cot)
                assert check_record(record, format, cot, n, m) is None, (a, b, format, cot)


def test_problem_rejects_bad_operands():
    for a, b in ((0, 5), (5, -1), (True, 3)):
        with pytest.raises((ValueError, TypeError)):
            problem(a, b)
    with pytest.raises(TypeError):
        problem(3.0, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem(3, 4).a = 5


def _record(p: Problem, format="icot", cot="explicit") -> dict:
    prompt, chain, answer = p.parts(format, cot)
    return {"id": "x", "config": "x", "digits_a": p.digits_a, "digits_b": p.digits_b, "a": str(p.a), "b": str(p.b),
            "product": str(p.product), "answer_digits": list(p.answer_digits), "running_sums": list(p.running_sums),
            "prompt": prompt, "cot": chain, "answer": answer, "text": p.line(format, cot)}


def _planted(**changes) -> dict:
    record = _record(problem(3719, 3349))
    record.update(changes)
    return record


@pytest.mark.parametrize("record, reason", [
    (_planted(text=EXAMPLE.replace("1 7 4 3 3 +", "1 7 4 3 4 +")), "wrong partial product"),
    (_planted(text=EXAMPLE.replace("( 1 3 2 2 8 1 )", "( 1 3 2 2 8 2 )")), "wrong partial sum"),
    (_planted(text=EXAMPLE[:-1] + "2"), "wrong answer"),
    (_planted(text=EXAMPLE.replace("1 7 4 3 3 + ", "1 7 4 3 3 + 0 0 0 0 0 0 + ")), "malformed line"),
    (_planted(text=EXAMPLE.replace(" ( 1 3 2 2 8 1 )", "")), "malformed line"),
    (_planted(text=EXAMPLE.replace("||", "|| ")), "malformed line"),
    (_planted(text=EXAMPLE.replace("4 3 3||", "4 3 ٣||")), "malformed line"),
    (_planted(text=EXAMPLE + " "), "malformed line"),
    (_planted(running_sums=[81, 53, 99, 94, 45, 34, 12, 2]), "wrong running sums"),
    (_planted(answer_digits=[1, 3, 9, 4, 5, 4, 2, 2]), "wrong answer digits"),
    (_planted(product="12454932"), "operand or product column disagrees"),
    (_planted(cot="1 7 4 3 3"), "parts disagree with text"),
    (_planted(digits_a=5), "digit-count column disagrees"),
])
def test_checker_catches_planted_errors(record, reason):
    assert check_record(record, "icot", "explicit", 4, 4) == reason


def test_checker_catches_plain_and_size_errors():
    good = _record(problem(3719, 3349), "plain", "explicit")
    assert check_record(good, "plain", "explicit", 4, 4) is None
    wrong = dict(good, text=good["text"].replace("148760", "148770"))
    assert check_record(wrong, "plain", "explicit", 4, 4) == "wrong partial product"
    wrong = dict(good, text=good["text"].replace("= 12454931", "= 12454932"))
    assert check_record(wrong, "plain", "explicit", 4, 4) == "wrong answer"
    assert check_record(good, "plain", "explicit", 4, 5) == "wrong operand width"
    assert check_record(_record(problem(3719, 3349)), "icot", "explicit", 4, 5) == "malformed line"
    leading_zero = _record(problem(3719, 3349))
    leading_zero["text"] = "9 1 7 0 * 9 4 3 3||" + EXAMPLE[19:]
    assert check_record(leading_zero, "icot", "explicit", 4, 4) == "operand with a leading zero"


def test_icot_layout_is_the_format():
    shape, places = icot_layout(4, 4, True)
    assert shape.decode() == EXAMPLE.translate(str.maketrans("0123456789", "d" * 10))
    assert [EXAMPLE[place] for place in places][:2] == ["3719", "3349"]


def test_broken_generator_is_caught_and_reported(tmp_path, monkeypatch):
    """Plant a wrong partial product in the generator: every record is rejected, with the reason."""
    real = generate.problem

    def wrong(a, b):
        p = real(a, b)
        products = (p.partial_products[0] + 10**4, *p.partial_products[1:]) if a % 3 == 0 else p.partial_products
        return dataclasses.replace(p, partial_products=products)

    monkeypatch.setattr(generate, "problem", wrong)
    configs = GENERATOR.configs(Options(), [(4, 4)], {"train": 200, "validation": 20, "test": 20})
    reports = build(tmp_path / "out", configs, SCHEMA, lambda folder, reports: "card\n")
    assert reports[0].rejected == {"wrong partial product": reports[0].candidates - 240}
    assert reports[0].rejected["wrong partial product"] > 40


def test_permutation_is_a_bijection_and_pickles():
    for left, right in ((1, 1), (9, 9), (9, 90), (90, 900), (7, 13)):
        permutation = Permutation(left, right, 0, "test")
        assert sorted(map(permutation, range(left * right))) == list(range(left * right))
    permutation = Permutation(9000, 9000, 3, "multmath", "4x4")
    again = pickle.loads(pickle.dumps(permutation))
    assert [again(i) for i in range(100)] == [permutation(i) for i in range(100)]
    assert [Permutation(9000, 9000, 4, "multmath", "4x4")(i) for i in range(5)] != [permutation(i) for i in range(5)]


def test_make_is_pure_distinct_and_sized():
    records = [GENERATOR.make_item(Options(seed=7), (3, 7), i).record for i in range(500)]
    generate.plan.cache_clear()  # the permutation made again from scratch
    assert records == [GENERATOR.make_item(Options(seed=7), (3, 7), i).record for i in range(500)]
    assert all(len(r["a"]) == 3 and len(r["b"]) == 7 and r["a"][0] != "0" and r["b"][0] != "0" for r in records)
    assert len({(r["a"], r["b"]) for r in records}) == 500
    assert GENERATOR.make_item(Options(seed=8), (3, 7), 1).record["text"] != records[1]["text"]
    assert records[4]["id"] == "3x7-4" and GENERATOR.config_name((3, 7)) == "3x7"


def test_groups_are_unordered_pairs_unless_disabled():
    candidates = [GENERATOR.make_item(Options(), (2, 2), i) for i in range(ordered_count(2, 2))]
    assert isinstance(candidates[0], Candidate)
    groups = {c.group_key for c in candidates}
    assert len(groups) == distinct_count(2, 2, True) == 90 * 91 // 2
    assert len({c.prompt_key for c in candidates}) == ordered_count(2, 2) == 8100
    separate = Options(commutative=False)
    assert len({GENERATOR.make_item(separate, (2, 2), i).group_key for i in range(300)}) == 300
    assert distinct_count(2, 2, False) == 8100
    exhausted = GENERATOR.make_item(Options(), (2, 2), 8100)
    assert exhausted.record is None and exhausted.rejected


@pytest.mark.parametrize("options, message", [
    (dict(format="nope"), "format: 'nope' is not one of icot, plain"),
    (dict(cot="implicit"), "cot: 'implicit' is not one of explicit, none"),
    (dict(seed="0"), "seed: expected an integer"),
])
def test_bad_options_from_python_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        Options(**options)


def test_levels_are_sizes():
    assert [size(level) for level in (4, (3, 7), [2, 5], "6x1")] == [(4, 4), (3, 7), (2, 5), (6, 1)]
    assert GENERATOR.config_name(5) == "5x5" and GENERATOR.default_levels() == [(4, 4)]
    assert set(GENERATOR.levels) == set(range(2, 21))
    with pytest.raises(UsageError, match="not a size"):
        size((1, 2, 3))
    for levels, sizes, message in (([(41, 2)], {"train": 5}, "1 to 40 digits"),
                                   ([(2, 2)], {"train": 0, "test": 0}, "nothing to generate"),
                                   ([(2, 2)], {"train": 4096}, "only 4,095 distinct problems exist")):
        with pytest.raises(UsageError, match=message):
            GENERATOR.check(Options(), levels, sizes)


def test_view_pieces_gold_and_running_sums():
    record = _record(problem(3719, 3349))
    prompt, cot, answer = VIEW.pieces(record)
    assert prompt == "9 1 7 3 * 9 4 3 3 ||" and cot == " " + record["cot"] and answer == " #### 1 3 9 4 5 4 2 1"
    assert answer.startswith(VIEW.answer_prefix) and VIEW.chain_of_thought and VIEW.digit_tokenizer
    assert VIEW.pieces(_record(problem(3719, 3349), cot="none"))[1] == ""
    assert VIEW.gold(record) == "13945421"
    assert VIEW.running_sums(record) == [81, 53, 99, 94, 45, 34, 12, 1]
    assert set(VIEW.columns) <= set(record)


@pytest.mark.parametrize("output, digits", [
    (" #### 1 3 9 4 5 4 2 1", "13945421"),
    (" 1 7 4 3 3 + 0 6 #### 1 3 9 #### 1 3 x 9", "139"),  # the last ####, digits only
    (" 1 3 9 4 5 4 2 1", ""),  # no marker, no answer
    ("####", ""),
])
def test_view_reads_the_answer_after_the_last_marker(output, digits):
    assert VIEW.answer(output) == digits


def test_view_metrics_by_hand():
    records = [_record(problem(12, 34)), _record(problem(99, 99))]  # answers 8 0 4 0 and 1 0 8 9
    outputs = [" #### 8 0 4 0", " #### 1 0 8"]  # all right; three of four, the last digit missing
    metrics = VIEW.metrics(records, outputs)
    assert metrics == {"digit_accuracy": 7 / 8, "digit_accuracy_by_position": [1.0, 1.0, 1.0, 0.5]}
    assert [VIEW.answer(o) == VIEW.gold(r) for r, o in zip(records, outputs)] == [True, False]
    assert VIEW.metrics(records, ["garbage", ""])["digit_accuracy"] == 0
