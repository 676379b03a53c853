"""`assoc-gen`: hand-worked attribution spans, the independent checker (it accepts right records and rejects
wrong ones), every kind at every level, the folder loads, splits hold out their leakage groups, same seed same
bytes across worker counts and hash seeds, the view, and one-line errors."""

from __future__ import annotations

import functools
from pathlib import Path

import datasets
import pytest
from conftest import one_line_error, script

from assoc import generate as items
from assoc.check import check_record, solve, Unsolvable
from assoc.generator import GENERATOR, Options, normal
from assoc.levels import BRACKETS, KINDS, LEVELS
from cards.attribution import check as check_targets
from cards.errors import UsageError
from cards.generator import generate
from facts.kb import knowledge_base

run = functools.partial(script, "assoc.cli")
KB = dict(kb_seed=0, kb_people=200, kb_cities=20)


def record(kind, prompt, completion, targets, concept="c"):
    return {"kind": kind, "concept": concept, "prompt": prompt, "completion": completion,
            "attribution": [{"label": label, "answer": {"start": a, "end": b},
                             "sources": [{"start": s, "end": e} for s, e in sources]}
                            for label, (a, b), sources in targets]}


# --- hand-worked examples: the spans written out by hand --------------------------------------------------

HAND = [
    # 'vaj' is at 11-14 of the context, its value '92' at 17-19; the answer '92' at 1-3 of ' 92'
    record("kv", "cag = 42 , vaj = 92 . vaj =", " 92", [("vaj", (1, 3), [(11, 14), (17, 19)])]),
    # A B A B A: the answer B's place holds 'bo' at 3-5 and 9-11
    record("repeat", "ka bo ka bo ka", " bo", [("repeat AB", (1, 3), [(3, 5), (9, 11)])]),
    # ( [ ] { : '{' at 6 closes first (' }' at 1-2), then '(' at 0 (' )' at 3-4)
    record("brackets", "( [ ] {", " } )", [("close {", (1, 2), [(6, 7)]), ("close (", (3, 4), [(0, 1)])]),
    record("copy", "ka bo <-", " bo ka", [("word 0", (1, 3), [(3, 5)]), ("word 1", (4, 6), [(0, 2)])]),
    # ... X Y ... X: X='ka' at 3-5, Y='bo' at 6-8
    record("induction", "mu ka bo zi ka", " bo", [("induction", (1, 3), [(3, 5), (6, 8)])]),
]


@pytest.mark.parametrize("rec", HAND, ids=[r["kind"] for r in HAND])
def test_hand_worked_records_pass_and_shifted_spans_fail(rec):
    check_targets(rec["attribution"], rec["prompt"], rec["completion"])
    assert check_record(rec) is None
    shifted = {**rec, "attribution": [{**t, "sources": [{"start": s["start"] + 1, "end": s["end"] + 1}
                                                        for s in t["sources"]]} for t in rec["attribution"]]}
    assert check_record(shifted) is not None
    wrong = {**rec, "completion": rec["completion"] + " x"}
    assert check_record(wrong) is not None


@pytest.mark.parametrize("kind, prompt", [
    ("kv", "cag = 42 , cag = 43 . cag ="),  # a key bound twice
    ("kv", "cag = 42 , vaj = 92 . bo ="),  # the queried key is not bound
    ("repeat", "ka bo mu"),  # no motif shown twice
    ("brackets", "( ]"),  # a mismatched closer
    ("brackets", "( )"),  # nothing left open
    ("copy", "ka bo"),  # no arrow
    ("induction", "ka bo ka zi ka"),  # the last word occurs twice before
    ("induction", "mu zi ka"),  # ... or never
])
def test_checker_refuses_prompts_without_one_answer(kind, prompt):
    with pytest.raises(Unsolvable):
        solve(kind, prompt)


def test_repeat_checker_reads_deep_motifs():
    assert solve("repeat", "a a b a a b a") == ["a"]
    assert solve("repeat", "a a b a a b a a") == ["b"]
    assert solve("brackets", "( x [ { } ] < y") == [">", ")"]


class TinyKB:
    """Three people: Ann and Bob share country and residence France, so an Ann : France pair is ambiguous."""

    facts = {"Ann": {"country": "France", "residence": "France", "sport": "golf"},
             "Bob": {"country": "Spain", "residence": "Italy", "sport": "judo"},
             "Cy": {"country": "Peru", "residence": "Peru", "sport": "golf"}}

    def kind(self, s):
        return "person" if s in self.facts else None

    def relations(self, s):
        return tuple(self.facts[s])

    def value(self, s, r):
        return self.facts[s][r]


