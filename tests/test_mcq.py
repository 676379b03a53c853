"""mcq: every source's verifier (planted wrong keys included), labels and styles, gold balance, counterfactuals,
options and the training view."""

from __future__ import annotations

import collections
import json
import string

import pytest

from cards.corpus import item_rng
from cards.errors import UsageError
from mcq.generate import LEVELS, check_record, gold_slot, make_item, token_check, verdict
from mcq.generator import GENERATOR, Options
from mcq.labels import SCHEMES, make_labels, multi_token_labels, render_prompt
from mcq.sources import SOURCES, slips

FAST_SOURCES = [name for name in SOURCES if name != "sql"]


def questions(source, count, ks=range(2, 11)):
    """(question, k, near) for `count` seeds per (k, near)."""
    for k in ks:
        for near in (False, True):
            for i in range(count):
                yield SOURCES[source].generate(item_rng(7, source, f"{k}{near}", i), k, near), k, near


def placed(question, k, gold):
    distractors = question.distractors[: k - 1]
    return distractors[:gold] + [question.answer] + distractors[gold:]


@pytest.mark.parametrize("source", FAST_SOURCES)
def test_verifier_finds_exactly_the_gold_option(source):
    for question, k, near in questions(source, 12):
        assert len(question.distractors) >= k - 1, (source, k, near)
        gold = k // 2
        choices = placed(question, k, gold)
        assert SOURCES[source].verify(question.facts, choices) == [gold], (question, choices)
        json.dumps(question.facts)  # stored in the record


def test_sql_verifier_executes_gold_and_distractors():
    for question, k, _ in questions("sql", 2, ks=(3, 5)):
        if len(question.distractors) < k - 1:
            continue
        choices = placed(question, k, 1)
        assert SOURCES["sql"].verify(question.facts, choices) == [1]
        assert verdict("sql", question.facts, choices, 0) == "verifier: another option is correct"
        assert verdict("sql", question.facts, [choices[0], choices[2]], 0) == "verifier: no correct option"


@pytest.mark.parametrize("source", list(SOURCES))
def test_planted_wrong_key_is_caught(source):
    """A record whose `answer` points at a wrong option, or whose gold text was swapped out, fails."""
    level = 4
    options = Options(seed=3, sources=(source,), options=(4,))
    record = next(c.record for i in range(40) if (c := make_item(options, level, i)).record)
    assert check_record(record) is None
    wrong = dict(record, answer=(record["answer"] + 1) % 4)
    wrong["answer_label"] = wrong["labels"][wrong["answer"]]
    assert check_record(wrong) == "verifier: another option is correct"
    gone = dict(record, choices=list(record["choices"]))
    gone["choices"][record["answer"]] = "42424242" if source != "order" else "zzzz"
    gone["prompt"] = render_prompt(gone["question"], gone["choices"], gone["labels"], gone["label_style"])
    assert check_record(gone) == "verifier: no correct option"


@pytest.mark.parametrize("source, tamper", [
    ("context", lambda f: f.update(pairs=[[e, "teal" if e == f["query"] else v] for e, v in f["pairs"]])),
    ("arithmetic", lambda f: f.update(a=f["a"] + 1) if "a" in f else f.update(numbers=[x + 50 for x in f["numbers"]])),
    ("order", lambda f: f.update(kind={"first": "last", "last": "first", "longest": "shortest",
                                       "shortest": "longest"}[f["kind"]])),
    ("multiplication", lambda f: f.update(b=f["b"] + 1)),
])
def test_verifier_reads_the_facts_not_the_generator(source, tamper):
    """Changing the facts (not the options) changes the verdict: the verifier recomputes the answer."""
    for question, k, _ in questions(source, 3, ks=(3, 6)):
        choices = placed(question, k, 0)
        facts = json.loads(json.dumps(question.facts))
        tamper(facts)
        assert SOURCES[source].verify(facts, choices) != [0], (facts, choices)


