"""facts: the knowledge base, phrasings, label check, splits that hold out what the card says, partners of equal
token length under the corpus tokenizer, attribution spans, and same seed -> same bytes."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import datasets
import pytest

from cards.generator import generate
from facts import generate as items
from facts.check import check_record, look_up
from facts.cli import main as facts_main
from facts.generator import GENERATOR
from facts.kb import RELATIONS, knowledge_base
from facts.phrasings import LEVELS, STYLES, held_out, parse, render, trained
from train.tokenizer import UNK, train_tokenizer

SIZES = {"train": 360, "validation": 40, "test": 60}  # level 1 has 360 trained and 120 held-out items


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("facts") / "f"
    generate("facts", out, levels=[1, 2, 3], sizes=SIZES, seed=5, people=40, cities=8)
    return out


def load(corpus, level):
    return datasets.load_dataset(str(corpus), f"level{level}")


def fact(r):
    return r["subject"], r["relation"]


def test_knowledge_base_is_a_pure_function_of_its_arguments():
    kb = knowledge_base(3, 40, 6)
    knowledge_base.cache_clear()
    again, bigger = knowledge_base(3, 40, 6), knowledge_base(3, 80, 6)
    assert again == kb and bigger.people[:40] == kb.people and knowledge_base(4, 40, 6).people != kb.people
    assert all(bigger.attributes[p] == kb.attributes[p] for p in kb.people)
    words = {w.lower() for r in RELATIONS.values() for w in (*r.values, *r.verb.split(), *r.noun.split())}
    names = kb.people + kb.cities
    assert len({n.lower() for n in names}) == len(names) and not words & {n.lower() for n in names}
    assert all(n.isalpha() and n[0].isupper() and n[1:].islower() for n in names)
    person = kb.people[0]
    assert kb.value(person, "residence") == kb.attributes[kb.attributes[person]["city"]]["located"]
    assert kb.relations(kb.cities[0]) == ("located",) and kb.kind("Nobody") is None
    assert kb.summary()["facts"] == 40 * 9 + 6


def test_every_phrasing_parses_back_and_styles_have_one_word_count():
    for style in STYLES:
        counts = set()
        for relation in RELATIONS:
            prompt, s, p = render(style, relation, "Zorbin")
            assert parse(prompt) == (style, relation, "Zorbin")
            assert prompt[s[0]:s[1]] == "Zorbin" and prompt[p[0]:p[1]] in (RELATIONS[relation].verb,
                                                                           RELATIONS[relation].noun)
            counts.add(len(prompt.split()))
        assert len(counts) == 1, style
    assert parse("Fact: zorbin comes from the country of") is None


def test_held_out_phrasings_use_only_words_of_trained_ones():
    for level, spec in LEVELS.items():
        trained_words = {w for r in spec.relations for s in trained(level, r) for w in render(s, r, "X")[0].split()}
        for r in spec.relations:
            assert set(held_out(level, r)) <= set(spec.styles) and trained(level, r)
            for s in held_out(level, r):
                assert set(render(s, r, "X")[0].split()) <= trained_words, (level, r, s)


def test_hand_worked_record_spans_and_attribution():
    at = items.plan(GENERATOR.Options(seed=5, people=60, cities=8), 1, (400, 60, 100))
    subject = at.kb.people[0]
    value = at.kb.value(subject, "country")
    unit = items.Unit(subject, "country", ("fact",))
    record = items._record(at, 1, 7, unit, "fact", "", random.Random(0))
    # "Fact: " is 6 characters; the verb phrase starts after the subject and one space
    assert record["prompt"] == f"Fact: {subject} comes from the country of"
    end = 6 + len(subject)
    assert record["subject_span"] == {"start": 6, "end": end}
    assert record["relation_span"] == {"start": end + 1, "end": end + 1 + len("comes from the country of")}
    assert record["attribution"] == [{"label": "country", "answer": {"start": 1, "end": 1 + len(value)},
                                      "sources": [{"start": 6, "end": end},
                                                  {"start": end + 1, "end": end + 26}]}]
    prompt, s, p = render("question", "sport", "Abc")  # "Q: What is the favourite sport of Abc ? A:"
    assert (s, p) == ((34, 37), (15, 30))
    assert check_record(record, at.kb) is None


def test_check_refuses_tampered_records(corpus):
    kb = knowledge_base(5, 40, 8)
    record = load(corpus, 1)["train"][0]
    assert check_record(record, kb) is None
    wrong = next(v for v in RELATIONS[record["relation"]].values if v != record["answer"])
    assert check_record({**record, "completion": " " + wrong, "answer": wrong}, kb)
    assert check_record({**record, "subject_span": {"start": 0, "end": 1}}, kb)
    assert check_record({**record, "cf_subject_prompt": "Fact: " + record["cf_subject_prompt"]}, kb)
    assert check_record({**record, "prompt": record["prompt"] + " ,"}, kb)


@pytest.mark.parametrize("level", [1, 2, 3])
def test_every_label_rechecks_against_the_knowledge_base(corpus, level):
    kb = knowledge_base(5, 40, 8)
    ds = load(corpus, level)
    assert {s: len(ds[s]) for s in ds} == SIZES
    for split in ds:
        for r in ds[split]:
            style, relation, subject = parse(r["prompt"])
            assert r["completion"] == " " + look_up(kb, subject, relation) and check_record(r, kb) is None


@pytest.mark.parametrize("level", [1, 2])
def test_test_holds_out_phrasings_of_trained_facts(corpus, level):
    ds = load(corpus, level)
    train_phrasings = {(r["phrasing"], r["relation"]) for r in ds["train"]}
    train_facts = {fact(r) for r in ds["train"]}
    assert train_facts == {(s, r) for s, r, _ in knowledge_base(5, 40, 8).facts(LEVELS[level].relations)}
    for split in ("validation", "test"):
        for r in ds[split]:
            assert (r["phrasing"], r["relation"]) not in train_phrasings and fact(r) in train_facts
            assert r["phrasing"] in held_out(level, r["relation"]) and r["holdout"] == "held-out phrasing"


def test_two_hop_test_facts_are_only_seen_through_their_hops(corpus):
    ds = load(corpus, 3)
    kb = knowledge_base(5, 40, 8)
    train_facts = {fact(r) for r in ds["train"]}
    held = {r["subject"] for split in ("validation", "test") for r in ds[split]}
    assert held and any(r["relation"] == "residence" for r in ds["train"])
    for split in ("validation", "test"):
        for r in ds[split]:
            assert r["relation"] == "residence" and r["hops"] == 2 and r["bridge"] == kb.value(r["subject"], "city")
            assert (r["subject"], "city") in train_facts and (r["bridge"], "located") in train_facts
    assert not any(r["relation"] == "residence" and r["subject"] in held for r in ds["train"])


@pytest.mark.parametrize("level", [1, 2, 3])
def test_partners_have_equal_token_counts_and_no_word_is_unknown(corpus, level):
    ds = load(corpus, level)
    view = GENERATOR.view
    assert view.digit_tokenizer
    tokenizer = train_tokenizer(("".join(view.pieces(r)) for r in ds["train"]), digits=True, vocab_size=0)
    unk = tokenizer.convert_tokens_to_ids(UNK)

    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    partners = 0
    for split in ds:
        for r in ds[split]:
            assert unk not in ids(r["prompt"] + r["completion"]), r["prompt"]
            assert len(ids(r["completion"])) == 1
            for key in ("cf_subject_prompt", "cf_relation_prompt"):
                if r[key] is not None:
                    partners += 1
                    assert len(ids(r[key])) == len(ids(r["prompt"])), (r["prompt"], r[key])
    assert partners > len(ds["train"])


def test_refusals_are_one_line_errors(cli, tmp_path):
    status, _, err = cli(facts_main, "--level", "1", "-n", "100", "--people", "60", "--out", tmp_path / "x")
    assert status == 2 and "every one of the 180 trained facts" in err and len(err.strip().splitlines()) == 1
    status, _, err = cli(facts_main, "--level", "4", "--out", tmp_path / "y")
    assert status == 2 and "level" in err


def test_same_seed_same_bytes_across_worker_counts_and_hash_seeds(tmp_path):
    runs = {}
    for hash_seed, num_proc in (("1", "1"), ("2", "2")):
        cwd = tmp_path / f"hash{hash_seed}"
        cwd.mkdir()
        runs[cwd / "out"] = subprocess.Popen(
            [sys.executable, "-m", "facts.cli", "--level", "1,3", "--num-train", "1800", "--num-valid", "100",
             "--num-test", "200", "--people", "200", "--cities", "10", "--seed", "2", "--num-proc", num_proc,
             "--out", "out"],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed})
    for process in runs.values():
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    first, second = ({str(p.relative_to(o)): p.read_bytes() for p in sorted(o.rglob("*")) if p.is_file()}
                     for o in runs)
    assert any(n.endswith(".parquet") for n in first) and first == second


def test_view_scores_exact_match_per_relation_and_phrasing():
    records = [{"prompt": "p", "completion": " Peru", "relation": "country", "phrasing": "fact"},
               {"prompt": "q", "completion": " golf", "relation": "sport", "phrasing": "fact"},
               {"prompt": "r", "completion": " Chile", "relation": "country", "phrasing": "the"}]
    metrics = GENERATOR.view.metrics(records, [" Peru", " tennis", "Chile "])
    assert metrics == {"exact_match_by_relation": {"country": 1.0, "sport": 0.0},
                       "exact_match_by_phrasing": {"fact": 0.5, "the": 1.0}}