def test_analogy_hand_worked_and_ambiguity():
    kb = TinyKB()
    good = record("analogy", "Ann : golf :: Bob :", " judo", [("sport", (1, 5), [(0, 3), (6, 10), (14, 17)])])
    assert check_record(good, kb) is None
    assert check_record({**good, "completion": " golf"}, kb) is not None
    ambiguous = record("analogy", "Ann : France :: Bob :", " Spain", [("country", (1, 6), [(0, 3), (6, 12), (16, 19)])])
    assert "different answers" in check_record(ambiguous, kb)  # country says Spain, residence Italy
    agree = record("analogy", "Ann : France :: Cy :", " Peru", [("country", (1, 5), [(0, 3), (6, 12), (16, 18)])])
    assert check_record(agree, kb) is None  # both relations say Peru
    assert check_record(record("analogy", "Ann : golf :: Zed :", " x", [("sport", (1, 2), [(0, 3)])]), kb)


# --- the maker, against spans derived here from the words ---------------------------------------------------

def offsets(text: str) -> list[tuple[int, int]]:
    spans, at = [], 0
    for word in text.split(" "):
        spans.append((at, at + len(word)))
        at += len(word) + 1
    return spans


def expected_spans(rec) -> list[tuple[tuple[int, int], list[tuple[int, int]]]]:
    """(answer span, source spans) per target, worked out from word positions alone."""
    words, at = rec["prompt"].split(" "), offsets(rec["prompt"])
    out = [(a[0] + 1, a[1] + 1) for a in offsets(rec["completion"][1:])]  # the answer words after the space
    kind, n = rec["kind"], len(words)
    if kind == "kv":
        i = next(i for i in range(0, n - 3, 4) if words[i] == words[-2])
        return [((1, len(rec["completion"])), [at[i], at[i + 2]])]
    if kind == "repeat":
        p = len(rec["concept"].split()[1])
        return [(out[0], [at[j] for j in range(n % p, n, p)])]
    if kind == "brackets":
        stack = []
        for j, w in enumerate(words):
            if w in BRACKETS:
                stack.append(j)
            elif w in BRACKETS.values():
                stack.pop()
        return [(out[k], [at[j]]) for k, j in enumerate(reversed(stack))]
    if kind == "copy":
        order = range(n - 1) if words[-1] == "->" else reversed(range(n - 1))
        return [(out[k], [at[j]]) for k, j in enumerate(order)]
    if kind == "induction":
        j = words.index(words[-1])
        return [(out[0], [at[j], at[j + 1]])]
    return [(out[0], [at[0], at[2], at[4]])]  # analogy: X, a, Y


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_every_kind_at_every_level_checks_and_spans_match_the_words(level):
    options = Options(seed=5, **KB)
    kb = options.knowledge_base()
    seen = set()
    for index in range(120):
        candidate = items.make_item(options, level, index, kb)
        if candidate.record is None:
            assert candidate.rejected.startswith(items.REJECTED) and "analogy" in candidate.rejected
            continue
        rec = candidate.record
        seen.add(rec["kind"])
        assert check_record(rec, kb) is None
        got = [((t["answer"]["start"], t["answer"]["end"]), [(s["start"], s["end"]) for s in t["sources"]])
               for t in rec["attribution"]]
        assert got == expected_spans(rec), rec
        recipe = LEVELS[level]
        if rec["kind"] == "kv":
            assert recipe.pairs[0] <= rec["prompt"].count(" = ") <= recipe.pairs[1]
            assert rec["concept"] == rec["prompt"].split(" ")[-2]
        if rec["kind"] == "brackets":
            assert recipe.open_left[0] <= len(rec["attribution"]) <= recipe.open_left[1]
    assert seen == set(KINDS)


def test_analogy_uses_the_levels_relations_and_real_facts():
    options = Options(seed=1, kinds=("analogy",), **KB)
    kb = knowledge_base(0, 200, 20)
    relations = set()
    for index in range(60):
        rec = items.make_item(options, 1, index, kb).record
        if rec is not None:
            x, _, a, _, y, _ = rec["prompt"].split(" ")
            assert kb.value(x, rec["concept"]) == a and rec["completion"] == " " + kb.value(y, rec["concept"])
            relations.add(rec["concept"])
    assert relations == {"country", "language", "sport"}