def test_comparison_and_order_verifiers_refuse_ties():
    assert SOURCES["arithmetic"].verify({"kind": "largest", "numbers": [5, 5, 3]}, ["5", "3"]) == []
    assert SOURCES["order"].verify({"kind": "longest", "words": ["cat", "dog", "ox"]}, ["cat", "dog", "ox"]) == []
    assert SOURCES["order"].verify({"kind": "first", "words": ["bee", "ant"]}, ["bee", "ant"]) == [1]
    assert SOURCES["context"].verify({"relation": "pet", "pairs": [["Bob", "dog"], ["Bob", "cat"]], "query": "Bob"},
                                     ["dog", "cat"]) == []


def test_multiplication_slips_are_wrong_products():
    for a, b in ((292, 143), (37, 48), (99, 99), (10, 10)):
        wrong = slips(a, b)
        assert wrong and a * b not in wrong and all(x > 0 for x in wrong)


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_label_schemes(scheme):
    rng = item_rng(0, "labels", scheme, 0)
    for k in range(2, 11):
        labels = make_labels(scheme, k, rng)
        assert len(labels) == len(set(labels)) == k
        expected = {"abcd": list(string.ascii_uppercase[:k]), "lower": list(string.ascii_lowercase[:k]),
                    "numbers": [str(i) for i in range(1, k + 1)]}.get(scheme)
        if expected:
            assert labels == expected
        elif scheme == "shuffled":
            assert sorted(labels) == list(string.ascii_uppercase[:k]) and labels != sorted(labels)
        elif scheme == "shuffled-numbers":
            assert sorted(labels, key=int) == [str(i) for i in range(1, k + 1)] != labels
        else:
            assert all(label in string.ascii_uppercase[4 if scheme == "random-no-abcd" else 0:] for label in labels)


@pytest.mark.parametrize("style, line", [("dot", "B. blue"), ("paren", "(B) blue"), ("colon", "B: blue")])
def test_label_styles_and_mmlu_layout(style, line):
    prompt = render_prompt("What colour is the cup?", ["red", "blue"], ["A", "B"], style)
    assert prompt.splitlines()[2] == line
    if style == "dot":
        assert prompt == "What colour is the cup?\nA. red\nB. blue\nAnswer:"


