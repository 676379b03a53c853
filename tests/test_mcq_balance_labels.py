"""mcq: gold positions balanced within every split (stratified splits), the random-no-abcd and shuffled-numbers
label schemes, and the label check that guards every scheme."""

from __future__ import annotations

import collections
import string

import datasets
import pytest

from cards.corpus import item_rng
from cards.generator import generate
from mcq.generate import check_record
from mcq.labels import SCHEMES, label_problem, make_labels


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("mcq") / "q"
    generate("mcq", out, levels=[2, 3], sizes={"train": 240, "validation": 60, "test": 60}, seed=4,
             schemes=("random-no-abcd", "shuffled-numbers"))
    return out


def test_every_split_balances_gold_positions(corpus):
    level2 = datasets.load_dataset(str(corpus), "level2")
    for split, each in (("train", 60), ("validation", 15), ("test", 15)):
        assert collections.Counter(r["answer"] for r in level2[split]) == {0: each, 1: each, 2: each, 3: each}
    level3 = datasets.load_dataset(str(corpus), "level3")  # 2-10 options: each (count, position) in proportion
    per = {split: collections.Counter((len(r["choices"]), r["answer"]) for r in level3[split]) for split in level3}
    total = sum(per.values(), collections.Counter())
    for split, share in (("train", 4 / 6), ("validation", 1 / 6), ("test", 1 / 6)):
        for stratum, n in total.items():
            assert abs(per[split][stratum] - n * share) <= 2, (split, stratum, per[split][stratum], n)


def test_chosen_schemes_hold_in_records(corpus):
    for config in ("level2", "level3"):
        for record in datasets.load_dataset(str(corpus), config, split="test"):
            assert check_record(record) is None
            labels = record["labels"]
            if record["label_scheme"] == "random-no-abcd":
                assert not set(labels) & set("ABCD") and set(labels) <= set(string.ascii_uppercase)
            else:
                assert record["label_scheme"] == "shuffled-numbers"
                assert sorted(map(int, labels)) == list(range(1, len(labels) + 1)) != list(map(int, labels))
            assert f"\n{record['answer_label']}. " in record["prompt"] or record["label_style"] != "dot"


def test_new_schemes_draw_every_allowed_label():
    rng = item_rng(0, "labels", "spread", 0)
    letters = collections.Counter(x for _ in range(300) for x in make_labels("random-no-abcd", 4, rng))
    assert set(letters) == set(string.ascii_uppercase[4:])
    firsts = collections.Counter(make_labels("shuffled-numbers", 3, rng)[0] for _ in range(300))
    assert set(firsts) == {"1", "2", "3"}


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_made_labels_pass_the_check(scheme):
    rng = item_rng(1, "labels", scheme, 0)
    for k in range(2, 11):
        assert label_problem(scheme, make_labels(scheme, k, rng)) is None


@pytest.mark.parametrize("scheme, labels, problem", [
    ("random-no-abcd", ["E", "A", "Q"], "labels: not all in random-no-abcd's letters"),
    ("random", ["E", "E"], "labels: not distinct"),
    ("shuffled-numbers", ["1", "2", "3"], "labels: shuffled scheme in canonical order"),
    ("shuffled-numbers", ["2", "1", "4"], "labels: not the shuffled-numbers set"),
    ("shuffled", ["A", "B"], "labels: shuffled scheme in canonical order"),
    ("numbers", ["2", "1"], "labels: not in order"),
    ("abcd", ["a", "b"], "labels: not the abcd set"),
])
def test_label_check_catches_bad_labels(scheme, labels, problem):
    assert label_problem(scheme, labels) == problem


def test_stored_record_with_wrong_labels_fails(corpus):
    record = dict(datasets.load_dataset(str(corpus), "level2", split="validation")[0])
    record["label_scheme"] = "random-no-abcd"
    record["labels"] = ["A", *record["labels"][1:]]
    record["answer_label"] = record["labels"][record["answer"]]
    assert check_record(record) is not None