# --- the corpus folder -------------------------------------------------------------------------------------

def files_of(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("assoc") / "a"
    result = run("--level", "1,3", "-n", "600", "--seed", "2", "--kb-people", "200", "--kb-cities", "20",
                 "--num-proc", "2", "--out", "a", env={"PYTHONHASHSEED": "1"}, cwd=out.parent)
    assert result.returncode == 0, result.stderr
    return out


def test_folder_loads_and_every_label_rechecks(corpus):
    kb = knowledge_base(0, 200, 20)
    assert datasets.get_dataset_config_names(str(corpus)) == ["level1", "level3"]
    for config in ("level1", "level3"):
        ds = datasets.load_dataset(str(corpus), config)
        assert {s: len(ds[s]) for s in ds} == {"train": 480, "validation": 60, "test": 60}
        for split in ds:
            kinds = set()
            for rec in ds[split]:
                assert check_record(rec, kb) is None
                kinds.add(rec["kind"])
            assert kinds == set(KINDS)
    card = (corpus / "README.md").read_text()
    assert "re-derived from the rendered prompt" in card and "candidates" in card and "rejected" in card


def leakage_key(rec) -> str:
    """The record's leakage group, re-derived from its prompt and completion."""
    words, kind = rec["prompt"].split(" "), rec["kind"]
    if kind == "kv":
        return " ".join(sorted(f"{words[i]}={words[i + 2]}" for i in range(0, len(words) - 3, 4))) + words[-2]
    if kind == "repeat":
        cycle = words[: len(rec["concept"].split()[1])]
        return " ".join(min(cycle[i:] + cycle[:i] for i in range(len(cycle))))
    if kind == "brackets":
        return "".join(w for w in words if w in BRACKETS or w in BRACKETS.values())
    if kind == "copy":
        return " ".join(sorted(words[:-1]))
    if kind == "induction":
        return f"{words[-1]} {rec['completion']}"
    return f"{rec['concept']} {' '.join(sorted((words[0], words[4])))}"


def test_splits_hold_out_prompts_and_leakage_groups(corpus):
    for config in ("level1", "level3"):
        ds = datasets.load_dataset(str(corpus), config)
        prompts = [r["prompt"] for s in ds for r in ds[s]]
        assert len(prompts) == len(set(prompts))
        owner = {}
        for split in ds:
            for rec in ds[split]:
                key = (rec["kind"], leakage_key(rec))
                assert owner.setdefault(key, split) == split, key


def test_same_seed_same_bytes_across_workers_and_hash_seeds(corpus, tmp_path):
    again = tmp_path / "a"
    result = run("--level", "1,3", "-n", "600", "--seed", "2", "--kb-people", "200", "--kb-cities", "20",
                 "--num-proc", "1", "--out", "a", env={"PYTHONHASHSEED": "7"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert files_of(again) == files_of(corpus)
    other = tmp_path / "b"
    assert run("--level", "1", "-n", "60", "--seed", "3", "--kinds", "kv", "--out", other).returncode == 0
    first = datasets.load_dataset(str(other), split="train")[0]
    assert first["prompt"] != datasets.load_dataset(str(corpus), "level1", split="train")[0]["prompt"]


def test_view_reads_digits_and_words_alike_and_scores_per_kind():
    view = GENERATOR.view
    assert view.digit_tokenizer
    assert normal(" 92") == normal("9 2") == "9 2" and view.gold({"completion": " } )"}) == "} )"
    records = [{"kind": "kv", "completion": " 92"}, {"kind": "kv", "completion": " 13"},
               {"kind": "copy", "completion": " ka bo"}]
    assert view.metrics(records, ["9 2", "1 4", "ka bo"]) == {"exact_match_kv": 0.5, "exact_match_copy": 1.0}


@pytest.mark.parametrize("args, message", [
    (["--level", "7"], "level"),
    (["--kinds", "kv,nope"], "kinds"),
    (["--kb-people", "1"], "kb_people"),
    (["-n", "0"], ""),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    result = run(*args, "--out", tmp_path / "x")
    assert message in one_line_error(result.returncode, result.stderr)
    assert not (tmp_path / "x").exists()


def test_python_options_are_validated():
    with pytest.raises(UsageError, match="kinds"):
        generate("assoc", "unused", kinds=("kv", "kv"))
    with pytest.raises(UsageError, match="seed"):
        Options(seed="1")
    assert Options(kinds=("copy", "kv")).kinds == ("kv", "copy")