@pytest.mark.parametrize("counts", [(2,), (4,), tuple(range(2, 11))])
def test_gold_positions_exactly_balanced(counts):
    span = len(counts) * 2520
    seen = collections.Counter(gold_slot(0, "level3", i, counts) for i in range(span))
    per_count = span // len(counts)
    assert seen == {(k, p): per_count // k for k in counts for p in range(k)}


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_levels_follow_the_ladder(level):
    plan = LEVELS[level]
    for i in range(30):
        record = make_item(Options(seed=1), level, i).record
        if record is None:
            continue
        assert check_record(record) is None
        assert len(record["choices"]) in plan.options and record["source"] in plan.sources
        assert record["label_scheme"] in plan.schemes and record["label_style"] in plan.styles
        assert record["prompt"].endswith("\nAnswer:") and record["labels"][record["answer"]] == record["answer_label"]


def test_make_item_is_a_pure_function_of_seed_level_index():
    first = [make_item(Options(seed=5), 4, i) for i in range(20)]
    again = [make_item(Options(seed=5), 4, i) for i in range(20)]
    other = [make_item(Options(seed=6), 4, i) for i in range(20)]
    assert [c.record for c in first] == [c.record for c in again]
    assert [c.record for c in first] != [c.record for c in other]


@pytest.mark.parametrize("kind", ["swap", "labels"])
def test_counterfactual_pairs(kind):
    for i in range(60):
        record = make_item(Options(seed=2, counterfactual=kind), 3, i).record
        assert check_record(record) is None
        assert record["cf_kind"] == kind and len(record["cf_prompt"]) == len(record["prompt"])
        assert record["cf_answer_label"] != record["answer_label"]
        assert record["cf_prompt"].startswith(record["question"] + "\n")
        if kind == "swap":
            assert record["cf_labels"] == record["labels"] and sorted(record["cf_choices"]) == sorted(record["choices"])
            assert record["cf_choices"][record["cf_answer"]] == record["choices"][record["answer"]]
        else:
            assert record["cf_choices"] == record["choices"] and record["cf_answer"] == record["answer"]
            assert sum(a != b for a, b in zip(record["labels"], record["cf_labels"])) == 2
        plain = make_item(Options(seed=2), 3, i).record
        assert {k: v for k, v in record.items() if not k.startswith("cf_")} == plain


def test_broken_counterfactual_is_caught():
    record = make_item(Options(seed=2, counterfactual="swap"), 2, 0).record
    assert check_record(dict(record, cf_answer=record["answer"])) is not None
    assert check_record(dict(record, cf_prompt=record["cf_prompt"] + " ")) == "counterfactual: lengths differ"


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    """A character-level tokenizer: letters and digits are single tokens, so `10` is two."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, **{c: i + 1 for i, c in enumerate(string.printable.strip())}}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp_path_factory.mktemp("tokenizer")
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(folder)
    return folder, AutoTokenizer.from_pretrained(folder)


def test_single_token_check(tiny_tokenizer):
    _, tokenizer = tiny_tokenizer
    prompt = render_prompt("Q?", [str(i) for i in range(10)], [str(i) for i in range(1, 11)], "dot")
    assert multi_token_labels(tokenizer, prompt, ["1", "9", "10", "A"]) == ["10"]
    record = {"prompt": prompt, "labels": [str(i) for i in range(1, 11)]}
    assert token_check(tokenizer, record) == "label not a single token"
    assert token_check(tokenizer, {"prompt": prompt, "labels": ["1", "2"], "cf_prompt": prompt + " x",
                                   "cf_labels": ["1", "2"]}) == "counterfactual: token counts differ"


def test_tokenizer_option_rejects_multi_token_labels(tiny_tokenizer):
    folder, _ = tiny_tokenizer
    options = Options(seed=0, schemes=("numbers",), options=(9, 10), tokenizer=str(folder), counterfactual="swap")
    candidates = [make_item(options, 3, i) for i in range(40)]
    assert {c.rejected for c in candidates if c.record is None} == {"label not a single token"}
    assert {len(c.record["labels"]) for c in candidates if c.record} == {9}


@pytest.mark.parametrize("options, message", [
    (dict(schemes=("greek",)), "schemes: unknown label scheme 'greek'"),
    (dict(styles="bold"), "styles: unknown label style 'bold'"),
    (dict(sources=["trivia"]), "sources: unknown source 'trivia'"),
    (dict(sources=[]), "sources: expected at least one source"),
    (dict(options=(11,)), "options: expected a count 2-10"),
    (dict(options=1), "options: expected a count 2-10"),
    (dict(counterfactual="both"), "counterfactual: 'both' is not one of swap, labels"),
    (dict(seed=1.5), "seed: expected an integer"),
])
def test_bad_options_from_python_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        Options(**options)


def test_options_take_any_sequence():
    options = Options(options=[3, 4], schemes="abcd", styles=["dot", "paren"])
    assert (options.options, options.schemes, options.styles) == ((3, 4), ("abcd",), ("dot", "paren"))
    assert hash(options) == hash(Options(options=(3, 4), schemes=("abcd",), styles=("dot", "paren")))
    with pytest.raises(UsageError, match="level 5 does not exist"):
        GENERATOR.check(Options(), [1, 5], {"train": 10})


def test_view_scores_the_gold_label():
    view = GENERATOR.view
    record = make_item(Options(seed=1), 3, 0).record
    assert set(view.columns) <= set(record)
    prompt, cot, answer = view.pieces(record)
    assert prompt == record["prompt"] and prompt.endswith("Answer:") and cot == ""
    assert answer == " " + record["answer_label"] == " " + view.gold(record)
    continuations, gold = view.choices(record)
    assert continuations == [" " + label for label in record["labels"]] and gold == record["answer"]
    assert continuations[gold] == answer
    assert view.answer(answer + "\n") == view.gold(record)
    assert not view.chain_of_thought and view.running_sums(record) is None
